package confwatch

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// files returns the candidate files of s by name, read through s.FS.
func files(t testing.TB, s Snapshot) map[string]string {
	t.Helper()
	entries, err := fs.ReadDir(s.FS, ".")
	if err != nil {
		t.Fatalf("ReadDir(snapshot.FS): %v", err)
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		b, err := fs.ReadFile(s.FS, e.Name())
		if err != nil {
			t.Fatalf("ReadFile(snapshot.FS, %q): %v", e.Name(), err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIsCandidate(t *testing.T) {
	for name, want := range map[string]bool{
		"glm-serve.toml": true,
		"a.toml":         true,
		".toml":          false,
		".x.toml":        false,
		".x.toml.swp":    false,
		"x.toml~":        false,
		".#x.toml":       false,
		"4913":           false,
		"x.toml.tmp":     false,
		"x.TOML":         false,
		"..data":         false,
		"x.toml.bak":     false,
		"README":         false,
	} {
		if got := isCandidate(name); got != want {
			t.Errorf("isCandidate(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestRead(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  map[string]string
	}{
		{
			name: "empty",
			want: map[string]string{},
		},
		{
			name: "candidates only",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "a.toml"), "a")
				writeFile(t, filepath.Join(dir, "b.toml"), "b")
				for _, n := range []string{".a.toml.swp", "a.toml~", ".#a.toml", "4913", "a.toml.tmp", ".hidden.toml", "README"} {
					writeFile(t, filepath.Join(dir, n), "junk")
				}
			},
			want: map[string]string{"a.toml": "a", "b.toml": "b"},
		},
		{
			name: "symlinks followed, dangling and non-regular skipped",
			setup: func(t *testing.T, dir string) {
				outside := t.TempDir()
				writeFile(t, filepath.Join(outside, "real.toml"), "real")
				mustSymlink(t, filepath.Join(outside, "real.toml"), filepath.Join(dir, "link.toml"))
				mustSymlink(t, filepath.Join(outside, "gone.toml"), filepath.Join(dir, "dangling.toml"))
				mustSymlink(t, outside, filepath.Join(dir, "dirlink.toml"))
				if err := os.Mkdir(filepath.Join(dir, "sub.toml"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			want: map[string]string{"link.toml": "real"},
		},
		{
			name: "configmap layout",
			setup: func(t *testing.T, dir string) {
				configMap(t, dir, "..2025_01_01_00_00_00.1", map[string]string{"x.toml": "v1"})
			},
			want: map[string]string{"x.toml": "v1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			s := Read(dir)
			if s.Err != nil {
				t.Fatalf("Read: Err = %v", s.Err)
			}
			if s.Dir != dir || s.Seq != 0 || len(s.Hash) != 64 {
				t.Errorf("Read: Dir=%q Seq=%d Hash=%q, want Dir=%q Seq=0 and a sha256", s.Dir, s.Seq, s.Hash, dir)
			}
			if got := files(t, s); !maps.Equal(got, tt.want) {
				t.Errorf("files = %v, want %v", got, tt.want)
			}
			if err := fstest.TestFS(s.FS, slices.Sorted(maps.Keys(tt.want))...); err != nil {
				t.Errorf("snapshot FS is not a proper fs.FS: %v", err)
			}
		})
	}
}

func TestRead_FileInfoDescribesTarget(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "target.toml")
	writeFile(t, target, "0123456789")
	if err := os.Chmod(target, 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := os.Chtimes(target, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, target, filepath.Join(dir, "x.toml"))

	s := Read(dir)
	want, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(s.FS, ".")
	if err != nil || len(entries) != 1 {
		t.Fatalf("ReadDir = %v, %v; want one entry", entries, err)
	}
	fromDir, err := entries[0].Info()
	if err != nil {
		t.Fatal(err)
	}
	fromStat, err := fs.Stat(s.FS, "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	for how, got := range map[string]fs.FileInfo{"ReadDir": fromDir, "Stat": fromStat} {
		if got.Name() != "x.toml" || got.Mode() != 0o600 || got.Size() != 10 || !got.ModTime().Equal(mtime) {
			t.Errorf("%s: name=%q mode=%v size=%d mtime=%v, want x.toml -rw------- 10 %v", how, got.Name(), got.Mode(), got.Size(), got.ModTime(), mtime)
		}
		if !sameSys(got.Sys(), want.Sys()) {
			t.Errorf("%s: Sys() = %#v, want the target's %#v", how, got.Sys(), want.Sys())
		}
	}
}

func TestRead_DirErrors(t *testing.T) {
	base := t.TempDir()
	notDir := filepath.Join(base, "file")
	writeFile(t, notDir, "")
	tests := []struct {
		name        string
		dir         string
		wantMissing bool
	}{
		{"missing", filepath.Join(base, "nope"), true},
		{"parent missing", filepath.Join(base, "a", "b", "conf.d"), true},
		{"not a directory", notDir, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Read(tt.dir)
			if s.Err == nil {
				t.Fatal("Err = nil, want an error")
			}
			if got := errors.Is(s.Err, ErrDirMissing); got != tt.wantMissing {
				t.Errorf("errors.Is(%v, ErrDirMissing) = %v, want %v", s.Err, got, tt.wantMissing)
			}
			if got := errors.Is(s.Err, fs.ErrNotExist); got != tt.wantMissing {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", s.Err, got, tt.wantMissing)
			}
			if !strings.Contains(s.Err.Error(), tt.dir) {
				t.Errorf("Err = %q, want it to name %s", s.Err, tt.dir)
			}
			if s.FS == nil {
				t.Fatal("FS = nil, want an empty FS")
			}
			if got := files(t, s); len(got) != 0 {
				t.Errorf("files = %v, want none", got)
			}
		})
	}
}

func TestRead_TooLargeFileIsListedWithError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "big.toml"), strings.Repeat("#", maxFileSize+1))
	writeFile(t, filepath.Join(dir, "ok.toml"), "ok")
	s := Read(dir)
	entries, err := fs.ReadDir(s.FS, ".")
	if err != nil || len(entries) != 2 {
		t.Fatalf("ReadDir = %v, %v; want big.toml and ok.toml", entries, err)
	}
	if _, err := fs.ReadFile(s.FS, "big.toml"); !errors.Is(err, errTooLarge) {
		t.Errorf("ReadFile(big.toml) error = %v, want %v", err, errTooLarge)
	}
	if _, err := s.FS.Open("big.toml"); !errors.Is(err, errTooLarge) {
		t.Errorf("Open(big.toml) error = %v, want %v", err, errTooLarge)
	}
	if b, err := fs.ReadFile(s.FS, "ok.toml"); err != nil || string(b) != "ok" {
		t.Errorf("ReadFile(ok.toml) = %q, %v", b, err)
	}
}

func TestRead_Hash(t *testing.T) {
	tests := []struct {
		name     string
		change   func(t *testing.T, dir string)
		wantSame bool
	}{
		{"nothing", func(*testing.T, string) {}, true},
		{"touch", func(t *testing.T, dir string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "x.toml"), later, later); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"ignored file added", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, ".x.toml.swp"), "swap") }, true},
		{"content", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "x.toml"), "v2") }, false},
		{"mode", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "x.toml"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"rename", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "x.toml"), filepath.Join(dir, "y.toml")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"file added", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "y.toml"), "") }, false},
		{"dir removed", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "x.toml"), "v1")
			before := Read(dir)
			tt.change(t, dir)
			after := Read(dir)
			if same := before.Hash == after.Hash; same != tt.wantSame {
				t.Errorf("hash equal = %v, want %v", same, tt.wantSame)
			}
		})
	}
}

