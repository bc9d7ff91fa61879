package api_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/open-autoglm/glmd/internal/api"
)

func TestClient_Unreachable(t *testing.T) {
	dir := shortTempDir(t)
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()

	tests := []struct {
		name   string
		socket string
		want   string
	}{
		{"missing", "/nonexistent/glmd.sock",
			"cannot reach glmd at /nonexistent/glmd.sock: connect: no such file or directory (is glmd running? set --socket or GLMD_SOCKET)"},
		{"refused", stale,
			"cannot reach glmd at " + stale + ": connect: connection refused (is glmd running? set --socket or GLMD_SOCKET)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := api.NewClient(tt.socket).Status(context.Background(), api.StatusOptions{})
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestClient_PermissionDenied fakes the dial error: root, who runs the
// tests, may connect to any socket.
func TestClient_PermissionDenied(t *testing.T) {
	c := api.NewClient("/run/glmd/glmd.sock")
	err := api.TransportError(c, context.Background(), &net.OpError{Op: "dial", Net: "unix",
		Err: os.NewSyscallError("connect", syscall.EACCES)})
	want := "cannot reach glmd at /run/glmd/glmd.sock: connect: permission denied (are you in the glmd group?)"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if !errors.Is(err, syscall.EACCES) {
		t.Error("the cause is not wrapped")
	}
}

// serveHandler answers on a socket with h instead of the API, for answers
// the real server never gives.
func serveHandler(t *testing.T, h http.HandlerFunc) string {
	sock := shortSocketPath(t)
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(l) })
	t.Cleanup(func() {
		_ = srv.Close()
		wg.Wait()
	})
	return sock
}

func TestClient_ErrorAnswers(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		body   string
		want   string
		wantIs error
	}{
		{"json", 409, `{"error":"glm-serve:0 is stopping"}`, "glm-serve:0 is stopping", api.ErrConflict},
		{"plain text", 404, "404 page not found\n", "404 page not found", api.ErrNotFound},
		{"empty", 503, "", "glmd answered GET /v1/info with 503 Service Unavailable", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := serveHandler(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.code)
				fmt.Fprint(w, tt.body)
			})
			_, err := api.NewClient(sock).Info(context.Background())
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(err, %v) = false", tt.wantIs)
			}
		})
	}
}

func TestClient_ContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stuck := make(chan struct{})
	sock := serveHandler(t, func(w http.ResponseWriter, r *http.Request) {
		cancel() // the caller gives up while the agent is busy
		<-r.Context().Done()
		close(stuck)
	})
	err := api.NewClient(sock).Stop(ctx, "glm-serve", -1)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	want := "no answer from glmd at " + sock + ": context canceled"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	<-stuck
}
