package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// helperEnv selects what a TestHelper* does when this test binary runs itself; unset, they skip.
const helperEnv = "GLMD_TESTENV_HELPER"

// recorder is a testing.TB that records a Fatal or Skip instead of ending the test. Methods it does not override
// panic (the embedded TB is nil), so a helper calling something unexpected shows up.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatal(args ...any)                 { r.end(&r.failed, fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) { r.end(&r.failed, fmt.Sprintf(format, args...)) }
func (r *recorder) Skip(args ...any)                  { r.end(&r.skipped, fmt.Sprint(args...)) }

// end stops the calling goroutine like testing.TB does.
func (r *recorder) end(flag *bool, msg string) {
	*flag, r.msg = true, msg
	runtime.Goexit()
}

// record runs f with a recorder on a goroutine of its own, since Fatal and Skip end the goroutine.
func record(f func(t testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestStrict(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  bool
	}{{"1", true}, {"", false}, {"0", false}, {"true", false}} {
		t.Run(fmt.Sprintf("%q", tt.value), func(t *testing.T) {
			t.Setenv(StrictEnv, tt.value)
			if got := Strict(); got != tt.want {
				t.Errorf("Strict() = %v with %s=%q, want %v", got, StrictEnv, tt.value, tt.want)
			}
		})
	}
}

func TestSkip(t *testing.T) {
	for _, tt := range []struct {
		strict      string
		wantFailed  bool
		wantSkipped bool
	}{{"", false, true}, {"1", true, false}} {
		t.Run("strict="+tt.strict, func(t *testing.T) {
			t.Setenv(StrictEnv, tt.strict)
			r := record(func(t testing.TB) { Skip(t, "needs %s", "a unicorn") })
			if r.failed != tt.wantFailed || r.skipped != tt.wantSkipped {
				t.Errorf("failed %v, skipped %v; want %v, %v", r.failed, r.skipped, tt.wantFailed, tt.wantSkipped)
			}
			if !strings.HasPrefix(r.msg, "needs a unicorn") {
				t.Errorf("message %q does not give the reason first", r.msg)
			}
		})
	}
}

// TestSkip_Subprocess runs a real test that calls Skip, with and without GLMD_TEST_STRICT=1, to see what go test
// reports: a failure is what makes CI red.
func TestSkip_Subprocess(t *testing.T) {
	tests := []struct {
		strict   string
		wantExit int
		want     string
	}{
		{"1", 1, "--- FAIL: TestHelperSkip"},
		{"", 0, "--- SKIP: TestHelperSkip"},
		{"yes", 0, "--- SKIP: TestHelperSkip"},
	}
	for _, tt := range tests {
		t.Run("strict="+tt.strict, func(t *testing.T) {
			out, code := runHelper(t, "TestHelperSkip", "skip", StrictEnv+"="+tt.strict)
			if code != tt.wantExit || !strings.Contains(out, tt.want) || !strings.Contains(out, "needs xyz-42") {
				t.Errorf("exit %d, want %d, and output with %q and the reason:\n%s", code, tt.wantExit, tt.want, out)
			}
		})
	}
}

func TestHelperSkip(t *testing.T) {
	if os.Getenv(helperEnv) != "skip" {
		t.Skip("helper of TestSkip_Subprocess")
	}
	Skip(t, "needs %s", "xyz-42")
	t.Error("Skip returned")
}

func TestRequire(t *testing.T) {
	t.Setenv(StrictEnv, "")
	tests := []struct {
		name string
		f    func(testing.TB)
		have bool
	}{
		{"root", RequireRoot, os.Geteuid() == 0},
		{"linux", RequireLinux, runtime.GOOS == "linux"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := record(tt.f)
			if r.failed || r.skipped == tt.have {
				t.Errorf("have %v: failed %v, skipped %v (%s)", tt.have, r.failed, r.skipped, r.msg)
			}
		})
	}
}

func TestRequireCgroup_BadVersion(t *testing.T) {
	t.Setenv(StrictEnv, "")
	for _, v := range []string{"", "v3", "2"} {
		if r := record(func(t testing.TB) { RequireCgroup(t, v) }); !r.failed {
			t.Errorf("RequireCgroup(%q): failed %v, skipped %v; want a failure", v, r.failed, r.skipped)
		}
	}
}

func TestEventually(t *testing.T) {
	calls := 0
	Eventually(t, 0, func() bool { calls++; return calls == 3 }, "never")
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}

	r := record(func(t testing.TB) {
		Eventually(t, 20*time.Millisecond, func() bool { return false }, "the %s never came", "bus")
	})
	if !r.failed || !strings.Contains(r.msg, "the bus never came") {
		t.Errorf("failed %v with %q, want a failure naming the condition", r.failed, r.msg)
	}
}

