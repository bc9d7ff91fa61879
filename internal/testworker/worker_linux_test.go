package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/open-autoglm/glmd/internal/testenv"
)

// deadline bounds every wait in these tests; generous, as they assert behaviour, not speed.
const deadline = 10 * time.Second

// proc is one worker started by a test, with its stdout as lines and its stderr in a file.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string   // stdout, line by line; closed at EOF
	done  chan struct{} // closed once the worker is reaped; then state is set
	state *os.ProcessState
	errf  string // stderr file
}

// setup changes the command before it starts.
type setup func(*exec.Cmd)

func withEnv(env ...string) setup { return func(c *exec.Cmd) { c.Env = append([]string{}, env...) } }
func withDir(dir string) setup    { return func(c *exec.Cmd) { c.Dir = dir } }

// start runs the worker in its own process group. Its cleanup kills the group and every pid listed in the children
// files, and reaps the worker, also when the test fails.
func start(t *testing.T, args []string, setups ...setup) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{
		t:     t,
		cmd:   exec.Command(testenv.Worker(t), args...),
		lines: make(chan string, 1024),
		done:  make(chan struct{}),
		errf:  filepath.Join(dir, "stderr"),
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for _, s := range setups {
		s(p.cmd)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(p.errf)
	if err != nil {
		t.Fatal(err)
	}
	// Files, not buffers: exec would otherwise wait for copying goroutines that descendants keep blocked.
	p.cmd.Stdout, p.cmd.Stderr = w, stderr
	err = p.cmd.Start()
	_ = w.Close()
	_ = stderr.Close()
	if err != nil {
		_ = r.Close()
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		defer close(p.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		pid := p.cmd.Process.Pid
		_ = unix.Kill(-pid, unix.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(deadline):
			t.Errorf("worker %d not reaped after SIGKILL", pid)
		}
		_ = r.Close() // ends the scanner even if a descendant still holds the pipe
		<-scanned
	})
	return p
}

// killChildren kills, in t.Cleanup, the pids the children file lists when the test ends. Registered after start,
// it runs before the worker is killed, so the worker is still there to reap them.
func killChildren(t *testing.T, childrenFile string) {
	t.Cleanup(func() {
		pids := testenv.ReadPids(t, childrenFile)
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		testenv.WaitGone(t, deadline, pids...)
	})
}

// waitLine reads stdout until a line equal to want, failing at EOF or after the deadline.
func (p *proc) waitLine(want string) {
	p.t.Helper()
	timeout := time.After(deadline)
	var seen []string
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("stdout ended without %q; saw %q; stderr: %s", want, seen, p.stderr())
			}
			if line == want {
				return
			}
			seen = append(seen, line)
		case <-timeout:
			p.t.Fatalf("no line %q on stdout after %v; saw %q", want, deadline, seen)
		}
	}
}

// next returns the next stdout line, false at EOF, failing after the deadline.
func (p *proc) next() (string, bool) {
	p.t.Helper()
	select {
	case line, ok := <-p.lines:
		return line, ok
	case <-time.After(deadline):
		p.t.Fatalf("no line on stdout after %v", deadline)
		return "", false
	}
}

// rest returns the stdout lines until EOF.
func (p *proc) rest() []string {
	p.t.Helper()
	var lines []string
	timeout := time.After(deadline)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				return lines
			}
			lines = append(lines, line)
		case <-timeout:
			p.t.Fatalf("stdout still open after %v; saw %q", deadline, lines)
		}
	}
}

// wait returns how the worker ended.
func (p *proc) wait() syscall.WaitStatus {
	p.t.Helper()
	select {
	case <-p.done:
		return p.state.Sys().(syscall.WaitStatus)
	case <-time.After(deadline):
		p.t.Fatalf("worker %d still running after %v", p.cmd.Process.Pid, deadline)
		return 0
	}
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal worker: %v", err)
	}
}

func (p *proc) stderr() string {
	data, _ := os.ReadFile(p.errf)
	return string(data)
}

