package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// checkSameLoad fails unless a Loader's result equals LoadTasks's, nil and
// empty told apart.
func checkSameLoad(t *testing.T, gotTasks []*Task, gotErrs []*FileError, wantTasks []*Task, wantErrs []*FileError) {
	t.Helper()
	if !reflect.DeepEqual(gotErrs, wantErrs) {
		t.Errorf("Loader errors:\n%s\nLoadTasks errors:\n%s", strings.Join(errorLines(gotErrs), "\n"), strings.Join(errorLines(wantErrs), "\n"))
		for i := range min(len(gotErrs), len(wantErrs)) {
			if !reflect.DeepEqual(gotErrs[i], wantErrs[i]) {
				t.Errorf("first difference: %#v\nwant %#v", gotErrs[i], wantErrs[i])
				break
			}
		}
	}
	if !reflect.DeepEqual(gotTasks, wantTasks) {
		t.Errorf("Loader tasks differ from LoadTasks:\n%s\nwant\n%s", dumpTasks(gotTasks), dumpTasks(wantTasks))
	}
}

func dumpTasks(tasks []*Task) string {
	var b strings.Builder
	for _, t := range tasks {
		fmt.Fprintf(&b, "%#v\n", *t)
	}
	return b.String()
}

// testdataFS puts every valid and invalid testdata case into one directory.
func testdataFS(t testing.TB) fstest.MapFS {
	t.Helper()
	paths, err := filepath.Glob("testdata/*/*.toml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	fsys := fstest.MapFS{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fsys[filepath.Base(p)] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	return fsys
}

func TestLoader_Testdata(t *testing.T) {
	opts := LoadOptions{Node: "gpu01", Dir: "conf.d", ReadFile: testEnvFiles, StatDevice: testDevices}
	all := testdataFS(t)
	// One Loader for all cases, so that each case also drops the files of
	// the one before.
	loader := NewLoader(opts)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for name := range all {
			if !yield(name) {
				return
			}
		}
	}) {
		t.Run(strings.TrimSuffix(name, ".toml"), func(t *testing.T) {
			fsys := fstest.MapFS{name: all[name]}
			wantTasks, wantErrs := LoadTasks(fsys, opts)
			for _, pass := range []string{"first", "cached"} {
				tasks, errs := loader.Load(fsys)
				checkSameLoad(t, tasks, errs, wantTasks, wantErrs)
				if len(loader.files) != 1 {
					t.Errorf("%s load: %d files cached, want 1", pass, len(loader.files))
				}
			}
		})
	}
	t.Run("all in one directory", func(t *testing.T) {
		wantTasks, wantErrs := LoadTasks(all, opts)
		if len(wantTasks) == 0 || len(wantErrs) == 0 {
			t.Fatalf("%d tasks, %d errors: want both", len(wantTasks), len(wantErrs))
		}
		for range 2 {
			tasks, errs := loader.Load(all)
			checkSameLoad(t, tasks, errs, wantTasks, wantErrs)
		}
	})
}

