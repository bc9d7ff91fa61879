//go:build unix

package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
)

func TestLoadTasks_Ownership(t *testing.T) {
	tests := []struct {
		name string
		mode fs.FileMode
		sys  any
		want string // "" = accepted
	}{
		{"root 0644", 0o644, &syscall.Stat_t{Uid: 0}, ""},
		{"root 0600", 0o600, &syscall.Stat_t{Uid: 0}, ""},
		{"no owner information", 0o666, nil, ""},
		{"user-owned", 0o644, &syscall.Stat_t{Uid: 1000},
			"conf.d/x.toml: refused: owned by uid 1000; glmd runs as root, so anyone who can write this file could run code as root (chown root:root)"},
		{"user-owned, group-writable", 0o664, &syscall.Stat_t{Uid: 1000},
			"conf.d/x.toml: refused: owned by uid 1000 and writable by group (mode 0664); glmd runs as root, so anyone who can write this file could run code as root (chown root:root and chmod 644)"},
		{"root, world-writable", 0o646, &syscall.Stat_t{Uid: 0},
			"conf.d/x.toml: refused: writable by others (mode 0646); glmd runs as root, so anyone who can write this file could run code as root (chmod 644)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"x.toml": {Data: []byte(`name = "x"` + "\n" + sleep), Mode: tt.mode, Sys: tt.sys}}
			tasks, errs := LoadTasks(fsys, LoadOptions{RequireRootOwned: true, Dir: "conf.d"})
			if tt.want == "" {
				if len(errs) > 0 || len(tasks) != 1 {
					t.Fatalf("tasks %q, errors %v; want the task", taskNames(tasks), errs)
				}
				return
			}
			if len(tasks) != 0 || len(errs) != 1 {
				t.Fatalf("tasks %q, errors %v; want one refusal", taskNames(tasks), errs)
			}
			if got := errs[0].Error(); got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
			if !errors.Is(errs[0], ErrInsecureFile) || errs[0].Task != "x" {
				t.Errorf("error %+v: want ErrInsecureFile for task x", errs[0])
			}
			// Without the requirement the same file loads.
			if tasks, errs := LoadTasks(fsys, LoadOptions{}); len(tasks) != 1 || len(errs) > 0 {
				t.Errorf("without RequireRootOwned: tasks %q, errors %v", taskNames(tasks), errs)
			}
		})
	}
}

func TestLoadTasks_EnvFileOwnership(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, "w.env")
	if err := os.WriteFile(env, []byte("A=1\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(env, 0o666); err != nil { // umask may have masked it
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"x.toml": file(sleep + `env_file = ["` + env + `"]`)}
	_, errs := LoadTasks(fsys, LoadOptions{RequireRootOwned: true})
	if len(errs) != 1 || !errors.Is(errs[0], ErrInsecureFile) || !strings.Contains(errs[0].Error(), "writable by group and others (mode 0666)") {
		t.Fatalf("errors %q, want the env file refused as writable", errorLines(errs))
	}
	tasks, errs := LoadTasks(fsys, LoadOptions{})
	if len(errs) > 0 || tasks[0].EnvFileVars[env]["A"] != "1" {
		t.Fatalf("without RequireRootOwned: errors %q, tasks %+v", errorLines(errs), tasks)
	}
}
