package config

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// loadOne loads src as x.toml and fails the test on any error.
func mustLoad(t *testing.T, src string, opts LoadOptions) *Task {
	t.Helper()
	tasks, errs := LoadTasks(fstest.MapFS{"x.toml": file(src)}, opts)
	if len(errs) > 0 || len(tasks) != 1 {
		t.Fatalf("load: %q", errorLines(errs))
	}
	return tasks[0]
}

func TestTask_Render(t *testing.T) {
	envFiles := map[string]string{
		"/env/common.env": "MODEL=glm-4\nSHARED=from-file\nGLMD_NODE=overridden-by-file\n",
		"/env/gpu01.env":  "NODE_ONLY=yes\nSHARED=from-node-file\n",
	}
	read := func(p string) ([]byte, error) {
		if s, ok := envFiles[p]; ok {
			return []byte(s), nil
		}
		return nil, fsNotExist(p)
	}
	tests := []struct {
		name     string
		src      string
		vars     Vars
		wantArgv []string
		wantWd   string
		wantEnv  []string
	}{
		{
			name:     "plain argv, no port",
			src:      `command = ["sleep", "{{.Instance}}"]`,
			vars:     Vars{Instance: 3, Node: "gpu01"},
			wantArgv: []string{"sleep", "3"},
			wantEnv:  []string{"GLMD_INSTANCE=3", "GLMD_NODE=gpu01", "GLMD_TASK=x"},
		},
		{
			name: "ports, workdir, env files, env wins",
			src: `name = "glm"
command = ["serve", "--port={{.Port}}", "--metrics={{.Ports.metrics}}", "{{.Name}}@{{.Node}}"]
workdir = "/srv/{{.Name}}/{{.Instance}}"
port = 8000
instances = 2
ports = { metrics = 9100 }
env_file = ["/env/common.env", "-/env/{{.Node}}.env", "-/env/none.env"]
env = { SHARED = "from-env-{{.Instance}}", URL = "http://localhost:{{.Port}}" }
`,
			vars:     Vars{Name: "ignored", Instance: 1, Node: "gpu01", Port: 8001, Ports: map[string]int{"metrics": 9101}},
			wantArgv: []string{"serve", "--port=8001", "--metrics=9101", "glm@gpu01"},
			wantWd:   "/srv/glm/1",
			wantEnv: []string{
				"GLMD_INSTANCE=1", "GLMD_NODE=overridden-by-file", "GLMD_PORT=8001", "GLMD_PORT_METRICS=9101", "GLMD_TASK=glm",
				"MODEL=glm-4", "NODE_ONLY=yes", "SHARED=from-env-1", "URL=http://localhost:8001",
			},
		},
		{
			name:     "shell",
			src:      `shell = true` + "\n" + `command = "echo {{.Name}} $HOME | tee /tmp/{{.Instance}}"`,
			vars:     Vars{Node: "n"},
			wantArgv: []string{"/bin/sh", "-c", "echo x $HOME | tee /tmp/0"},
			wantEnv:  []string{"GLMD_INSTANCE=0", "GLMD_NODE=n", "GLMD_TASK=x"},
		},
		{
			name:     "port 0: the agent's pick is rendered",
			src:      `command = ["srv", ":{{.Port}}"]` + "\nport = 0\n",
			vars:     Vars{Node: "n", Port: 41234},
			wantArgv: []string{"srv", ":41234"},
			wantEnv:  []string{"GLMD_INSTANCE=0", "GLMD_NODE=n", "GLMD_PORT=41234", "GLMD_TASK=x"},
		},
		{
			name:     "conditionals and functions",
			src:      `command = ["srv", "{{if eq .Instance 0}}--leader{{else}}--follower{{end}}", "{{printf \"%03d\" .Instance}}"]`,
			vars:     Vars{Instance: 2},
			wantArgv: []string{"srv", "--follower", "002"},
			wantEnv:  []string{"GLMD_INSTANCE=2", "GLMD_NODE=", "GLMD_TASK=x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := mustLoad(t, tt.src, LoadOptions{Node: "gpu01", ReadFile: read})
			inst, err := task.Render(tt.vars)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(inst.Argv, tt.wantArgv) {
				t.Errorf("argv = %q, want %q", inst.Argv, tt.wantArgv)
			}
			if inst.Workdir != tt.wantWd {
				t.Errorf("workdir = %q, want %q", inst.Workdir, tt.wantWd)
			}
			if !slices.Equal(inst.Env, tt.wantEnv) {
				t.Errorf("env:\n%s\nwant:\n%s", strings.Join(inst.Env, "\n"), strings.Join(tt.wantEnv, "\n"))
			}
		})
	}
}