func TestWorker_Exit(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"zero", []string{"-exit", "0"}, 0},
		{"code", []string{"-exit", "3"}, 3},
		{"max", []string{"-exit", "255"}, 255},
		{"after", []string{"-exit", "7", "-after", "20ms"}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := start(t, tt.args).wait()
			if !ws.Exited() || ws.ExitStatus() != tt.want {
				t.Errorf("wait status %v (exited %v, code %d), want exit %d", ws, ws.Exited(), ws.ExitStatus(), tt.want)
			}
		})
	}
}

func TestWorker_Crash(t *testing.T) {
	tests := []struct {
		arg  string
		want syscall.Signal
	}{
		{"SIGSEGV", unix.SIGSEGV},
		{"SIGKILL", unix.SIGKILL},
		{"SIGABRT", unix.SIGABRT},
		{"bus", unix.SIGBUS},
		{"TERM", unix.SIGTERM}, // despite the worker's own SIGTERM handler
		{"6", unix.SIGABRT},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			dir := t.TempDir()
			ws := start(t, []string{"-crash", tt.arg, "-after", "1ms"}, withDir(dir)).wait()
			if !ws.Signaled() || ws.Signal() != tt.want {
				t.Errorf("wait status %v (signaled %v, signal %v), want death by %v", ws, ws.Signaled(), ws.Signal(), tt.want)
			}
			if ws.CoreDump() {
				t.Error("the crash dumped core")
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("the crash left files in its working directory: %v", entries)
			}
		})
	}
}

func TestWorker_Term(t *testing.T) {
	tests := []struct {
		name string
		sig  syscall.Signal
		want string
	}{
		{"SIGTERM", unix.SIGTERM, "got SIGTERM"},
		{"SIGINT", unix.SIGINT, "got SIGINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, []string{"-echo", "ready"})
			p.waitLine("ready")
			p.signal(tt.sig)
			p.waitLine(tt.want)
			if ws := p.wait(); !ws.Exited() || ws.ExitStatus() != 0 {
				t.Errorf("wait status %v after %v, want exit 0", ws, tt.sig)
			}
		})
	}

	t.Run("delay", func(t *testing.T) {
		p := start(t, []string{"-echo", "ready", "-term-delay", "1h"})
		p.waitLine("ready")
		p.signal(unix.SIGTERM)
		p.waitLine("got SIGTERM")
		if !testenv.Alive(p.cmd.Process.Pid) {
			ws := p.wait()
			t.Fatalf("worker gone during -term-delay: %v", ws)
		}
		p.signal(unix.SIGKILL)
		if ws := p.wait(); !ws.Signaled() || ws.Signal() != unix.SIGKILL {
			t.Errorf("wait status %v, want death by SIGKILL", ws)
		}
	})
}

func TestWorker_IgnoreTerm(t *testing.T) {
	p := start(t, []string{"-ignore-term", "-echo", "ready"})
	p.waitLine("ready")
	for _, sig := range []syscall.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGTERM} {
		p.signal(sig)
		p.waitLine("ignoring " + unix.SignalName(sig))
	}
	if !testenv.Alive(p.cmd.Process.Pid) {
		t.Fatalf("worker died of ignored signals: %v", p.wait())
	}
	p.signal(unix.SIGKILL)
	if ws := p.wait(); !ws.Signaled() || ws.Signal() != unix.SIGKILL {
		t.Errorf("wait status %v, want death by SIGKILL", ws)
	}
}