func TestReadPids(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content *string // nil: no file
		want    []int
		fail    bool
	}{
		{name: "missing"},
		{name: "empty", content: ptr(""), want: nil},
		{name: "lines", content: ptr("12\n345\n"), want: []int{12, 345}},
		{name: "blank and spaces", content: ptr("1\n\n 3 \n"), want: []int{1, 3}},
		{name: "no final newline", content: ptr("4\n5"), want: []int{4, 5}},
		{name: "junk", content: ptr("1\nx\n"), fail: true},
		{name: "zero", content: ptr("0\n"), fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var got []int
			r := record(func(t testing.TB) { got = ReadPids(t, path) })
			if r.failed != tt.fail || !slices.Equal(got, tt.want) {
				t.Errorf("ReadPids = %v, failed %v (%s); want %v, failed %v", got, r.failed, r.msg, tt.want, tt.fail)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestWorker(t *testing.T) {
	path := Worker(t)
	if again := Worker(t); again != path {
		t.Errorf("second Worker call = %s, want the same binary %s", again, path)
	}
	if out, err := exec.Command(path, "-echo", "hi", "-exit", "0").Output(); err != nil || string(out) != "hi\n" {
		t.Errorf("worker printed %q, %v; want \"hi\\n\"", out, err)
	}
}

func TestWorker_Prebuilt(t *testing.T) {
	dir := t.TempDir()
	prebuilt := filepath.Join(dir, "worker")
	copyFile(t, Worker(t), prebuilt, 0o755)
	plain := filepath.Join(dir, "plain")
	copyFile(t, prebuilt, plain, 0o644)

	tests := []struct {
		name string
		env  string
		want string // "": Worker fails the test
	}{
		{"absolute", prebuilt, prebuilt},
		{"relative", "worker", prebuilt}, // run in dir
		{"missing", filepath.Join(dir, "missing"), ""},
		{"directory", dir, ""},
		{"not executable", plain, ""},
	}
	t.Chdir(dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(WorkerEnv, tt.env)
			var got string
			r := record(func(t testing.TB) { got = Worker(t) })
			if tt.want == "" {
				if !r.failed || !strings.Contains(r.msg, WorkerEnv+"="+tt.env) {
					t.Errorf("Worker() = %q, failed %v (%s); want a failure naming %s=%s", got, r.failed, r.msg,
						WorkerEnv, tt.env)
				}
				return
			}
			if r.failed || got != tt.want {
				t.Fatalf("Worker() = %q, failed %v (%s); want %s", got, r.failed, r.msg, tt.want)
			}
			if out, err := exec.Command(got, "-echo", "hi", "-exit", "0").Output(); err != nil || string(out) != "hi\n" {
				t.Errorf("prebuilt worker printed %q, %v; want \"hi\\n\"", out, err)
			}
		})
	}

	// Without a Go toolchain on PATH, any build would fail; and Main must not remove a worker it did not build.
	t.Run("builds nothing", func(t *testing.T) {
		out, code := runHelper(t, "TestHelperMain", "worker", WorkerEnv+"="+prebuilt, "PATH=")
		got, _ := strings.CutPrefix(firstLine(out, "worker="), "worker=")
		if code != 0 || got != prebuilt {
			t.Fatalf("helper exit %d, worker %q; want exit 0 and %s. Output:\n%s", code, got, prebuilt, out)
		}
		if _, err := os.Stat(prebuilt); err != nil {
			t.Errorf("prebuilt worker gone after the run: %v", err)
		}
	})
}

func copyFile(t *testing.T, from, to string, perm os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, perm); err != nil {
		t.Fatal(err)
	}
}

func TestBuildEnv(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"plain", []string{"A=1"}, []string{"A=1", "CGO_ENABLED=0"}},
		{"cgo on", []string{"CGO_ENABLED=1", "B=2"}, []string{"B=2", "CGO_ENABLED=0"}},
		{"goflags", []string{"GOFLAGS=-race -mod=mod --msan -asan=true -trimpath"},
			[]string{"GOFLAGS=-mod=mod -trimpath", "CGO_ENABLED=0"}},
		{"only race", []string{"GOFLAGS=-race"}, []string{"GOFLAGS=", "CGO_ENABLED=0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := buildEnv(tt.env); !slices.Equal(got, tt.want) {
				t.Errorf("buildEnv(%q) = %q, want %q", tt.env, got, tt.want)
			}
		})
	}
}

// TestMain_Subprocess checks what Main does around the tests: remove the worker, and fail a run that leaks a
// goroutine.
func TestMain_Subprocess(t *testing.T) {
	t.Run("removes worker", func(t *testing.T) {
		if _, err := exec.LookPath("go"); err != nil && os.Getenv(WorkerEnv) != "" {
			// Not a missing prerequisite of glmd's tests: where the worker comes prebuilt, nothing builds one.
			t.Skipf("no Go toolchain to build a worker (%v); %s names a prebuilt one", err, WorkerEnv)
		}
		out, code := runHelper(t, "TestHelperMain", "worker")
		path, ok := strings.CutPrefix(firstLine(out, "worker="), "worker=")
		if code != 0 || !ok {
			t.Fatalf("helper exit %d, output:\n%s", code, out)
		}
		if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("worker directory %s still there after the run: %v", filepath.Dir(path), err)
		}
	})
	t.Run("leak", func(t *testing.T) {
		out, code := runHelper(t, "TestHelperMain", "leak")
		if code != 1 || !strings.Contains(out, "found unexpected goroutines") || !strings.Contains(out, "leakForever") {
			t.Errorf("exit %d, want 1 and goleak naming leakForever:\n%s", code, out)
		}
	})
}

func TestHelperMain(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "worker":
		fmt.Printf("worker=%s\n", Worker(t))
	case "leak":
		go leakForever()
	default:
		t.Skip("helper of TestMain_Subprocess")
	}
}

func leakForever() { select {} }

// runHelper runs this test binary with only the test run, helperEnv=mode, GLMD_TEST_STRICT and GLMD_TESTWORKER unset
// and env added, and returns its output and exit code.
func runHelper(t *testing.T, run, mode string, env ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.v", "-test.count=1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, StrictEnv+"=") && !strings.HasPrefix(kv, helperEnv+"=") &&
			!strings.HasPrefix(kv, WorkerEnv+"=") && !strings.HasPrefix(kv, "GORACE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Under -race the helper would sleep a second at exit (atexit_sleep_ms) for nothing.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, append([]string{helperEnv + "=" + mode, "GORACE=" + gorace}, env...)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	case err != nil:
		t.Fatalf("run helper %s: %v", run, err)
	}
	return string(out), 0
}

func firstLine(out, prefix string) string {
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