// TestLoader_Edits edits a directory and its env files step by step, as
// an operator would, and checks after each step that a Loader answers as
// LoadTasks does, re-parsing only the files that changed.
func TestLoader_Edits(t *testing.T) {
	fsys := fstest.MapFS{}
	env := map[string]string{"/env/db.env": "PASSWORD=one\n"}
	read := func(p string) ([]byte, error) {
		if s, ok := env[p]; ok {
			return []byte(s), nil
		}
		return nil, fsNotExist(p)
	}
	devices := map[string]BlockDevice{}
	stat := func(p string) (BlockDevice, error) {
		if d, ok := devices[p]; ok {
			return d, nil
		}
		return BlockDevice{}, fsNotExist(p)
	}
	opts := LoadOptions{Node: "gpu01", Dir: "conf.d", ReadFile: read, StatDevice: stat}
	const (
		api = sleep + `depends_on = ["db"]` + "\n"
		db  = sleep + `env_file = ["/env/db.env"]` + "\n"
		web = sleep + "port = 8000\n"
	)
	byName := func(tasks []*Task, name string) *Task {
		for _, task := range tasks {
			if task.Name == name {
				return task
			}
		}
		return nil
	}
	hasError := func(errs []*FileError, want string) bool {
		return slices.ContainsFunc(errs, func(e *FileError) bool { return strings.Contains(e.Error(), want) })
	}

	steps := []struct {
		name     string
		edit     func()
		reparsed []string // files parsed again; the rest must come from the cache
		check    func(t *testing.T, tasks, prev []*Task, errs []*FileError)
	}{
		{
			name: "first load",
			edit: func() {
				fsys["api.toml"], fsys["db.toml"], fsys["web.toml"] = file(api), file(db), file(web)
			},
			reparsed: []string{"api.toml", "db.toml", "web.toml"},
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if len(tasks) != 3 || len(errs) > 0 {
					t.Errorf("tasks %q, errors %q", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{name: "nothing changed", edit: func() {}},
		{
			name:     "one file changes",
			edit:     func() { fsys["web.toml"] = file(web + "instances = 2\n") },
			reparsed: []string{"web.toml"},
			check: func(t *testing.T, tasks, _ []*Task, _ []*FileError) {
				if w := byName(tasks, "web"); w == nil || w.Instances != 2 {
					t.Errorf("web = %+v, want 2 instances", w)
				}
			},
		},
		{
			name:     "it breaks",
			edit:     func() { fsys["web.toml"] = file(web + "instances = [\n") },
			reparsed: []string{"web.toml"},
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if byName(tasks, "web") != nil || !hasError(errs, "conf.d/web.toml:3:") {
					t.Errorf("tasks %q, errors %q: want web refused with a syntax error", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{
			name:     "it is fixed",
			edit:     func() { fsys["web.toml"] = file(web) },
			reparsed: []string{"web.toml"},
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if len(tasks) != 3 || len(errs) > 0 {
					t.Errorf("tasks %q, errors %q", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{
			name: "an env file changes, the task file does not",
			edit: func() { env["/env/db.env"] = "PASSWORD=two\n" },
			check: func(t *testing.T, tasks, prev []*Task, _ []*FileError) {
				now, before := byName(tasks, "db"), byName(prev, "db")
				if now == nil || before == nil {
					t.Fatalf("db missing: now %v, before %v", now, before)
				}
				if got := now.EnvFileVars["/env/db.env"]["PASSWORD"]; got != "two" {
					t.Errorf("PASSWORD = %q, want two", got)
				}
				if now.Hash() == before.Hash() {
					t.Error("hash did not change with the env file")
				}
				if d := Compare(before, now); !slices.Equal(d.Restart, []string{"env_file"}) {
					t.Errorf("Compare = %+v, want a restart for env_file", d)
				}
			},
		},
		{
			name: "the env file goes away",
			edit: func() { delete(env, "/env/db.env") },
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if byName(tasks, "db") != nil || !hasError(errs, "/env/db.env does not exist") {
					t.Errorf("tasks %q, errors %q: want db refused", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{
			name: "the env file is back",
			edit: func() { env["/env/db.env"] = "PASSWORD=three\n" },
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if db := byName(tasks, "db"); db == nil || db.EnvFileVars["/env/db.env"]["PASSWORD"] != "three" || len(errs) > 0 {
					t.Errorf("db = %+v, errors %q", db, errorLines(errs))
				}
			},
		},
		{
			name: "a dependency is removed",
			edit: func() { delete(fsys, "db.toml") },
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if byName(tasks, "api") != nil || !hasError(errs, `conf.d/api.toml:2:1: depends_on: no task "db"`) {
					t.Errorf("tasks %q, errors %q: want api refused", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{
			name:     "and added again",
			edit:     func() { fsys["db.toml"] = file(db) },
			reparsed: []string{"db.toml"},
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if len(tasks) != 3 || len(errs) > 0 {
					t.Errorf("tasks %q, errors %q", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{
			name:     "a rename breaks a dependency",
			edit:     func() { fsys["db.toml"] = file(`name = "database"` + "\n" + db) },
			reparsed: []string{"db.toml"},
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if byName(tasks, "api") != nil || !hasError(errs, `no task "db": no task file defines it`) {
					t.Errorf("tasks %q, errors %q: want api refused", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{
			name:     "renamed back",
			edit:     func() { fsys["db.toml"] = file(db) },
			reparsed: []string{"db.toml"},
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if len(tasks) != 3 || len(errs) > 0 {
					t.Errorf("tasks %q, errors %q", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{
			name:     "a second file takes the same name",
			edit:     func() { fsys["db2.toml"] = file(`name = "db"` + "\n" + sleep) },
			reparsed: []string{"db2.toml"},
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if len(tasks) != 3 || !hasError(errs, `conf.d/db2.toml:1:1: name: task "db" is already defined by conf.d/db.toml`) {
					t.Errorf("tasks %q, errors %q: want db2 refused", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{
			name: "and goes away",
			edit: func() { delete(fsys, "db2.toml") },
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if len(tasks) != 3 || len(errs) > 0 {
					t.Errorf("tasks %q, errors %q", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{
			name:     "a cycle",
			edit:     func() { fsys["db.toml"] = file(db + `depends_on = ["api"]` + "\n") },
			reparsed: []string{"db.toml"},
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if !slices.Equal(taskNames(tasks), []string{"web"}) || !hasError(errs, "dependency cycle api -> db -> api") {
					t.Errorf("tasks %q, errors %q: want api and db in a cycle", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{
			name:     "the cycle is broken",
			edit:     func() { fsys["db.toml"] = file(db) },
			reparsed: []string{"db.toml"},
		},
		{
			name: "a file becomes unreadable (a directory)",
			edit: func() {
				delete(fsys, "web.toml")
				fsys["web.toml/x"] = file("")
			},
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if !hasError(errs, "conf.d/web.toml: cannot read: is a directory") {
					t.Errorf("errors %q", errorLines(errs))
				}
			},
		},
		{
			name: "and a file again",
			edit: func() {
				delete(fsys, "web.toml/x")
				fsys["web.toml"] = file(web)
			},
			reparsed: []string{"web.toml"},
		},
		{
			name: "a file is renamed",
			edit: func() {
				fsys["www.toml"] = fsys["web.toml"]
				delete(fsys, "web.toml")
			},
			reparsed: []string{"www.toml"},
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if w := byName(tasks, "www"); w == nil || w.File != "www.toml" {
					t.Errorf("tasks %q: want www from www.toml", taskNames(tasks))
				}
			},
		},
		{
			name: "a task limits IO on a disk that is not there",
			edit: func() {
				fsys["io.toml"] = file(sleep + "[[resources.io]]\ndevice = \"/dev/nvme5n1\"\nwrite_bps = \"10MiB\"\n")
			},
			reparsed: []string{"io.toml"},
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				if byName(tasks, "io") != nil || !hasError(errs, "conf.d/io.toml:3:1: resources.io[0].device: /dev/nvme5n1: no such device") {
					t.Errorf("tasks %q, errors %q: want io refused", taskNames(tasks), errorLines(errs))
				}
			},
		},
		{
			name: "the disk appears, the task file does not change",
			edit: func() { devices["/dev/nvme5n1"] = BlockDevice{Major: 259, Minor: 4} },
			check: func(t *testing.T, tasks, _ []*Task, errs []*FileError) {
				io := byName(tasks, "io")
				if io == nil || len(errs) > 0 {
					t.Fatalf("tasks %q, errors %q: want io", taskNames(tasks), errorLines(errs))
				}
				if d := io.Resources.IO[0]; d.Major != 259 || d.Minor != 4 {
					t.Errorf("device %d:%d, want 259:4", d.Major, d.Minor)
				}
			},
		},
		{
			name: "the disk is renumbered",
			edit: func() { devices["/dev/nvme5n1"] = BlockDevice{Major: 259, Minor: 6} },
			check: func(t *testing.T, tasks, prev []*Task, errs []*FileError) {
				now, before := byName(tasks, "io"), byName(prev, "io")
				if now == nil || before == nil {
					t.Fatalf("io missing: now %v, before %v", now, before)
				}
				if d := Compare(before, now); !slices.Equal(d.InPlace, []string{"resources.io"}) || len(d.Restart) > 0 {
					t.Errorf("Compare = %+v, want resources.io in place", d)
				}
			},
		},
	}

	loader := NewLoader(opts)
	var prev []*Task
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.edit()
			before := maps.Clone(loader.files)
			tasks, errs := loader.Load(fsys)
			wantTasks, wantErrs := LoadTasks(fsys, opts)
			checkSameLoad(t, tasks, errs, wantTasks, wantErrs)

			var reparsed []string
			for name, c := range loader.files {
				if before[name] != c {
					reparsed = append(reparsed, name)
				}
			}
			slices.Sort(reparsed)
			if !slices.Equal(reparsed, step.reparsed) {
				t.Errorf("parsed again: %q, want %q", reparsed, step.reparsed)
			}
			var present []string
			for name, f := range fsys {
				if isTaskFileName(name) && !f.Mode.IsDir() {
					present = append(present, name)
				}
			}
			if len(loader.files) != len(present) {
				t.Errorf("%d files cached, want the %d task files present (%q)", len(loader.files), len(present), present)
			}
			checkCacheIntact(t, loader)
			if shared := sharedRefs(tasks, prev); len(shared) > 0 {
				t.Errorf("tasks share with the previous load: %q", shared)
			}
			if step.check != nil {
				step.check(t, tasks, prev, errs)
			}
			prev = tasks
		})
	}
}

// checkCacheIntact fails when a cached file is not what preparing it again
// gives: a Load, or a caller through what a Load returned, changed it.
func checkCacheIntact(t *testing.T, loader *Loader) {
	t.Helper()
	for name, c := range loader.files {
		if again := prepareFile(c.prepared.src, loader.opts); !reflect.DeepEqual(c.prepared, again) {
			t.Errorf("cached %s changed:\n%#v\nwant\n%#v", name, c.prepared.f, again.f)
		}
	}
}

// TestLoader_CallerChangesResults changes everything a Load returned, as a
// careless caller might; the next Load must not see any of it.
func TestLoader_CallerChangesResults(t *testing.T) {
	opts := LoadOptions{Node: "gpu01", Dir: "conf.d", ReadFile: testEnvFiles, StatDevice: testDevices}
	fsys := testdataFS(t)
	wantTasks, wantErrs := LoadTasks(fsys, opts)
	loader := NewLoader(opts)
	tasks, errs := loader.Load(fsys)
	checkSameLoad(t, tasks, errs, wantTasks, wantErrs)
	scribble(reflect.ValueOf(tasks))
	scribble(reflect.ValueOf(errs))
	again, againErrs := loader.Load(fsys)
	checkSameLoad(t, again, againErrs, wantTasks, wantErrs)
	checkCacheIntact(t, loader)
	if shared := sharedRefs([]any{again, againErrs}, []any{tasks, errs}); len(shared) > 0 {
		t.Errorf("second load shares with the first: %q", shared)
	}
}

// scribble changes every value reachable from v that can be set: strings,
// numbers and booleans, the elements of slices and the entries of maps
// (maps also get a new key). Interfaces (errors) are left alone.
func scribble(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			scribble(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				scribble(v.Field(i))
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			scribble(v.Index(i))
		}
		if v.CanSet() && v.Cap() > v.Len() {
			v.Set(v.Slice(0, v.Cap())) // and write past the end, as append would
			scribble(v)
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			scribble(e)
			v.SetMapIndex(k, e)
		}
		if v.Type().Key().Kind() == reflect.String {
			v.SetMapIndex(reflect.ValueOf("SCRIBBLED").Convert(v.Type().Key()), reflect.Zero(v.Type().Elem()))
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(v.String() + "!")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.CanSet() {
			v.SetInt(v.Int() + 7)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.CanSet() {
			v.SetUint(v.Uint() + 7)
		}
	case reflect.Float32, reflect.Float64:
		if v.CanSet() {
			v.SetFloat(v.Float() + 7)
		}
	case reflect.Bool:
		if v.CanSet() {
			v.SetBool(!v.Bool())
		}
	}
}

// sharedRefs lists the maps, slice arrays and pointers reachable from both
// a and b, by their path in a. Interfaces (errors) are not followed: error
// values are not changed once made.
func sharedRefs(a, b any) []string {
	inB := map[uintptr]bool{}
	walkRefs(reflect.ValueOf(b), "", func(p uintptr, _ string) { inB[p] = true })
	var shared []string
	walkRefs(reflect.ValueOf(a), "", func(p uintptr, path string) {
		if inB[p] {
			shared = append(shared, path)
		}
	})
	return shared
}

func walkRefs(v reflect.Value, path string, visit func(p uintptr, path string)) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		visit(v.Pointer(), path)
		walkRefs(v.Elem(), path, visit)
	case reflect.Interface:
		if path == "" { // the []any of a test, not an error
			walkRefs(v.Elem(), path, visit)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			walkRefs(v.Field(i), path+"."+v.Type().Field(i).Name, visit)
		}
	case reflect.Slice:
		if v.Cap() > 0 { // no array, nothing to share
			visit(v.Pointer(), path)
		}
		for i := range v.Len() {
			walkRefs(v.Index(i), fmt.Sprintf("%s[%d]", path, i), visit)
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		visit(v.Pointer(), path)
		for _, k := range v.MapKeys() {
			walkRefs(v.MapIndex(k), fmt.Sprintf("%s[%v]", path, k), visit)
		}
	}
}

// fill sets every field reachable from v to a value that is not zero:
// maps and slices get one element.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 2))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		v.SetMapIndex(k, e)
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Bool:
		v.SetBool(true)
	}
}

// TestCloneTask fails when Task gains a map, slice or pointer that
// cloneTask does not copy.
func TestCloneTask(t *testing.T) {
	var task Task
	fill(reflect.ValueOf(&task).Elem())
	c := cloneTask(&task)
	if !reflect.DeepEqual(c, task) {
		t.Errorf("clone differs:\n%#v\nwant\n%#v", c, task)
	}
	if shared := sharedRefs(&c, &task); len(shared) > 0 {
		t.Errorf("cloneTask shares %q", shared)
	}
	// Nil and empty stay apart: Hash tells them apart.
	empty := Task{Command: []string{}, Env: map[string]string{}, EnvFileVars: map[string]map[string]string{"/e": nil}}
	if c := cloneTask(&empty); !reflect.DeepEqual(c, empty) || c.Command == nil || c.Env == nil || c.DependsOn != nil {
		t.Errorf("clone of empty and nil values: %#v", c)
	}
}

// glmServeDir is a conf.d of 100 task files like the glm-serve example.
func glmServeDir(b *testing.B) fstest.MapFS {
	src, err := os.ReadFile("testdata/valid/glm-serve.toml")
	if err != nil {
		b.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for i := range 100 {
		data := strings.Replace(string(src), `name = "glm-serve"`, fmt.Sprintf(`name = "glm-serve-%d"`, i), 1)
		fsys[fmt.Sprintf("t%03d.toml", i)] = &fstest.MapFile{Data: []byte(data), Mode: 0o644}
	}
	return fsys
}

// BenchmarkLoader_OneChangedOf100 is a reload after one file of 100
// changed, the common case; compare BenchmarkLoadTasks, which parses all 100.
func BenchmarkLoader_OneChangedOf100(b *testing.B) {
	fsys := glmServeDir(b)
	loader := NewLoader(LoadOptions{Node: "gpu01", ReadFile: testEnvFiles, StatDevice: testDevices})
	loader.Load(fsys)
	base := fsys["t042.toml"].Data
	n := 0
	for b.Loop() {
		n++
		fsys["t042.toml"] = &fstest.MapFile{Data: fmt.Appendf(slices.Clip(base), "# edit %d\n", n), Mode: 0o644}
		tasks, errs := loader.Load(fsys)
		if len(errs) > 0 || len(tasks) != 100 {
			b.Fatalf("%d tasks, errors %v", len(tasks), errs)
		}
	}
}

// BenchmarkLoader_NoneChangedOf100 is the floor of a reload: env files and
// the checks between files, no parsing.
func BenchmarkLoader_NoneChangedOf100(b *testing.B) {
	fsys := glmServeDir(b)
	loader := NewLoader(LoadOptions{Node: "gpu01", ReadFile: testEnvFiles, StatDevice: testDevices})
	loader.Load(fsys)
	for b.Loop() {
		tasks, errs := loader.Load(fsys)
		if len(errs) > 0 || len(tasks) != 100 {
			b.Fatalf("%d tasks, errors %v", len(tasks), errs)
		}
	}
}
