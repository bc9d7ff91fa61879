// Package confwatch watches conf_dir and hands over snapshots of its task
// files: the whole directory read at one moment, never a single event.
//
// The Watcher watches the directory with fsnotify, never the files in it
// (fsnotify README: "watch the parent directory and use Event.Name to
// filter"), so editor saves, atomic renames and Kubernetes ConfigMap symlink
// swaps all look the same: something in the directory changed, read it again.
//
// What it does not see: changes behind a symlink that points out of conf_dir
// (only the link's own name is watched), a conf_dir that is itself a symlink
// being repointed, and conf_dir being unmounted (inotify drops the watch
// without an event). SIGHUP or `glmctl reload` (Read) covers those.
package confwatch

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrDirMissing is the Snapshot.Err of a conf_dir that does not exist. The
// error in the Snapshot also wraps fs.ErrNotExist.
var ErrDirMissing = errors.New("confwatch: conf_dir is missing")

var (
	errIsDir    = errors.New("is a directory")
	errNotDir   = errors.New("not a directory")
	errTooLarge = fmt.Errorf("file is larger than %d bytes, not a task file", maxFileSize)
)

// maxFileSize bounds what Read keeps of one file: task files are a few KiB,
// and a stray multi-GB file in conf_dir must not take the agent's memory.
const maxFileSize = 4 << 20

// Snapshot is the content of conf_dir at one moment.
type Snapshot struct {
	// Dir is the directory the snapshot was read from.
	Dir string
	// FS holds every candidate file: "*.toml" directly in Dir, not hidden,
	// symlinks followed, regular files only. Stat and ReadDir describe the
	// file behind a symlink (mode, size, modtime, and Sys() as os.Stat gives
	// it, *syscall.Stat_t on Unix) so that the loader can check ownership. A
	// candidate that could not be read is listed, and opening it fails with
	// the reason. FS is empty, never nil, when Err is set.
	FS fs.FS
	// Err says that the directory is missing (errors.Is ErrDirMissing and
	// fs.ErrNotExist) or unreadable. The agent keeps what runs and reports it.
	Err error
	// Seq increases with each snapshot a Watcher hands over; Read leaves it 0.
	Seq uint64
	// Hash digests names, contents, modes and owners (and Err): equal Hash
	// means nothing the loader looks at changed. Modification times are left
	// out so that a touch is no change.
	Hash string
}

// isCandidate reports whether name, a file name directly in conf_dir, is a
// task file: it ends in ".toml" and is not hidden. Editor swap, backup and
// lock files (".x.toml.swp", "x.toml~", ".#x.toml", vim's "4913",
// "x.toml.tmp") are not.
func isCandidate(name string) bool {
	return strings.HasSuffix(name, ".toml") && !strings.HasPrefix(name, ".") && len(name) > len(".toml")
}

// Read reads dir into a Snapshot, synchronously. It is what the agent calls at
// start-up, on SIGHUP and on `glmctl reload`; a Watcher calls it after each
// burst of changes.
func Read(dir string) Snapshot {
	s := read(dir)
	s.Hash = s.digest()
	return s
}

func read(dir string) Snapshot {
	empty := Snapshot{Dir: dir, FS: newMemFS(nil, nil)}
	dirInfo, err := os.Stat(dir)
	if err != nil {
		empty.Err = dirError(dir, err)
		return empty
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		empty.Err = dirError(dir, err)
		return empty
	}
	files := make(map[string]*memFile)
	for _, e := range entries {
		if !isCandidate(e.Name()) {
			continue
		}
		if f, ok := readFile(filepath.Join(dir, e.Name()), e.Name()); ok {
			files[e.Name()] = f
		}
	}
	return Snapshot{Dir: dir, FS: newMemFS(dirInfo, files)}
}

func dirError(dir string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s: %w", ErrDirMissing, dir, err)
	}
	return fmt.Errorf("confwatch: read conf_dir %s: %w (check the path and its permissions)", dir, err)
}

// readFile reads one candidate through any symlinks. ok is false when the
// entry is gone, dangling or not a regular file: for the loader it does not
// exist. A regular file that cannot be read is kept with its error.
func readFile(path, name string) (f *memFile, ok bool) {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false
		}
		return &memFile{info: fileInfo{name: name}, err: err}, true
	}
	if !info.Mode().IsRegular() {
		return nil, false
	}
	f = &memFile{info: fileInfo{name: name, mode: info.Mode(), modTime: info.ModTime(), sys: info.Sys()}}
	// O_NONBLOCK: if the name turned into a FIFO since Stat, open must not
	// hang the watcher; on a regular file it changes nothing.
	fd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false
		}
		f.err = err
		return f, true
	}
	defer fd.Close()
	// Describe what was read, not what was stat'ed before opening: the name
	// may have been replaced in between (atomic rename).
	if info, err = fd.Stat(); err != nil {
		f.err = err
		return f, true
	}
	if !info.Mode().IsRegular() {
		return nil, false
	}
	f.info = fileInfo{name: name, mode: info.Mode(), modTime: info.ModTime(), sys: info.Sys()}
	data, err := io.ReadAll(io.LimitReader(fd, maxFileSize+1))
	switch {
	case err != nil:
		f.err = err
	case len(data) > maxFileSize:
		f.err = errTooLarge
	default:
		f.data = data
		f.info.size = int64(len(data))
	}
	return f, true
}

// digest is the Hash of s: every field the loader sees except times.
func (s Snapshot) digest() string {
	h := sha256.New()
	if s.Err != nil {
		field(h, "err")
		field(h, s.Err.Error())
	}
	if m, ok := s.FS.(*memFS); ok {
		for _, n := range m.names {
			f := m.files[n]
			field(h, "file")
			field(h, n)
			uid, gid := owner(f.info)
			var b [16]byte
			binary.BigEndian.PutUint32(b[0:], uint32(f.info.mode))
			binary.BigEndian.PutUint32(b[4:], uid)
			binary.BigEndian.PutUint32(b[8:], gid)
			h.Write(b[:12])
			if f.err != nil {
				field(h, "error")
				field(h, f.err.Error())
			}
			field(h, string(f.data))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// field writes one length-prefixed field, so that no two different
// sequences of fields hash alike.
func field(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	io.WriteString(h, s)
}
