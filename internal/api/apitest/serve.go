package apitest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-autoglm/glmd/internal/api"
)

// Serve runs an api.Server for b on a socket in a new temporary directory
// and returns the socket's path. When the test ends the server stops, its
// streams end, and the directory is removed.
func Serve(t testing.TB, b api.Backend) string {
	t.Helper()
	// Not t.TempDir: a socket path must fit in 108 bytes, and t.TempDir
	// carries the test's name.
	dir, err := os.MkdirTemp("", "glmd-api-")
	if err != nil {
		t.Fatalf("create socket directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "glmd.sock")
	l, err := api.Listen(sock, "")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.NewServer(b, nil).Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return sock
}