func TestWorker_Spawn(t *testing.T) {
	tests := []struct {
		name   string
		flag   string
		setsid bool
	}{
		{"spawn", "-spawn", false},
		{"spawn-setsid", "-spawn-setsid", true},
	}
	for _, tt := range tests {
		for _, ignore := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ignore-term=%v", tt.name, ignore), func(t *testing.T) {
				children := filepath.Join(t.TempDir(), "children")
				args := []string{tt.flag, "2", "-children-file", children}
				if ignore {
					args = append(args, "-children-ignore-term")
				}
				p := start(t, args)
				killChildren(t, children)
				worker := p.cmd.Process.Pid
				pids := waitPids(t, children, 2)

				for _, pid := range pids {
					if pid == worker || !testenv.Alive(pid) {
						t.Fatalf("children file lists %v; %d is the worker or not alive", pids, pid)
					}
					checkRelation(t, pid, "parent", ppid(t, pid), worker)
					if tt.setsid {
						checkRelation(t, pid, "session", sid(t, pid), pid)
						checkRelation(t, pid, "process group", pgid(t, pid), pid)
					} else {
						checkRelation(t, pid, "session", sid(t, pid), sid(t, worker))
						checkRelation(t, pid, "process group", pgid(t, pid), worker)
					}
					if got := ignoresTerm(t, pid); got != ignore {
						t.Errorf("child %d ignores SIGTERM: %v, want %v", pid, got, ignore)
					}
				}
				if ignore {
					return // what ignoring does to a signal the worker's own test covers
				}
				for _, pid := range pids {
					if err := unix.Kill(pid, unix.SIGTERM); err != nil {
						t.Fatal(err)
					}
				}
				// Gone, zombies included: the worker reaps its children.
				testenv.WaitGone(t, deadline, pids...)
				if !testenv.Alive(worker) {
					t.Error("worker died with its children")
				}
			})
		}
	}
}

// TestWorker_Daemonize makes the test process a child subreaper, as glmd is, so that it inherits the grandchildren;
// not parallel, since the flag is process-wide.
func TestWorker_Daemonize(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("become a subreaper: %v", err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })

	children := filepath.Join(t.TempDir(), "children")
	p := start(t, []string{"-daemonize", "2", "-children-file", children})
	// As their subreaper, the test must reap the grandchildren itself, or they stay zombies.
	t.Cleanup(func() {
		for _, pid := range testenv.ReadPids(t, children) {
			if unix.Kill(pid, unix.SIGKILL) == nil {
				// Blocks until it is dead; ECHILD if it is not ours (the test failed before reparenting).
				var ws unix.WaitStatus
				_, _ = unix.Wait4(pid, &ws, 0, nil)
			}
		}
	})
	worker := p.cmd.Process.Pid
	pids := waitPids(t, children, 2)

	for _, pid := range pids {
		// The middle process may still be exiting when its child has written the file.
		testenv.Eventually(t, deadline, func() bool { return ppid(t, pid) == os.Getpid() },
			"grandchild %d not reparented to the test process %d, the nearest subreaper", pid, os.Getpid())
		checkRelation(t, pid, "session", sid(t, pid), pid)
		checkRelation(t, pid, "process group", pgid(t, pid), pid)
		if pid == worker {
			t.Fatalf("children file lists the worker %d", pid)
		}
	}

	pid := pids[0]
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var ws unix.WaitStatus
	testenv.Eventually(t, deadline, func() bool {
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		return got == pid || err != nil
	}, "grandchild %d did not exit on SIGTERM", pid)
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("grandchild wait status %v, want exit 0", ws)
	}
	if !testenv.Alive(worker) {
		t.Error("the worker did not survive its grandchild")
	}
}

