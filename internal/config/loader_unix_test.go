//go:build unix

package config

import (
	"errors"
	"io/fs"
	"syscall"
	"testing"
	"testing/fstest"
)

// TestLoader_Ownership changes only the owner or the mode of a task file:
// the cached file must not stand in for the refused one, nor the other way.
func TestLoader_Ownership(t *testing.T) {
	data := []byte(`name = "x"` + "\n" + sleep)
	steps := []struct {
		name    string
		mode    fs.FileMode
		uid     uint32
		refused bool
	}{
		{"root 0644", 0o644, 0, false},
		{"chown 1000", 0o644, 1000, true},
		{"chown root", 0o644, 0, false},
		{"chmod 0666", 0o666, 0, true},
		{"chmod 0644", 0o644, 0, false},
		{"chmod 0600", 0o600, 0, false},
	}
	opts := LoadOptions{RequireRootOwned: true, Dir: "conf.d"}
	loader := NewLoader(opts)
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			fsys := fstest.MapFS{"x.toml": {Data: data, Mode: step.mode, Sys: &syscall.Stat_t{Uid: step.uid}}}
			tasks, errs := loader.Load(fsys)
			wantTasks, wantErrs := LoadTasks(fsys, opts)
			checkSameLoad(t, tasks, errs, wantTasks, wantErrs)
			refused := len(errs) == 1 && errors.Is(errs[0], ErrInsecureFile) && len(tasks) == 0
			accepted := len(errs) == 0 && len(tasks) == 1
			if step.refused && !refused || !step.refused && !accepted {
				t.Errorf("tasks %q, errors %q; want refused: %v", taskNames(tasks), errorLines(errs), step.refused)
			}
		})
	}
}