func TestTask_Render_Errors(t *testing.T) {
	task := mustLoad(t, `command = ["srv", "{{.Ports.http}}"]`+"\nports = { http = 0 }\nenv_file = [\"/env/{{.Instance}}.env\"]\n",
		LoadOptions{ReadFile: func(p string) ([]byte, error) {
			if p == "/env/0.env" {
				return []byte("A=1\n"), nil
			}
			return nil, fsNotExist(p)
		}})
	if _, err := task.Render(Vars{Instance: 0}); err == nil || !strings.Contains(err.Error(), "no port assigned for ports.http") {
		t.Errorf("render without the named port: %v", err)
	}
	// Instance 1 was not loaded (instances = 1): its env file was never read.
	if _, err := task.Render(Vars{Instance: 1, Ports: map[string]int{"http": 1}}); err == nil || !strings.Contains(err.Error(), "/env/1.env was not read") {
		t.Errorf("render of an instance whose env file was not read: %v", err)
	}
	if _, err := task.Render(Vars{Instance: 0, Ports: map[string]int{"http": 1}}); err != nil {
		t.Errorf("render: %v", err)
	}
}

func TestCheckTemplate(t *testing.T) {
	ports := map[string]int{"http": 0, "metrics": 9100}
	tests := []struct {
		text    string
		hasPort bool
		want    string // "" = fine
	}{
		{"{{.Name}}-{{.Instance}}-{{.Node}}", false, ""},
		{"{{.Port}}", true, ""},
		{"{{.Port}}", false, "{{.Port}} is used but the task declares no port"},
		{"{{$.Port}}", false, "{{.Port}} is used but the task declares no port"},
		{"{{with .Node}}{{.}}{{end}}", false, ""},
		{"{{.Ports.http}}", false, ""},
		{"{{index .Ports \"metrics\"}}", false, ""},
		{"{{.Ports.grpc}}", false, `{{.Ports.grpc}} is used but [ports] declares no "grpc" (declared: http, metrics)`},
		{"{{index .Ports \"grpc\"}}", false, `{{.Ports.grpc}} is used but [ports] declares no "grpc"`},
		{"{{.Instanse}}", false, "{{.Instanse}} is not a template variable (did you mean {{.Instance}}?"},
		{"{{.Foo}}", false, "{{.Foo}} is not a template variable (available:"},
		{"{{range .Ports}}{{.}}{{end}}", false, "{{range}} is not supported"},
		{`{{define "a"}}x{{end}}{{.Name}}`, false, "{{define}} is not supported"},
		{`{{block "a" .}}x{{end}}`, false, "is not supported"},
		{"{{.Name", false, "bad template: unclosed action"},
		{"{{.}}", false, "{{.}} is not a value here"},
		{"{{$}}", false, "{{.}} is not a value here"},
		{"{{with .Node}}{{.}}{{end}}", false, ""},
		{"{{.Ports}}", false, ""},
		{"{{nosuchfunc .Name}}", false, `bad template: function "nosuchfunc" not defined`},
	}
	for _, tt := range tests {
		_, err := checkTemplate("k", tt.text, tt.hasPort, ports, true)
		if tt.text == "{{.Ports}}" {
			// Env files are read before ports are known.
			if _, err := checkTemplate("k", tt.text, tt.hasPort, ports, false); err == nil {
				t.Errorf("checkTemplate(%q) allowed ports in an env_file path", tt.text)
			}
		}
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("checkTemplate(%q): %v", tt.text, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("checkTemplate(%q) = %v, want %q", tt.text, err, tt.want)
		}
	}
}

func TestRender_Limits(t *testing.T) {
	_, err := render("k", `{{printf "%099999d" 1}}`, Vars{})
	if err != nil {
		t.Fatalf("a large value under the limit: %v", err)
	}
	_, err = render("k", strings.Repeat(`{{printf "%099999d" 1}}`, 2), Vars{})
	if err == nil || !strings.Contains(err.Error(), "renders to more than 128 KiB") {
		t.Fatalf("a value over the limit: %v", err)
	}
}
