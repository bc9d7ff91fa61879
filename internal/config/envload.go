package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/template"
)

// envReader reads env files for one load, each path once.
type envReader struct {
	read       func(string) ([]byte, error) // nil = the OS
	checkOwner bool                         // refuse env files root does not own
	cache      map[string]envResult
}

type envResult struct {
	vars map[string]string
	err  error
}

func (r *envReader) get(path string) envResult {
	if res, ok := r.cache[path]; ok {
		return res
	}
	var res envResult
	data, err := r.readFile(path)
	if err != nil {
		res.err = err
	} else {
		res.vars, res.err = parseEnvFile(path, data)
	}
	r.cache[path] = res
	return res
}

func (r *envReader) readFile(path string) ([]byte, error) {
	if r.read != nil {
		return r.read(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, data, err := readOpen(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.checkOwner {
		if err := checkOwnership(info); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return data, nil
}

// envRef is one env file a task reads: a path as rendered for one or more
// instances, and the env_file entry that first names it.
type envRef struct {
	path  string
	entry int // index in Task.EnvFiles
}

// planEnvFiles renders the env file paths of every instance into f.envRefs.
// The paths depend on the task file and the node alone, so a Loader keeps
// them with the file; the files themselves are read on every load
// (loadEnvFiles), as they can change while the task file does not.
func (f *taskFile) planEnvFiles(node string) {
	t := &f.t
	if len(t.EnvFiles) == 0 || !f.ok("instances") {
		return
	}
	// Parse each path once; render it per instance.
	paths := make([]*template.Template, len(t.EnvFiles))
	for j, ef := range t.EnvFiles {
		key := fmt.Sprintf("env_file[%d]", j)
		if f.ok(key) {
			paths[j], _ = parseTemplate(key, ef.Path) // problems are reported by validate
		}
	}
	// A path met again with the same optional flag ends as it did the first
	// time (read, reported, or optional and absent): list it once. The same
	// path both optional and not is listed twice, so that a missing file is
	// reported for the entry that requires it.
	type seenKey struct {
		path     string
		optional bool
	}
	seen := map[seenKey]bool{}
	for i := range t.Instances {
		v := Vars{Name: t.Name, Instance: i, Node: node}
		for j, ef := range t.EnvFiles {
			if paths[j] == nil {
				continue
			}
			p, err := renderTemplate(paths[j], v)
			if err != nil || seen[seenKey{p, ef.Optional}] {
				continue
			}
			seen[seenKey{p, ef.Optional}] = true
			f.envRefs = append(f.envRefs, envRef{path: p, entry: j})
		}
	}
}

// loadEnvFiles reads every env file planEnvFiles found into
// t.EnvFileVars, so that what runs is what was validated.
func (f *taskFile) loadEnvFiles(env *envReader) {
	t := &f.t
	reported := map[string]bool{}
	for _, ref := range f.envRefs {
		p, j, ef := ref.path, ref.entry, t.EnvFiles[ref.entry]
		if reported[p] {
			continue
		}
		if _, done := t.EnvFileVars[p]; done {
			continue
		}
		res := env.get(p)
		switch {
		case res.err == nil:
			if t.EnvFileVars == nil {
				t.EnvFileVars = map[string]map[string]string{}
			}
			t.EnvFileVars[p] = res.vars
		case errors.Is(res.err, fs.ErrNotExist) && ef.Optional:
			// systemd's "-" prefix: a missing file is fine.
		case errors.Is(res.err, fs.ErrNotExist):
			reported[p] = true
			f.errorAt("env_file", fmt.Sprintf("env_file[%d]", j), fmt.Errorf("%s does not exist (create it, or write %q to make it optional)", p, "-"+ef.Path))
		default:
			reported[p] = true
			var pe *fs.PathError
			if errors.As(res.err, &pe) && pe.Path == p {
				res.err = fmt.Errorf("%s: %w", p, pe.Err)
			}
			f.errorAt("env_file", fmt.Sprintf("env_file[%d]", j), res.err)
		}
	}
}
