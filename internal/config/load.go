package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxFileSize bounds a task file or env file; anything larger is a mistake.
const maxFileSize = 1 << 20

// LoadOptions tune LoadTasks, LoadFiles and a Loader.
type LoadOptions struct {
	// Node is the node name templates see as {{.Node}}, also in env_file paths.
	Node string
	// RequireRootOwned refuses task files (and env files, when ReadFile is
	// nil) not owned by uid 0 or writable by group or others. Set it when
	// the agent runs as root.
	RequireRootOwned bool
	// ReadFile reads env files; nil = the OS (with the ownership check).
	ReadFile func(path string) ([]byte, error)
	// Dir is put before file names in errors, e.g. "/etc/glmd/conf.d";
	// "" shows the names as they are in the fs.FS. LoadFiles ignores it.
	Dir string
	// StatDevice resolves the device path of a [[resources.io]] entry;
	// nil = this host's /dev and /sys. It may return an error satisfying
	// errors.Is with fs.ErrNotExist or ErrNotBlockDevice.
	StatDevice func(path string) (BlockDevice, error)
	// Note, when set, receives remarks about a valid file that are not
	// problems (a partition whose IO limits apply to its whole disk), as
	// *FileError values, in file order. Like device lookups, notes come on
	// every load, not once per file; a file with errors gets no notes.
	Note func(*FileError)
}

// source is one task file as read, before parsing.
type source struct {
	name    string // Task.File: the base name
	display string // FileError.File
	data    []byte
	info    fs.FileInfo
	err     error // reading failed
}

// loaded is one file after the per-file steps.
type loaded struct {
	src       source
	f         *taskFile // nil when the file could not be read, parsed or was refused
	name      string    // the task name this file provides
	errs      []*FileError
	duplicate bool
}

// LoadTasks reads every *.toml directly in the root of fsys and returns
// the valid tasks sorted by name, and every problem found. Names starting
// with "." (editor swap files, hidden files) are ignored; symbolic links are
// followed as fsys follows them. A file with any problem yields no task.
//
// LoadTasks parses every file each time; a caller that loads the same
// directory again and again should keep a Loader, which parses only what
// changed and gives the same results.
func LoadTasks(fsys fs.FS, opts LoadOptions) ([]*Task, []*FileError) {
	srcs, err := readTaskDir(fsys, opts)
	if err != nil {
		return nil, []*FileError{err}
	}
	return load(srcs, opts, func(s source) *loaded { return prepareFile(s, opts) })
}

// readTaskDir reads every task file directly in the root of fsys, in the
// order of the names.
func readTaskDir(fsys fs.FS, opts LoadOptions) ([]source, *FileError) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		dir := cmp.Or(opts.Dir, ".")
		return nil, &FileError{File: dir, Err: fmt.Errorf("read task directory: %w", err)}
	}
	var srcs []source
	for _, e := range entries {
		name := e.Name()
		if !isTaskFileName(name) {
			continue
		}
		display := name
		if opts.Dir != "" {
			display = filepath.Join(opts.Dir, name)
		}
		srcs = append(srcs, readFS(fsys, name, display))
	}
	return srcs, nil
}

