package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func taskNames(tasks []*Task) []string {
	var names []string
	for _, t := range tasks {
		names = append(names, t.Name)
	}
	return names
}

func errorLines(errs []*FileError) []string {
	var lines []string
	for _, e := range errs {
		lines = append(lines, e.Error())
	}
	return lines
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o644} }

const sleep = `command = ["sleep", "1"]` + "\n"

func TestLoadTasks_CrossFile(t *testing.T) {
	tests := []struct {
		name      string
		fsys      fstest.MapFS
		wantTasks []string
		wantErrs  []string
	}{
		{
			name: "hidden and non-toml files are ignored",
			fsys: fstest.MapFS{
				"a.toml":          file(sleep),
				".a.toml.swp":     file("garbage"),
				".hidden.toml":    file("garbage"),
				"notes.txt":       file("garbage"),
				"b.toml~":         file("garbage"),
				"sub/c.toml":      file(sleep),
				"b.toml.dpkg-new": file("garbage"),
			},
			wantTasks: []string{"a"},
		},
		{
			name: "tasks come sorted by name, not file",
			fsys: fstest.MapFS{
				"1.toml": file(`name = "zeta"` + "\n" + sleep),
				"2.toml": file(`name = "alpha"` + "\n" + sleep),
			},
			wantTasks: []string{"alpha", "zeta"},
		},
		{
			name: "duplicate name: the later file is refused",
			fsys: fstest.MapFS{
				"a.toml":   file(`name = "web"` + "\n" + sleep),
				"b.toml":   file(`name = "web"` + "\n" + sleep),
				"web.toml": file(sleep),
			},
			wantTasks: []string{"web"},
			wantErrs: []string{
				`conf.d/b.toml:1:1: name: task "web" is already defined by conf.d/a.toml (names must be unique)`,
				`conf.d/web.toml: name: task "web" is already defined by conf.d/a.toml (names must be unique)`,
			},
		},
		{
			name: "unknown dependency, with a hint",
			fsys: fstest.MapFS{
				"api.toml":      file(sleep + `depends_on = ["databse", "cache"]`),
				"database.toml": file(sleep),
			},
			wantTasks: []string{"database"},
			wantErrs: []string{
				`conf.d/api.toml:2:1: depends_on: no task "databse": no task file defines it; did you mean "database"?`,
				`conf.d/api.toml:2:1: depends_on: no task "cache": no task file defines it`,
			},
		},
		{
			name: "a broken file still provides its name",
			fsys: fstest.MapFS{
				"api.toml":    file(sleep + `depends_on = ["db", "cache", "broken"]`),
				"db.toml":     file(`command = "not a shell"`),
				"x.toml":      file(`name = "cache"` + "\ninstances = 0\n" + sleep),
				"broken.toml": file(`name = "ignored"` + "\ncommand = [\n"),
			},
			wantTasks: []string{"api"},
			wantErrs: []string{
				`conf.d/broken.toml:2:12: syntax error: unexpected EOF; expected value`,
				`conf.d/db.toml:1:1: command: a string runs through a shell only with shell = true; without a shell write an array (try command = ["not", "a", "shell"])`,
				`conf.d/x.toml:2:1: instances: 0 is out of range (1 to 4096)`,
			},
		},
		{
			name: "a cycle is reported on every task in it",
			fsys: fstest.MapFS{
				"a.toml": file(sleep + `depends_on = ["b"]`),
				"b.toml": file(sleep + `depends_on = ["c"]`),
				"c.toml": file(sleep + `depends_on = ["a", "d"]`),
				"d.toml": file(sleep),
				"e.toml": file(sleep + `depends_on = ["a"]`),
			},
			wantTasks: []string{"d", "e"},
			wantErrs: []string{
				`conf.d/a.toml:2:1: depends_on: dependency cycle a -> b -> c -> a`,
				`conf.d/b.toml:2:1: depends_on: dependency cycle b -> c -> a -> b`,
				`conf.d/c.toml:2:1: depends_on: dependency cycle c -> a -> b -> c`,
			},
		},
		{
			name: "two tasks depending on each other",
			fsys: fstest.MapFS{
				"x.toml": file(sleep + `depends_on = ["y"]`),
				"y.toml": file(sleep + `depends_on = ["x"]`),
			},
			wantErrs: []string{
				`conf.d/x.toml:2:1: depends_on: dependency cycle x -> y -> x`,
				`conf.d/y.toml:2:1: depends_on: dependency cycle y -> x -> y`,
			},
		},
		{
			name: "a directory named like a task file",
			fsys: fstest.MapFS{
				"dir.toml/x": file(""),
				"ok.toml":    file(sleep),
			},
			wantTasks: []string{"ok"},
			wantErrs:  []string{`conf.d/dir.toml: cannot read: is a directory`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tasks, errs := LoadTasks(tt.fsys, LoadOptions{Dir: "conf.d"})
			if got := taskNames(tasks); !slices.Equal(got, tt.wantTasks) {
				t.Errorf("tasks = %q, want %q", got, tt.wantTasks)
			}
			if got := errorLines(errs); !slices.Equal(got, tt.wantErrs) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantErrs, "\n"))
			}
		})
	}
}

