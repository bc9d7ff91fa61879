package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/testenv"
)

// realLauncher returns the OS launcher and the test worker. The worker is
// built first: the launcher's reaper collects every child of the process,
// and the build's own `go build` child must not be one of them.
func realLauncher(t *testing.T) (*OSLauncher, string) {
	t.Helper()
	testenv.RequireLinux(t)
	w := testenv.Worker(t)
	l, err := NewOSLauncher(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return l, w
}

// outFile is a file a worker writes its stdout to.
func outFile(t *testing.T) (*os.File, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, p
}

// realRunner runs a Runner over the OS launcher; the cleanup stops it and
// checks that no process of the instance is left.
func realRunner(t *testing.T, task string, argv []string, mutate func(*Spec)) *Runner {
	t.Helper()
	l, _ := realLauncher(t)
	spec := Spec{
		Command:     Command{Task: task, Argv: argv, Umask: -1},
		Restart:     RestartPolicy{Policy: "always", SuccessCodes: []int{0}, Delay: 10 * time.Millisecond, MaxDelay: time.Second, MinUptime: time.Minute},
		StopSignal:  syscall.SIGTERM,
		StopTimeout: 10 * time.Second,
	}
	if mutate != nil {
		mutate(&spec)
	}
	r := NewRunner(spec, Options{Launcher: l, Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	t.Cleanup(func() {
		stopCtx, done := context.WithTimeout(context.Background(), 30*time.Second)
		defer done()
		if err := r.Stop(stopCtx); err != nil {
			t.Errorf("cleanup stop: %v", err)
		}
		cancel()
		<-r.Done()
		assertNoneLeft(t, task)
	})
	return r
}

// assertNoneLeft fails if any process of the task is alive, or if the test
// process has a zombie child.
func assertNoneLeft(t *testing.T, task string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() bool {
		return len(testenv.ProcsWithEnv("GLMD_TASK="+task)) == 0
	}, "processes of %s still alive: %v", task, testenv.ProcsWithEnv("GLMD_TASK="+task))
	testenv.Eventually(t, 10*time.Second, func() bool {
		for _, c := range children(os.Getpid()) {
			if !alive(c) {
				return false
			}
		}
		return true
	}, "zombie children of the test process: %v", children(os.Getpid()))
}

func waitState(t *testing.T, r *Runner, want State) Status {
	t.Helper()
	var st Status
	testenv.Eventually(t, 20*time.Second, func() bool {
		st = r.Status()
		return st.State == want
	}, "state %s, want %s", r.Status().State, want)
	return st
}

func TestOSLauncher_CleanEnvironment(t *testing.T) {
	l, w := realLauncher(t)
	t.Setenv("CONSUL_HTTP_TOKEN", "agent-secret")
	t.Setenv("GLMD_LEAK_CANARY", "1")
	out, path := outFile(t)
	p, err := l.Launch(t.Context(), &Command{
		Task: "envtest", Instance: 3, Umask: -1, Stdout: out,
		Argv: []string{w, "-print-env", "-exit", "0"},
		Env:  []string{"MODEL=glm-4", "GLMD_TASK=forged", "HOME=/custom"},
	})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if e := p.Exit(); e.Reason != ReasonExited || e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	b, _ := os.ReadFile(path)
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	u, _ := user.Current()
	want := map[string]string{
		"MODEL": "glm-4", "HOME": "/custom", "PATH": defaultPath, "USER": u.Username, "LOGNAME": u.Username,
		"GLMD_TASK": "envtest", "GLMD_INSTANCE": "3",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"CONSUL_HTTP_TOKEN", "GLMD_LEAK_CANARY"} {
		if _, ok := env[k]; ok {
			t.Errorf("the agent's %s leaked into the worker", k)
		}
	}
	if len(env) != len(want) {
		t.Errorf("environment has %d variables, want %d: %v", len(env), len(want), env)
	}
}

func TestOSLauncher_ProcessGroupUserUmaskDir(t *testing.T) {
	testenv.RequireRoot(t)
	l, w := realLauncher(t)
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir), filepath.Dir(w)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, path := outFile(t)
	p, err := l.Launch(t.Context(), &Command{
		Task: "idtest", User: "nobody", Umask: 0o027, Dir: dir, Stdout: out,
		Argv: []string{w, "-print-id", "-exit", "0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	b, _ := os.ReadFile(path)
	u, err := user.Lookup("nobody")
	if err != nil {
		testenv.Skip(t, "no user nobody on this host")
	}
	for _, want := range []string{"uid=" + u.Uid + " ", "gid=" + u.Gid + " ", "umask=0027", "cwd=" + dir} {
		if !strings.Contains(string(b), want) {
			t.Errorf("worker printed %q, want %q in it", b, want)
		}
	}
	// The agent's own umask is untouched.
	old := syscall.Umask(0o022)
	syscall.Umask(old)
	if old == 0o027 {
		t.Error("the agent's umask changed")
	}
}

func TestOSLauncher_OwnProcessGroup(t *testing.T) {
	l, w := realLauncher(t)
	p, err := l.Launch(t.Context(), &Command{Task: "pgtest", Umask: -1, Argv: []string{w}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Signal(syscall.SIGKILL); <-p.Done() }()
	pgid, err := syscall.Getpgid(p.PID())
	if err != nil || pgid != p.PID() {
		t.Fatalf("pgid %d (%v), want %d", pgid, err, p.PID())
	}
}

func TestOSLauncher_PermanentErrors(t *testing.T) {
	l, w := realLauncher(t)
	noexec := filepath.Join(t.TempDir(), "script")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	tests := []struct {
		name string
		cmd  Command
		want string
	}{
		{"missing binary", Command{Argv: []string{"/nonexistent/glm-serve"}}, "no such file"},
		{"not in PATH", Command{Argv: []string{"glm-serve-nope"}}, "not found in PATH"},
		{"not executable", Command{Argv: []string{noexec}}, "not executable"},
		{"missing workdir", Command{Argv: []string{w}, Dir: "/nonexistent/dir"}, "workdir /nonexistent/dir"},
		{"unknown user", Command{Argv: []string{w}, User: "no-such-user-glmd"}, `user "no-such-user-glmd"`},
		{"empty", Command{}, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cmd.Umask = -1
			_, err := l.Launch(t.Context(), &tt.cmd)
			if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a permanent error containing %q", err, tt.want)
			}
		})
	}
}

func TestRunner_Real_CrashIsRestarted(t *testing.T) {
	_, w := realLauncher(t)
	pidfile := filepath.Join(t.TempDir(), "pids")
	r := realRunner(t, "crashtest", []string{w, "-pidfile", pidfile, "-crash", "SIGSEGV", "-after", "50ms"}, nil)
	r.Start(t.Context())
	testenv.Eventually(t, 20*time.Second, func() bool { return r.Status().Restarts >= 2 }, "not restarted twice")
	st := r.Status()
	if st.LastExit.Signal != "SIGSEGV" || st.LastExit.Reason != ReasonSignal || st.Exits[ReasonSignal] < 2 {
		t.Fatalf("status %+v", st)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return len(testenv.ReadPids(t, pidfile)) >= 3 }, "fewer than 3 starts in the pidfile")
}

func TestRunner_Real_StopEscalatesToSIGKILL(t *testing.T) {
	_, w := realLauncher(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	r := realRunner(t, "ignoreterm", []string{w, "-ignore-term", "-pidfile", pidfile}, func(s *Spec) { s.StopTimeout = 300 * time.Millisecond })
	r.Start(t.Context())
	st := waitState(t, r, StateRunning)
	pid := st.PID
	// The pidfile is written once the worker handles signals.
	testenv.Eventually(t, 10*time.Second, func() bool { return len(testenv.ReadPids(t, pidfile)) == 1 }, "no pidfile")
	if err := r.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	st = r.Status()
	if st.State != StateStopped || st.LastExit.Signal != "SIGKILL" || st.LastExit.Reason != ReasonStopped {
		t.Fatalf("status %+v", st)
	}
	testenv.WaitGone(t, 5*time.Second, pid)
}

func TestRunner_Real_StopKillsEveryDescendant(t *testing.T) {
	_, w := realLauncher(t)
	kids := filepath.Join(t.TempDir(), "kids")
	r := realRunner(t, "treetest", []string{w, "-spawn", "2", "-spawn-setsid", "2", "-daemonize", "2",
		"-children-ignore-term", "-children-file", kids}, func(s *Spec) { s.StopTimeout = 500 * time.Millisecond })
	r.Start(t.Context())
	waitState(t, r, StateRunning)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(testenv.ReadPids(t, kids)) == 6 }, "6 descendants did not start")
	pids := testenv.ReadPids(t, kids)
	if err := r.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	testenv.WaitGone(t, 5*time.Second, pids...)
	assertNoneLeft(t, "treetest")
}

func TestRunner_Real_LeftoversOfACrashAreKilledBeforeRestart(t *testing.T) {
	_, w := realLauncher(t)
	dir := t.TempDir()
	kids, pidfile := filepath.Join(dir, "kids"), filepath.Join(dir, "pids")
	r := realRunner(t, "leftovers", []string{w, "-pidfile", pidfile, "-daemonize", "1", "-spawn-setsid", "1",
		"-children-file", kids, "-exit", "3", "-after", "300ms"}, func(s *Spec) {
		s.Restart.Policy = "never"
		s.StopTimeout = 2 * time.Second
	})
	r.Start(t.Context())
	st := waitState(t, r, StateFailed)
	if st.LastExit.Code != 3 || st.LastExit.Reason != ReasonExited {
		t.Fatalf("last exit %+v", st.LastExit)
	}
	pids := testenv.ReadPids(t, kids)
	if len(pids) != 2 {
		t.Fatalf("%d descendants recorded, want 2", len(pids))
	}
	testenv.WaitGone(t, 5*time.Second, pids...)
}

func TestRunner_Real_JobExits(t *testing.T) {
	_, w := realLauncher(t)
	r := realRunner(t, "jobtest", []string{w, "-exit", "0"}, func(s *Spec) { s.Restart.Policy = "on-failure" })
	r.Start(t.Context())
	st := waitState(t, r, StateExited)
	if st.Restarts != 0 || st.LastExit.Code != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestOSLauncher_ExitClassification(t *testing.T) {
	l, w := realLauncher(t)
	tests := []struct {
		args []string
		want Exit
	}{
		{[]string{"-exit", "0"}, Exit{Code: 0, Reason: ReasonExited}},
		{[]string{"-exit", "42"}, Exit{Code: 42, Reason: ReasonExited}},
		{[]string{"-crash", "SIGABRT"}, Exit{Code: 128 + 6, Signal: "SIGABRT", Reason: ReasonSignal}},
		{[]string{"-crash", "SIGKILL"}, Exit{Code: 137, Signal: "SIGKILL", Reason: ReasonSignal}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			p, err := l.Launch(t.Context(), &Command{Task: "exits", Umask: -1, Argv: append([]string{w}, tt.args...)})
			if err != nil {
				t.Fatal(err)
			}
			<-p.Done()
			if got := p.Exit(); got != tt.want {
				t.Fatalf("exit %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOSLauncher_ManyQuickExitsAllReaped(t *testing.T) {
	l, w := realLauncher(t)
	const n = 50
	procs := make([]Process, n)
	for i := range procs {
		p, err := l.Launch(t.Context(), &Command{Task: "quick", Instance: i, Umask: -1, Argv: []string{w, "-exit", strconv.Itoa(i % 7)}})
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = p
	}
	for i, p := range procs {
		select {
		case <-p.Done():
		case <-time.After(20 * time.Second):
			t.Fatalf("process %d never reaped", i)
		}
		if got := p.Exit().Code; got != i%7 {
			t.Errorf("process %d exit %d", i, got)
		}
	}
	assertNoneLeft(t, "quick")
}

func TestOSLauncher_Run(t *testing.T) {
	l, w := realLauncher(t)
	tests := []struct {
		name    string
		args    []string
		timeout time.Duration
		code    int
		out     string
		err     error
	}{
		{"success", []string{"-echo", "healthy", "-exit", "0"}, 10 * time.Second, 0, "healthy\n", nil},
		{"failure", []string{"-echo-stderr", "broken", "-exit", "3"}, 10 * time.Second, 3, "broken\n", nil},
		{"hangs", []string{"-echo", "stuck", "-ignore-term"}, 300 * time.Millisecond, 137, "stuck\n", context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), tt.timeout)
			defer cancel()
			e, out, err := l.Run(ctx, &Command{Task: "probe", Umask: -1, Argv: append([]string{w}, tt.args...)}, 1024)
			if !errors.Is(err, tt.err) || e.Code != tt.code || !strings.HasPrefix(string(out), tt.out) {
				t.Fatalf("exit %+v output %q err %v; want code %d output %q err %v", e, out, err, tt.code, tt.out, tt.err)
			}
		})
	}
	assertNoneLeft(t, "probe")
}