// LoadFiles does what LoadTasks does for explicit paths, as
// `glmd validate PATH...` names them; a directory stands for its *.toml
// files. Errors name the paths as given.
func LoadFiles(paths []string, opts LoadOptions) ([]*Task, []*FileError) {
	var srcs []source
	seen := map[string]bool{}
	add := func(p string) {
		if clean := filepath.Clean(p); !seen[clean] {
			seen[clean] = true
			srcs = append(srcs, readOS(p))
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() {
			add(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			srcs = append(srcs, source{name: filepath.Base(p), display: p, err: fmt.Errorf("read task directory: %w", err)})
			continue
		}
		for _, e := range entries {
			if isTaskFileName(e.Name()) {
				add(filepath.Join(p, e.Name()))
			}
		}
	}
	slices.SortStableFunc(srcs, func(a, b source) int { return strings.Compare(a.display, b.display) })
	opts.Dir = ""
	return load(srcs, opts, func(s source) *loaded { return prepareFile(s, opts) })
}

func isTaskFileName(name string) bool {
	return !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".toml")
}

func readFS(fsys fs.FS, name, display string) source {
	s := source{name: name, display: display}
	f, err := fsys.Open(name)
	if err != nil {
		s.err = err
		return s
	}
	defer f.Close()
	s.info, s.data, s.err = readOpen(f)
	return s
}

func readOS(p string) source {
	s := source{name: filepath.Base(p), display: p}
	f, err := os.Open(p)
	if err != nil {
		s.err = err
		return s
	}
	defer f.Close()
	s.info, s.data, s.err = readOpen(f)
	return s
}

// readOpen stats and reads an open file: the ownership check then looks at
// the very file that was read, not at whatever the name points to later.
func readOpen(f fs.File) (fs.FileInfo, []byte, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if info.IsDir() {
		return info, nil, errors.New("is a directory")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return info, nil, err
	}
	if len(data) > maxFileSize {
		return info, nil, fmt.Errorf("larger than %d KiB", maxFileSize>>10)
	}
	return info, data, nil
}

// load turns the files of one task directory into tasks and errors.
// prepare runs the steps that depend on nothing but the file itself (see
// prepareFile); a Loader answers it from its cache. It must return a value
// that load may change: env files and the checks between files add errors.
func load(srcs []source, opts LoadOptions, prepare func(source) *loaded) ([]*Task, []*FileError) {
	env := &envReader{read: opts.ReadFile, checkOwner: opts.RequireRootOwned && opts.ReadFile == nil, cache: map[string]envResult{}}
	devs := newDeviceReader(opts.StatDevice)
	files := make([]*loaded, len(srcs))
	for i, s := range srcs {
		l := prepare(s)
		if l.f != nil {
			// Env files and devices can change without the task file
			// changing, so they are read on every load, never cached
			// with the file.
			l.f.loadEnvFiles(env)
			l.f.loadDevices(devs)
		}
		files[i] = l
	}
	crossCheck(files)

	var tasks []*Task
	var errs []*FileError
	for _, l := range files {
		errs = append(errs, l.errs...)
		if l.f == nil {
			continue
		}
		errs = append(errs, l.f.errs...)
		if len(l.f.errs) == 0 {
			t := l.f.t
			tasks = append(tasks, &t)
			if opts.Note != nil {
				for _, n := range l.f.notes {
					opts.Note(n)
				}
			}
		}
	}
	slices.SortFunc(tasks, func(a, b *Task) int { return strings.Compare(a.Name, b.Name) })
	sortFileErrors(errs)
	return tasks, errs
}

// prepareFile runs parse, decode, defaults and validate (templates
// included) on one file and renders the paths of its env files. The result
// depends only on the file's name, content, owner and mode and on opts.Node
// and opts.RequireRootOwned (opts.Dir only shows in the names), which is
// what lets a Loader cache it.
func prepareFile(s source, opts LoadOptions) *loaded {
	stem := strings.TrimSuffix(s.name, ".toml")
	l := &loaded{src: s, name: stem}
	if s.err != nil {
		msg := s.err
		var pe *fs.PathError
		if errors.As(s.err, &pe) {
			msg = pe.Err // the path is already in FileError.File
		}
		l.errs = append(l.errs, &FileError{File: s.display, Task: stem, Err: fmt.Errorf("cannot read: %w", msg)})
		return l
	}
	var refused error
	if opts.RequireRootOwned {
		refused = checkOwnership(s.info)
	}
	doc, synErr := parseDocument(s.display, stem, s.data)
	if doc != nil {
		// A broken file still provides its name, so that its dependents do
		// not fail as well.
		if name, ok := doc.raw["name"].(string); ok && taskNameRE.MatchString(name) {
			l.name, doc.task = name, name
		}
	}
	if refused != nil {
		l.errs = append(l.errs, &FileError{File: s.display, Task: l.name, Err: refused})
		return l
	}
	if synErr != nil {
		l.errs = append(l.errs, synErr)
		return l
	}
	f := &taskFile{document: doc, stem: stem}
	f.t.File = s.name
	f.decode()
	f.applyDefaults()
	f.validate(opts.Node)
	f.planEnvFiles(opts.Node)
	l.f = f
	return l
}

// crossCheck finds problems between files: duplicate names, dependencies
// that no file provides, and dependency cycles.
func crossCheck(files []*loaded) {
	owner := map[string]*loaded{}
	for _, l := range files {
		prev, dup := owner[l.name]
		if !dup {
			owner[l.name] = l
			continue
		}
		l.duplicate = true
		err := fmt.Errorf("task %q is already defined by %s (names must be unique)", l.name, prev.src.display)
		switch {
		case l.f == nil:
			l.errs = append(l.errs, &FileError{File: l.src.display, Task: l.name, Key: "name", Err: err})
		default:
			l.f.errorAt("name", "name", err)
		}
	}

	provided := sortedKeys(owner)
	graph := map[string][]string{}
	for _, l := range files {
		if l.f == nil || l.duplicate || !l.f.given["depends_on"] {
			continue
		}
		seen := map[string]bool{}
		for _, dep := range l.f.t.DependsOn {
			if dep == l.name || !taskNameRE.MatchString(dep) || seen[dep] {
				continue // reported by validate
			}
			seen[dep] = true
			if _, ok := owner[dep]; ok {
				graph[l.name] = append(graph[l.name], dep)
				continue
			}
			hint := ""
			if best := closest(dep, provided); best != "" {
				hint = fmt.Sprintf("; did you mean %q?", best)
			}
			l.f.errorf("depends_on", "no task %q: no task file defines it%s", dep, hint)
		}
	}
	for name, cycle := range findCycles(graph) {
		owner[name].f.errorf("depends_on", "dependency cycle %s", strings.Join(cycle, " -> "))
	}
}