func TestLoadTasks_FileErrorTask(t *testing.T) {
	fsys := fstest.MapFS{
		"a.toml": file(`name = "glm"` + "\ninstances = 0\n" + sleep),
		"b.toml": file("command = [\n"),
	}
	_, errs := LoadTasks(fsys, LoadOptions{})
	if len(errs) != 2 {
		t.Fatalf("errors: %v", errs)
	}
	if errs[0].Task != "glm" || errs[0].Key != "instances" || errs[0].Line != 2 || errs[0].Col != 1 {
		t.Errorf("first error = %+v, want task glm, key instances at 2:1", errs[0])
	}
	if errs[1].Task != "b" || !errors.Is(errs[1], ErrSyntax) {
		t.Errorf("second error = %+v, want task b, a syntax error", errs[1])
	}
}

func TestLoadTasks_EnvFiles(t *testing.T) {
	files := map[string]string{
		"/env/quotes.env":  "# comment\n\n  # indented comment\nA=plain value  \nB='single $HOME \\n'\nC=\"double \\\"q\\\" \\$x \\\\ \\n\"\r\nexport D=exported\nE = spaced\nF=\nG=\"with # hash\" # comment\nA=later wins\n",
		"/env/gpu01-0.env": "INSTANCE_FILE=zero\n",
		"/env/gpu01-1.env": "INSTANCE_FILE=one\n",
	}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	tests := []struct {
		name     string
		envFile  string
		wantVars map[string]map[string]string
		wantErr  string
	}{
		{
			name:    "quotes, export, comments, blanks",
			envFile: `["/env/quotes.env"]`,
			wantVars: map[string]map[string]string{"/env/quotes.env": {
				"A": "later wins", "B": `single $HOME \n`, "C": "double \"q\" $x \\ \n", "D": "exported",
				"E": "spaced", "F": "", "G": "with # hash",
			}},
		},
		{
			name:     "per instance and node",
			envFile:  `["/env/{{.Node}}-{{.Instance}}.env"]`,
			wantVars: map[string]map[string]string{"/env/gpu01-0.env": {"INSTANCE_FILE": "zero"}, "/env/gpu01-1.env": {"INSTANCE_FILE": "one"}},
		},
		{
			name:     "optional and missing",
			envFile:  `["-/env/nope.env"]`,
			wantVars: nil,
		},
		{
			name:    "missing",
			envFile: `["/env/nope.env"]`,
			wantErr: `x.toml:3:1: env_file[0]: /env/nope.env does not exist (create it, or write "-/env/nope.env" to make it optional)`,
		},
		{
			name:    "the same file optional, then required",
			envFile: `["-/env/nope.env", "/env/nope.env"]`,
			wantErr: `x.toml:3:1: env_file[1]: /env/nope.env does not exist (create it, or write "-/env/nope.env" to make it optional)`,
		},
		{
			name:    "missing for one instance only",
			envFile: `["/env/gpu01-{{.Instance}}.env", "/env/{{.Name}}-{{.Instance}}.env"]`,
			wantErr: `x.toml:3:1: env_file[1]: /env/x-0.env does not exist (create it, or write "-/env/{{.Name}}-{{.Instance}}.env" to make it optional)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"x.toml": file(sleep + "instances = 2\nenv_file = " + tt.envFile + "\n")}
			tasks, errs := LoadTasks(fsys, LoadOptions{Node: "gpu01", ReadFile: read})
			if tt.wantErr != "" {
				if len(errs) == 0 || errs[0].Error() != tt.wantErr {
					t.Fatalf("errors %q, want first %q", errorLines(errs), tt.wantErr)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("errors: %q", errorLines(errs))
			}
			if got := tasks[0].EnvFileVars; !equalValues(got, tt.wantVars) {
				t.Errorf("EnvFileVars = %q, want %q", got, tt.wantVars)
			}
		})
	}
}

func TestParseEnvFile_Errors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"A=1\nnot a pair\n", `e.env:2: "not a pair" is not KEY=VALUE`},
		{"1A=1\n", `e.env:1: "1A" is not a valid variable name (letters, digits and _, not starting with a digit)`},
		{"A=\"open\n", `e.env:1: A: missing closing " (values cannot span lines)`},
		{"A='x' y\n", `e.env:1: A: unexpected "y" after the closing '`},
		{"MY-VAR=1\n", `e.env:1: "MY-VAR" is not a valid variable name (letters, digits and _, not starting with a digit)`},
	}
	for _, tt := range tests {
		_, err := parseEnvFile("e.env", []byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("parseEnvFile(%q) = %v, want %s", tt.in, err, tt.want)
		}
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.toml", sleep)
	b := write("b.toml", sleep+`depends_on = ["c"]`)
	write("confd/c.toml", sleep)
	write("confd/.hidden.toml", "junk")
	bad := write("other/task.conf", "instances = 0\n"+sleep)

	tasks, errs := LoadFiles([]string{b, a, filepath.Join(dir, "confd"), a, bad, filepath.Join(dir, "missing.toml")}, LoadOptions{})
	if got, want := taskNames(tasks), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("tasks = %q, want %q", got, want)
	}
	want := []string{
		filepath.Join(dir, "missing.toml") + ": cannot read: no such file or directory",
		bad + ":1:1: instances: 0 is out of range (1 to 4096)",
	}
	if got := errorLines(errs); !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, task := range tasks {
		if task.File != task.Name+".toml" {
			t.Errorf("task %s: File = %q", task.Name, task.File)
		}
	}
}

func TestLoadTasks_OSDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "real.toml"), []byte(sleep), 0o644); err != nil {
		t.Fatal(err)
	}
	// Editors and config management swap files in with symbolic links.
	if err := os.Symlink("real.toml", filepath.Join(dir, "link.toml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("gone.toml", filepath.Join(dir, "dangling.toml")); err != nil {
		t.Fatal(err)
	}
	tasks, errs := LoadTasks(os.DirFS(dir), LoadOptions{Dir: dir})
	if got, want := taskNames(tasks), []string{"link", "real"}; !slices.Equal(got, want) {
		t.Errorf("tasks = %q, want %q", got, want)
	}
	if len(errs) != 1 || errs[0].File != filepath.Join(dir, "dangling.toml") || !errors.Is(errs[0], fs.ErrNotExist) {
		t.Errorf("errors = %q, want dangling.toml not found", errorLines(errs))
	}
}

func fsNotExist(p string) error { return &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist} }

// BenchmarkLoadTasks loads a conf.d of 100 task files like the glm-serve
// example, all parsed; compare BenchmarkLoader_OneChangedOf100.
func BenchmarkLoadTasks(b *testing.B) {
	fsys := glmServeDir(b)
	for b.Loop() {
		tasks, errs := LoadTasks(fsys, LoadOptions{Node: "gpu01", ReadFile: testEnvFiles})
		if len(errs) > 0 || len(tasks) != 100 {
			b.Fatalf("%d tasks, errors %v", len(tasks), errs)
		}
	}
}
