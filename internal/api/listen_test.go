package api_test

import (
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/api/apitest"
)

// shortTempDir returns a new temporary directory that the test removes.
// Not t.TempDir: a socket path must fit in 108 bytes, and t.TempDir
// carries the test's name.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "glmd-api-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// shortSocketPath returns a socket path whose directory does not exist yet.
func shortSocketPath(t *testing.T) string {
	return filepath.Join(shortTempDir(t), "run", "glmd.sock")
}

func TestListen_CreatesSocket(t *testing.T) {
	sock := shortSocketPath(t)
	l, err := api.Listen(sock, "no-such-group-glmd-test")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer l.Close()
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want a socket with 0660", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(sock))
	if err != nil || !di.IsDir() {
		t.Fatalf("parent directory: %v", err)
	}
	// MkdirAll honours the umask, which may only take bits away.
	if di.Mode().Perm()&^0o755 != 0 {
		t.Errorf("parent directory mode = %v, want at most 0755", di.Mode().Perm())
	}
}

func TestListen_RefusesLiveAgent(t *testing.T) {
	b := apitest.NewBackend()
	sock := apitest.Serve(t, b)
	l, err := api.Listen(sock, "")
	if err == nil {
		l.Close()
		t.Fatal("Listen succeeded on a socket a live server answers on")
	}
	want := "another glmd is running (it answers on " + sock + "); stop it first"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	// The live server still answers.
	if _, err := api.NewClient(sock).Info(context.Background()); err != nil {
		t.Errorf("live server broken by the second Listen: %v", err)
	}
}

func TestListen_ReplacesStaleSocket(t *testing.T) {
	sock := shortSocketPath(t)
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	// A crashed glmd leaves its socket file behind.
	old, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	l, err := api.Listen(sock, "")
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- api.NewServer(apitest.NewBackend(), nil).Serve(ctx, l) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	if _, err := api.NewClient(sock).Status(context.Background(), api.StatusOptions{}); err != nil {
		t.Errorf("new server does not answer: %v", err)
	}
}

func TestListen_RefusesNonSocket(t *testing.T) {
	sock := shortSocketPath(t)
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sock, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := api.Listen(sock, "")
	if err == nil {
		l.Close()
		t.Fatal("Listen succeeded over a regular file")
	}
	if !strings.Contains(err.Error(), "exists and is not a socket") {
		t.Errorf("error = %q", err)
	}
	if data, err := os.ReadFile(sock); err != nil || string(data) != "precious" {
		t.Errorf("the file was touched: %q, %v", data, err)
	}
}
