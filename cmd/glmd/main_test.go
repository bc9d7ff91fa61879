package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-autoglm/glmd/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// glmdBin is the glmd binary the end-to-end tests run.
var glmdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "glmd-bin-")
	if err != nil {
		panic(err)
	}
	glmdBin = filepath.Join(dir, "glmd")
	if out, err := exec.Command("go", "build", "-o", glmdBin, ".").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("build glmd: " + err.Error() + "\n" + string(out))
	}
	defer os.RemoveAll(dir)
	testenv.Main(m)
}

func TestValidate_Golden(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		code  int
	}{
		{"valid", map[string]string{"a.toml": "command = [\"/bin/true\"]\n", "b.toml": "command = [\"/bin/true\"]\ndepends_on = [\"a\"]\n"}, 0},
		{"invalid", map[string]string{
			"a.toml": "command = [\"/bin/true\"]\ninstances = 0\n",
			"b.toml": "comand = [\"/bin/true\"]\n",
			"c.toml": "command = [\"/bin/true\"]\ndepends_on = [\"c2\"]\n",
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			// Paths are given relative to the directory so the output does not
			// depend on where the test runs.
			cmd := exec.Command(glmdBin, "validate", "a.toml", "b.toml", "c.toml")
			if tt.name == "valid" {
				cmd = exec.Command(glmdBin, "validate", "a.toml", "b.toml")
			}
			cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			golden(t, "validate-"+tt.name, "stdout:\n"+stdout.String()+"stderr:\n"+stderr.String())
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(glmdBin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "glmd ") || !strings.Contains(string(out), "go1.") {
		t.Fatalf("version printed %q", out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"bogus"}, {"--config", "/nonexistent/glmd.toml"}} {
		cmd := exec.Command(glmdBin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
			t.Errorf("%v: exit %v, want non-zero", args, err)
		}
		if !strings.HasPrefix(stderr.String(), "glmd: ") || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
			t.Errorf("%v: stderr %q, want one line starting with glmd:", args, stderr.String())
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/glmd -update)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestBadConfigExit78 checks that a glmd whose config cannot load exits
// with EX_CONFIG, which the unit excludes from restarts.
func TestBadConfigExit78(t *testing.T) {
	p := filepath.Join(t.TempDir(), "glmd.toml")
	if err := os.WriteFile(p, []byte("log_level = \"loud\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--config", p}, {"--config", "/nonexistent/glmd.toml"}} {
		err := exec.Command(glmdBin, args...).Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 78 {
			t.Errorf("%v: exit %v, want 78", args, err)
		}
	}
}
