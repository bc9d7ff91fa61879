package confwatch

import (
	"bytes"
	"io"
	"io/fs"
	"slices"
	"time"
)

// memFS is the read-only, in-memory fs.FS of a Snapshot: one flat directory
// "." holding the candidate files. It is immutable once built, so consumers
// may use it from any goroutine; ReadFile hands out copies to keep it so.
type memFS struct {
	dir   fs.FileInfo // info of "."
	files map[string]*memFile
	names []string // sorted, the order ReadDir returns
}

// memFile is one candidate file. A file that could not be read keeps its
// entry with err set, so that the loader reports it by name instead of
// treating it as removed.
type memFile struct {
	info fileInfo
	data []byte
	err  error
}

var (
	_ fs.ReadDirFS  = (*memFS)(nil)
	_ fs.ReadFileFS = (*memFS)(nil)
	_ fs.StatFS     = (*memFS)(nil)
)

func newMemFS(dir fs.FileInfo, files map[string]*memFile) *memFS {
	if dir == nil {
		dir = fileInfo{name: ".", mode: fs.ModeDir | 0o755}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	return &memFS{dir: fileInfo{name: ".", mode: dir.Mode(), modTime: dir.ModTime(), sys: dir.Sys()}, files: files, names: names}
}

// Open implements fs.FS.
func (m *memFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return &openDir{fsys: m}, nil
	}
	f, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if f.err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: f.err}
	}
	return &openFile{Reader: bytes.NewReader(f.data), info: f.info}, nil
}

// ReadFile implements fs.ReadFileFS.
func (m *memFS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrInvalid}
	}
	f, ok := m.files[name]
	switch {
	case name == ".":
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errIsDir}
	case !ok:
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrNotExist}
	case f.err != nil:
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: f.err}
	}
	return bytes.Clone(f.data), nil
}

// Stat implements fs.StatFS. It reports the file behind a symlink, with
// Sys() from os.Stat, even for a file whose content could not be read.
func (m *memFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return m.dir, nil
	}
	f, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return f.info, nil
}

// ReadDir implements fs.ReadDirFS; only "." has entries.
func (m *memFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	if name != "." {
		if _, ok := m.files[name]; ok {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
		}
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	return m.entries(), nil
}

func (m *memFS) entries() []fs.DirEntry {
	out := make([]fs.DirEntry, 0, len(m.names))
	for _, n := range m.names {
		out = append(out, fs.FileInfoToDirEntry(m.files[n].info))
	}
	return out
}

// fileInfo is a FileInfo whose fields are fixed at read time. Size is the
// length of the bytes captured, not what stat said, so that both agree when
// a writer was still busy.
type fileInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
	sys     any
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return i.modTime }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return i.sys }

// openFile is an opened regular file; bytes.Reader gives it Seek and ReadAt.
type openFile struct {
	*bytes.Reader
	info fileInfo
}

func (f *openFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *openFile) Close() error               { return nil }

// openDir is the opened "." directory.
type openDir struct {
	fsys   *memFS
	offset int
}

func (d *openDir) Stat() (fs.FileInfo, error) { return d.fsys.dir, nil }
func (d *openDir) Close() error               { return nil }

func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: ".", Err: errIsDir}
}

// ReadDir implements fs.ReadDirFile with the n semantics of os.File.ReadDir.
func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	all := d.fsys.entries()
	rest := all[d.offset:]
	if n <= 0 {
		d.offset = len(all)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.offset += n
	return rest[:n], nil
}