func TestRead_HashOfMissingDirIsStableAndNotEmpty(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "conf.d")
	a, b := Read(missing), Read(missing)
	if a.Hash != b.Hash {
		t.Errorf("two reads of a missing dir hash differently: %s, %s", a.Hash, b.Hash)
	}
	if err := os.Mkdir(missing, 0o755); err != nil {
		t.Fatal(err)
	}
	if empty := Read(missing); empty.Hash == a.Hash {
		t.Error("an empty dir hashes like a missing one")
	}
}

func TestMemFS_ReadFileReturnsACopy(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.toml"), "v1")
	s := Read(dir)
	b, err := fs.ReadFile(s.FS, "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	b[0] = 'X'
	if again, _ := fs.ReadFile(s.FS, "x.toml"); string(again) != "v1" {
		t.Errorf("snapshot content changed to %q through a returned slice", again)
	}
}

func mustSymlink(t testing.TB, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// configMap lays out dir as the kubelet's atomic writer does: the files in
// dir/<ts>/, dir/..data -> <ts>, dir/<name> -> ..data/<name>.
func configMap(t testing.TB, dir, ts string, content map[string]string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, c := range content {
		writeFile(t, filepath.Join(dir, ts, name), c)
	}
	mustSymlink(t, ts, filepath.Join(dir, "..data"))
	for name := range content {
		mustSymlink(t, filepath.Join("..data", name), filepath.Join(dir, name))
	}
}
