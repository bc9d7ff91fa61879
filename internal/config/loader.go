package config

import (
	"bytes"
	"io/fs"
	"maps"
	"slices"
)

// Loader loads a task directory again and again, as the agent does on
// every change of conf.d, and parses only the files that changed since its
// last Load: a reload usually changes one file of many, and parsing,
// decoding and validating is nearly all of the cost of a load (about 0.2 ms
// per file), so a new task file starts without waiting for 100 others.
//
// What a task file decides on its own (syntax, decode, defaults, validation
// including its templates, the ownership check) is cached by file name,
// content, owner and mode. What can change while the task file stays the
// same is done again on every Load: env files are read and parsed, the
// devices of [[resources.io]] are looked up, and the checks between files
// (duplicate names, unknown dependencies, cycles) run over all files.
//
// Every Load returns new values: no map, slice or *FileError it returns is
// shared with the cache or with what an earlier Load returned, so a caller
// may keep, compare and even change them. (Within one Load, tasks naming the
// same env file share its vars map, as with LoadTasks.)
//
// A Loader is for one goroutine at a time; the agent's reload loop owns it.
type Loader struct {
	opts LoadOptions
	// files holds the task files of the last Load by name in the fs.FS.
	// Load replaces the map, so files that went away are forgotten and the
	// cache never holds more than one directory.
	files map[string]*cachedFile
}

// NewLoader returns a Loader with nothing cached. Its options are fixed:
// a Loader for other options (another node name, say) is a new Loader.
func NewLoader(opts LoadOptions) *Loader {
	return &Loader{opts: opts, files: map[string]*cachedFile{}}
}

// Load returns what LoadTasks(fsys, opts) returns, always, parsing only the
// task files that are new or changed (content, owner or mode) since the
// last Load.
func (l *Loader) Load(fsys fs.FS) ([]*Task, []*FileError) {
	srcs, err := readTaskDir(fsys, l.opts)
	if err != nil {
		// A directory that cannot be read says nothing about its files:
		// keep them for the next Load.
		return nil, []*FileError{err}
	}
	next := make(map[string]*cachedFile, len(srcs))
	tasks, errs := load(srcs, l.opts, func(s source) *loaded {
		if s.err != nil {
			// Nothing was read to key a cache entry by; reporting it is cheap.
			return prepareFile(s, l.opts)
		}
		c := l.files[s.name]
		if c == nil || !c.matches(s) {
			c = newCachedFile(s, prepareFile(s, l.opts))
		}
		next[s.name] = c
		return c.fresh(s)
	})
	l.files = next
	return tasks, errs
}

// cachedFile is one task file after prepareFile. Its loaded value is never
// handed out, only copies (fresh): load adds env file and cross-file errors
// to what it gets, and callers keep the tasks.
type cachedFile struct {
	// The key. The content itself rather than a digest of it: it is held
	// anyway (the file's source), comparing is cheaper than hashing, and
	// there is no collision to argue about. The name is the map's key;
	// options are the Loader's and never change.
	data     []byte
	uid      uint32
	hasOwner bool // uid is known (see fileOwner); else ownership is not checked
	mode     fs.FileMode

	prepared *loaded
}

func newCachedFile(s source, prepared *loaded) *cachedFile {
	uid, ok := fileOwner(s.info)
	return &cachedFile{data: s.data, uid: uid, hasOwner: ok, mode: s.info.Mode(), prepared: prepared}
}

// matches says whether s is the file c was prepared from, as far as
// prepareFile can tell.
func (c *cachedFile) matches(s source) bool {
	uid, ok := fileOwner(s.info)
	return uid == c.uid && ok == c.hasOwner && s.info.Mode() == c.mode && bytes.Equal(s.data, c.data)
}

// fresh returns a copy of the prepared file that load may change and hand
// out. What only prepareFile writes is shared: the parse results (raw,
// keys, where), given, and the env file paths (envRefs); copying given
// would be a third of the cost of a reload without changes. What later
// steps write (bad and errs, through errorAt) or hand out (the task) is
// copied. TestLoader_Edits checks that no Load changes a cached file.
func (c *cachedFile) fresh(s source) *loaded {
	l := *c.prepared
	l.src = s
	l.errs = cloneFileErrors(l.errs)
	if l.f != nil {
		f := *l.f
		d := *f.document
		d.bad = maps.Clone(d.bad)
		d.errs = cloneFileErrors(d.errs)
		f.document = &d
		f.t = cloneTask(&f.t)
		l.f = &f
	}
	return &l
}

// cloneFileErrors copies each error. Err is shared: error values are not
// changed once made.
func cloneFileErrors(errs []*FileError) []*FileError {
	if errs == nil {
		return nil
	}
	out := make([]*FileError, len(errs))
	for i, e := range errs {
		c := *e
		out[i] = &c
	}
	return out
}

// cloneTask copies t so that no map or slice is shared with it. Nil and
// empty stay as they were: Hash tells them apart. TestCloneTask fails when
// a new field of Task is shared.
func cloneTask(t *Task) Task {
	c := *t
	c.Command = slices.Clone(t.Command)
	c.Env = maps.Clone(t.Env)
	c.EnvFiles = slices.Clone(t.EnvFiles)
	if t.EnvFileVars != nil {
		c.EnvFileVars = make(map[string]map[string]string, len(t.EnvFileVars))
		for p, vars := range t.EnvFileVars {
			c.EnvFileVars[p] = maps.Clone(vars)
		}
	}
	c.DependsOn = slices.Clone(t.DependsOn)
	c.Ports = maps.Clone(t.Ports)
	c.Restart.SuccessCodes = slices.Clone(t.Restart.SuccessCodes)
	c.Resources.IO = slices.Clone(t.Resources.IO)
	c.Resources.DenyDevices = slices.Clone(t.Resources.DenyDevices)
	if t.Resources.OOMScoreAdj != nil {
		n := *t.Resources.OOMScoreAdj
		c.Resources.OOMScoreAdj = &n
	}
	c.Health = cloneHealth(t.Health)
	c.GPU.IDs = slices.Clone(t.GPU.IDs)
	if t.Service != nil {
		s := *t.Service
		s.Tags = slices.Clone(t.Service.Tags)
		s.Meta = maps.Clone(t.Service.Meta)
		c.Service = &s
	}
	return c
}

// cloneHealth copies checks so that no map or slice is shared with them.
func cloneHealth(checks []HealthCheck) []HealthCheck {
	out := slices.Clone(checks)
	for i := range out {
		out[i].Headers = maps.Clone(checks[i].Headers)
		out[i].Command = slices.Clone(checks[i].Command)
	}
	return out
}