func TestWorker_Flood(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		// Neither a whole number of writes nor of lines: the last write is short and the last line cut.
		const n = 3*len(floodLine)*floodLines + 250
		cmd := exec.Command(testenv.Worker(t), "-flood", strconv.Itoa(n), "-exit", "0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("worker: %v", err)
		}
		if len(out) != n {
			t.Fatalf("flooded %d bytes, want %d", len(out), n)
		}
		// The documented line, not floodLine: the test checks the contract, not the constant.
		want := bytes.Repeat([]byte(strings.Repeat("x", 99)+"\n"), n/100+1)[:n]
		if !bytes.Equal(out, want) {
			i := slices.IndexFunc(out, func(b byte) bool { return b != 'x' && b != '\n' })
			t.Errorf("flood is not 99 'x' and a newline per line; first odd byte at %d", i)
		}
	})

	// A SIGTERM stops the flood: "got SIGTERM" is whole and last, also while -term-delay keeps the worker alive.
	for _, delay := range []string{"0s", "1h"} {
		t.Run("forever until SIGTERM/term-delay="+delay, func(t *testing.T) {
			p := start(t, []string{"-flood-forever", "-term-delay", delay})
			xs := floodLine[:len(floodLine)-1]
			// 5 MB first, proving it goes beyond one write.
			const before = 50000
			for i := range before {
				if line, _ := p.next(); line != xs {
					t.Fatalf("line %d is %q, not a flood line", i, line)
				}
			}
			p.signal(unix.SIGTERM)
			for i := before; ; i++ {
				line, ok := p.next()
				if !ok {
					t.Fatal("stdout ended without \"got SIGTERM\"")
				}
				if line == "got SIGTERM" {
					break
				}
				if line != xs {
					t.Fatalf("line %d after SIGTERM is torn: %q", i, line)
				}
			}
			if delay != "0s" {
				p.signal(unix.SIGKILL)
			}
			if rest := p.rest(); len(rest) > 0 {
				t.Errorf("%d lines after \"got SIGTERM\", first %q", len(rest), rest[0])
			}
			ws := p.wait()
			if delay == "0s" && (!ws.Exited() || ws.ExitStatus() != 0) {
				t.Errorf("wait status %v, want exit 0", ws)
			}
		})
	}
}

func TestWorker_Print(t *testing.T) {
	dir := t.TempDir()
	mask := unix.Umask(0)
	unix.Umask(mask)
	tests := []struct {
		name   string
		args   []string
		setups []setup
		stdout string // exact, or a regexp if it starts with ^
		stderr string
	}{
		{name: "echo", args: []string{"-echo", "hello world", "-echo-stderr", "oops"}, stdout: "hello world\n", stderr: "oops\n"},
		{name: "env", args: []string{"-print-env"}, setups: []setup{withEnv("B=2", "A=1=one", "C=")},
			stdout: "A=1=one\nB=2\nC=\n"},
		{name: "empty env", args: []string{"-print-env"}, setups: []setup{withEnv()}, stdout: ""},
		{name: "order", args: []string{"-print-env", "-echo", "first"}, setups: []setup{withEnv("X=1")},
			stdout: "first\nX=1\n"},
		{name: "id", args: []string{"-print-id"}, setups: []setup{withDir(dir)},
			stdout: fmt.Sprintf(`^uid=%d gid=%d groups=[0-9,]* umask=%04o cwd=%s\n$`,
				os.Getuid(), os.Getgid(), mask, regexp.QuoteMeta(dir))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, append(tt.args, "-exit", "0"), tt.setups...)
			var stdout string
			for _, l := range p.rest() {
				stdout += l + "\n"
			}
			if ws := p.wait(); ws.ExitStatus() != 0 {
				t.Fatalf("wait status %v; stderr: %s", ws, p.stderr())
			}
			if strings.HasPrefix(tt.stdout, "^") {
				if !regexp.MustCompile(tt.stdout).MatchString(stdout) {
					t.Errorf("stdout %q does not match %s", stdout, tt.stdout)
				}
			} else if stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", stdout, tt.stdout)
			}
			if got := p.stderr(); got != tt.stderr {
				t.Errorf("stderr %q, want %q", got, tt.stderr)
			}
		})
	}
}

func TestWorker_Pidfile(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pids")
	var want []int
	for range 3 {
		p := start(t, []string{"-pidfile", pidfile, "-exit", "0"})
		if ws := p.wait(); ws.ExitStatus() != 0 {
			t.Fatalf("wait status %v; stderr: %s", ws, p.stderr())
		}
		want = append(want, p.cmd.Process.Pid)
	}
	if got := testenv.ReadPids(t, pidfile); !slices.Equal(got, want) {
		t.Errorf("pidfile lists %v, want %v", got, want)
	}
}

