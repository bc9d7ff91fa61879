package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func FuzzLoadTask(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*/*.toml")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds under testdata: %v", err)
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	read := func(p string) ([]byte, error) {
		if strings.Contains(p, "missing") {
			return nil, fsNotExist(p)
		}
		return []byte("A=1\nexport B='2'\n"), nil
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"fuzz.toml": {Data: data, Mode: 0o644}}
		opts := LoadOptions{Node: "gpu01", Dir: "conf.d", ReadFile: read, StatDevice: testDevices}
		tasks, errs := LoadTasks(fsys, opts)
		// A Loader answers the same, from a parse and from its cache.
		loader := NewLoader(opts)
		for range 2 {
			lt, le := loader.Load(fsys)
			checkSameLoad(t, lt, le, tasks, errs)
		}
		if len(tasks)+len(errs) == 0 || len(tasks) > 1 || (len(tasks) == 1 && len(errs) > 0) {
			t.Fatalf("got %d tasks and %d errors; want one task or only errors", len(tasks), len(errs))
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, e := range errs {
			if e.File != "conf.d/fuzz.toml" || e.Task == "" || e.Err == nil {
				t.Errorf("error without file, task or cause: %+v", e)
			}
			if e.Line < 0 || e.Line > lines || e.Col < 0 {
				t.Errorf("error at %d:%d in a file of %d lines: %v", e.Line, e.Col, lines, e)
			}
			if !strings.HasPrefix(e.Error(), "conf.d/fuzz.toml") {
				t.Errorf("error does not start with the file: %v", e)
			}
		}
		if len(tasks) == 0 {
			return
		}
		task := tasks[0]
		if task.Name == "" || len(task.Command) == 0 || task.Instances < 1 {
			t.Fatalf("valid task without name, command or instances: %+v", task)
		}
		// What validated renders.
		ports := map[string]int{}
		for name, p := range task.Ports {
			ports[name] = p
		}
		inst, err := task.Render(Vars{Instance: task.Instances - 1, Node: "gpu01", Port: max(task.Port, 0), Ports: ports})
		if err != nil {
			t.Fatalf("render of a valid task: %v", err)
		}
		if len(inst.Argv) == 0 || inst.Argv[0] == "" {
			t.Fatalf("valid task renders an empty program: %q", inst.Argv)
		}
		if again := *task; again.Hash() != task.Hash() {
			t.Fatal("hash not stable")
		}
	})
}
