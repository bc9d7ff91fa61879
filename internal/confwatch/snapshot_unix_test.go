//go:build unix

package confwatch

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/open-autoglm/glmd/internal/testenv"
)

// sameSys reports whether two Sys() values are *syscall.Stat_t of one inode.
func sameSys(a, b any) bool {
	sa, ok1 := a.(*syscall.Stat_t)
	sb, ok2 := b.(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino && sa.Uid == sb.Uid && sa.Gid == sb.Gid
}

func TestRead_FIFOIsSkipped(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.toml"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "x.toml"), "x")
	if got := files(t, Read(dir)); len(got) != 1 || got["x.toml"] != "x" {
		t.Errorf("files = %v, want only x.toml", got)
	}
}

func TestRead_HashCoversOwner(t *testing.T) {
	testenv.RequireRoot(t) // changing a file's owner needs root
	dir := t.TempDir()
	path := filepath.Join(dir, "x.toml")
	writeFile(t, path, "x")
	before := Read(dir)
	if err := os.Chown(path, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	after := Read(dir)
	if before.Hash == after.Hash {
		t.Error("hash unchanged after chown")
	}
	fi, err := fs.Stat(after.FS, "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 4242 || st.Gid != 4242 {
		t.Errorf("owner = %d:%d, want 4242:4242", st.Uid, st.Gid)
	}
}