func TestWorker_Usage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown flag", []string{"-bogus"}, "-bogus"},
		{"exit out of range", []string{"-exit", "256"}, "-exit 256"},
		{"unknown signal", []string{"-crash", "SIGNOPE"}, "SIGNOPE"},
		{"exit and crash", []string{"-exit", "1", "-crash", "KILL"}, "exclude"},
		{"after alone", []string{"-after", "1s"}, "-after needs"},
		{"arguments", []string{"extra"}, "extra"},
		{"negative", []string{"-spawn", "-1"}, "negative"},
		{"negative fork", []string{"-fork", "-1"}, "negative"},
		{"negative burn", []string{"-burn-cpu", "-1"}, "negative"},
		{"bad size", []string{"-hog", "5MB"}, "invalid size"},
		{"hog step alone", []string{"-hog-step", "1MiB"}, "-hog-step needs -hog"},
		{"zero hog step", []string{"-hog", "1MiB", "-hog-step", "0"}, "-hog-step 0"},
		{"write bytes alone", []string{"-write-bytes", "4096"}, "-write-bytes needs -write-direct"},
		{"unaligned block", []string{"-write-direct", "x", "-write-block", "1000"}, "multiple of 4096"},
		{"unaligned bytes", []string{"-write-direct", "x", "-write-bytes", "4097"}, "-write-bytes 4097"},
		{"write and exit", []string{"-write-direct", "x", "-exit", "0"}, "excludes"},
		{"write and flood forever", []string{"-write-direct", "x", "-flood-forever"}, "excludes"},
		{"grpc addr file alone", []string{"-grpc-addr-file", "x"}, "need -grpc"},
		{"grpc service alone", []string{"-http", "127.0.0.1:0", "-grpc-service", "x"}, "need -grpc"},
		{"ready after alone", []string{"-ready-after", "1s"}, "-ready-after needs -http or -grpc"},
		{"listen after alone", []string{"-listen-after", "1s"}, "-listen-after needs -http or -grpc"},
		{"negative ready after", []string{"-grpc", "127.0.0.1:0", "-ready-after", "-1s"}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, tt.args)
			if ws := p.wait(); !ws.Exited() || ws.ExitStatus() != 2 {
				t.Errorf("wait status %v, want exit 2", ws)
			}
			if got := p.stderr(); !strings.Contains(got, tt.want) {
				t.Errorf("stderr %q does not mention %q", got, tt.want)
			}
		})
	}
}

// waitPids waits until the children file lists n pids.
func waitPids(t *testing.T, path string, n int) []int {
	t.Helper()
	var pids []int
	testenv.Eventually(t, deadline, func() bool {
		pids = testenv.ReadPids(t, path)
		return len(pids) >= n
	}, "children file lists %d pids, want %d", len(pids), n)
	if len(pids) != n {
		t.Fatalf("children file lists %v, want %d pids", pids, n)
	}
	return pids
}

func checkRelation(t *testing.T, pid int, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("%s of %d is %d, want %d", what, pid, got, want)
	}
}

func ppid(t *testing.T, pid int) int { return statusField(t, pid, "PPid") }

func sid(t *testing.T, pid int) int {
	t.Helper()
	n, err := unix.Getsid(pid)
	if err != nil {
		t.Fatalf("session of %d: %v", pid, err)
	}
	return n
}

func pgid(t *testing.T, pid int) int {
	t.Helper()
	n, err := unix.Getpgid(pid)
	if err != nil {
		t.Fatalf("process group of %d: %v", pid, err)
	}
	return n
}

// ignoresTerm reads the SigIgn mask of /proc/<pid>/status.
func ignoresTerm(t *testing.T, pid int) bool {
	t.Helper()
	mask, err := strconv.ParseUint(statusValue(t, pid, "SigIgn"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return mask&(1<<(unix.SIGTERM-1)) != 0
}

func statusField(t *testing.T, pid int, key string) int {
	t.Helper()
	n, err := strconv.Atoi(statusValue(t, pid, key))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func statusValue(t *testing.T, pid int, key string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("process %d: no %s in status", pid, key)
	return ""
}
