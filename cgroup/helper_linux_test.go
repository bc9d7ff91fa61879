package cgroup

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/internal/testenv"
	"github.com/open-autoglm/glmd/supervisor"
	"golang.org/x/sys/unix"
)

// helperEnv selects a helper mode of this test binary (see runHelper).
const helperEnv = "GLMD_CGROUP_TEST_HELPER"

// setupTestProcess makes the test process a child subreaper: processes
// that double-fork out of a test's worker are reparented to it, so the
// tests reap them by pid instead of leaving zombies to an unknown init.
func setupTestProcess() {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "cgroup tests: PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(2)
	}
}

// runHelper runs one helper mode and returns the exit code:
//
//	sleep                 print "sleeping", sleep until killed
//	burn N                spin N threads until killed; prints "burning"
//	hog MIB               touch MIB MiB in 4 MiB steps; prints "touched N" per step; exit 3 if it survives
//	fork N                fork+exec N /bin/sleep; prints "started=S eagain=E"; waits for stdin EOF,
//	                      kills and reaps them, exits 0
//	write-direct PATH MIB write MIB MiB to PATH with O_DIRECT in 1 MiB writes; prints "wrote=B seconds=S"
//	delegated             act as an agent started by systemd in its own cgroup: New with MoveSelf and the
//	                      default parent, start a limited sleeper; prints "own=P", "worker=CGROUP",
//	                      "memory.max=V"; on stdin EOF stops it and exits 0
func runHelper(mode string, args []string) int {
	arg := func(i int) int {
		if i >= len(args) {
			fmt.Fprintf(os.Stderr, "helper %s: missing argument %d\n", mode, i+1)
			os.Exit(2)
		}
		n, err := strconv.Atoi(args[i])
		if err != nil {
			fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
			os.Exit(2)
		}
		return n
	}
	switch mode {
	case "sleep":
		fmt.Println("sleeping")
		for {
			time.Sleep(time.Hour)
		}
	case "burn":
		n := arg(0)
		runtime.GOMAXPROCS(n + 1)
		for range n {
			go func() {
				x := 0
				for {
					x++
				}
			}()
		}
		fmt.Println("burning")
		for {
			time.Sleep(time.Hour)
		}
	case "hog":
		return hog(arg(0))
	case "fork":
		return forkMany(arg(0))
	case "write-direct":
		if len(args) < 1 {
			return 2
		}
		return writeDirect(args[0], arg(1))
	case "delegated":
		return delegated()
	case "open":
		if len(args) < 1 {
			return 2
		}
		return openDevice(args[0])
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}

func hog(mibs int) int {
	const step = 4 << 20
	for touched := 0; touched < mibs<<20; touched += step {
		mem, err := unix.Mmap(-1, 0, step, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			fmt.Fprintln(os.Stderr, "hog: mmap:", err)
			return 1
		}
		for i := 0; i < len(mem); i += 4096 {
			mem[i] = 1
		}
		fmt.Printf("touched %d\n", (touched+step)>>20)
	}
	return 3
}

func forkMany(n int) int {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 1
	}
	attr := &syscall.ProcAttr{Files: []uintptr{devnull.Fd(), devnull.Fd(), devnull.Fd()}}
	var pids []int
	eagain, other := 0, 0
	for range n {
		pid, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "1000"}, attr)
		switch {
		case err == nil:
			pids = append(pids, pid)
		case errors.Is(err, syscall.EAGAIN):
			eagain++
		default:
			other++
			fmt.Fprintln(os.Stderr, "fork:", err)
		}
	}
	fmt.Printf("started=%d eagain=%d other=%d\n", len(pids), eagain, other)
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
	}
	return 0
}

func writeDirect(path string, mibs int) int {
	const chunk = 1 << 20
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|syscall.O_DIRECT, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "write-direct:", err)
		return 1
	}
	defer f.Close()
	// O_DIRECT wants an aligned buffer: mmap gives a page-aligned one.
	buf, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fmt.Fprintln(os.Stderr, "write-direct: mmap:", err)
		return 1
	}
	for i := range buf {
		buf[i] = byte(i)
	}
	start := time.Now()
	written := 0
	for range mibs {
		n, err := f.Write(buf)
		written += n
		if err != nil {
			fmt.Fprintln(os.Stderr, "write-direct:", err)
			return 1
		}
	}
	if err := f.Sync(); err != nil {
		fmt.Fprintln(os.Stderr, "write-direct: fsync:", err)
		return 1
	}
	fmt.Printf("wrote=%d seconds=%.3f\n", written, time.Since(start).Seconds())
	return 0
}

// testManager builds a manager of mode below a parent of its own, or
// skips. The parent and every group below it are removed when the test
// ends.
func testManager(t testing.TB, mode string) *Manager {
	t.Helper()
	testenv.RequireRoot(t)
	opts := Options{Parent: "/glmd-test-" + randomHex(), Log: testLogger(t)}
	switch mode {
	case ModeV2:
		testenv.RequireCgroup(t, "v2")
	case ModeV1, ModeV1Twin:
		testenv.RequireCgroup(t, "v1")
	}
	m := newTestManager(t, opts, mode != ModeV1)
	switch {
	case m.Mode() == mode:
	case mode == ModeV1Twin && m.Mode() == ModeV1:
		// A legacy host has no unified hierarchy for twins: not a missing
		// prerequisite, another kind of host; the "v1" variant runs.
		t.Skipf("this host has no unified hierarchy for twins (mode %s)", m.Mode())
	default:
		testenv.Skip(t, "this host gives mode %s, the test wants %s", m.Mode(), mode)
	}
	return m
}

// newTestManager is newManager with cleanup: the groups below opts.Parent
// are killed and removed, and then the parent itself.
func newTestManager(t testing.TB, opts Options, twins bool) *Manager {
	t.Helper()
	m, err := newManager(opts, twins)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		for _, g := range m.openGroups() {
			_ = g.Kill()
		}
		m.mu.Lock()
		clear(m.groups)
		m.mu.Unlock()
		if _, err := m.Cleanup(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, d := range m.parentDirs() {
			if err := rmdir(d); err != nil {
				t.Errorf("remove the test's parent cgroup: %v", err)
			}
		}
	})
	return m
}

func (m *Manager) openGroups() []*group {
	m.mu.Lock()
	defer m.mu.Unlock()
	var gs []*group
	for _, g := range m.groups {
		gs = append(gs, g)
	}
	return gs
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// open opens a group and fails the test on error.
func open(t testing.TB, m *Manager, name string, l resources.Limits) *group {
	t.Helper()
	g, err := m.Open(context.Background(), name, l)
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	return g.(*group)
}

// proc is a process a test started in a group.
type proc struct {
	pid    int
	done   chan struct{}
	status syscall.WaitStatus // set when done is closed
	lines  chan string        // stdout, line by line; closed at EOF
	stdin  *os.File           // write end of its stdin
	stdout *os.File           // read end of its stdout
}

// helperArgv runs this test binary as helper mode with args.
func helperArgv(t *testing.T, mode string, args ...string) (argv, env []string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{self}, args...), []string{helperEnv + "=" + mode, "PATH=/bin:/usr/bin", "GOMAXPROCS=2"}
}

// start starts argv in g through Start, as the supervisor does, with a
// pipe for stdin and one for stdout. The process is killed and reaped when
// the test ends.
func start(t *testing.T, g supervisor.Group, env []string, argv ...string) *proc {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if env == nil {
		env = []string{"PATH=/bin:/usr/bin"}
	}
	attr := &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{inR.Fd(), outW.Fd(), os.Stderr.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	pid, err := g.Start(func(fd int) (int, error) {
		if fd >= 0 {
			attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, fd
		}
		return syscall.ForkExec(argv[0], argv, attr)
	})
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		t.Fatalf("Start %v: %v", argv, err)
	}
	p := &proc{pid: pid, done: make(chan struct{}), lines: make(chan string, 100), stdin: inW, stdout: outR}
	go func() {
		defer close(p.done)
		for {
			_, err := syscall.Wait4(pid, &p.status, 0, nil)
			if !errors.Is(err, syscall.EINTR) {
				return
			}
		}
	}()
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		// Descendants hold the stdout pipe too: kill the group, and close
		// the read end so that the reader ends whatever escaped.
		_ = g.Kill()
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-p.done
		p.stdin.Close()
		p.stdout.Close()
		for range p.lines {
		}
	})
	return p
}

// wait waits for the process to end and returns its status.
func (p *proc) wait(t *testing.T, timeout time.Duration) syscall.WaitStatus {
	t.Helper()
	select {
	case <-p.done:
		return p.status
	case <-time.After(timeout):
		t.Fatalf("process %d did not end within %v", p.pid, timeout)
		return 0
	}
}

// line returns the next stdout line.
func (p *proc) line(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("process %d closed stdout", p.pid)
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("process %d printed nothing within %v", p.pid, timeout)
		return ""
	}
}

// reap waits for pids that became the test's children when their parent
// died (the test process is a subreaper); a pid that is not its child is
// skipped.
func reap(pids ...int) {
	for _, pid := range pids {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
	}
}

// waitEmpty waits until the group lists no process.
func waitEmpty(t *testing.T, g *group) {
	t.Helper()
	var last []int
	testenv.Eventually(t, 0, func() bool {
		pids, err := g.Procs()
		if err != nil {
			t.Fatal(err)
		}
		last = pids
		return len(pids) == 0
	}, "group %s still has processes %v", g.name, last)
}

// readCgroupFile reads one file of the group: ctrl names the v1
// controller, "" the unified directory.
func readCgroupFile(t *testing.T, g *group, ctrl, file string) string {
	t.Helper()
	dir := g.unified
	if ctrl != "" {
		dir = g.dirs[ctrl]
	}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// hasFile reports whether the group has the file.
func hasFile(g *group, ctrl, file string) bool {
	dir := g.unified
	if ctrl != "" {
		dir = g.dirs[ctrl]
	}
	if dir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, file))
	return !errors.Is(err, fs.ErrNotExist)
}

// swapAccounted reports whether the group can limit swap.
func swapAccounted(g *group) bool {
	if g.m.v1 != nil {
		return hasFile(g, "memory", "memory.memsw.limit_in_bytes")
	}
	return hasFile(g, "", "memory.swap.max")
}

// testDisk finds a disk the IO test may write to: GLMD_TEST_DISK (a
// throw-away block device, in the VM), else a new directory on the disk
// that holds the test's temporary directory or working directory. It
// returns the file to write and the disk's device numbers.
func testDisk(t *testing.T) (target string, major, minor uint32) {
	t.Helper()
	if dev := os.Getenv("GLMD_TEST_DISK"); dev != "" {
		var st unix.Stat_t
		if err := unix.Stat(dev, &st); err != nil {
			t.Fatalf("GLMD_TEST_DISK: %v", err)
		}
		return dev, unix.Major(st.Rdev), unix.Minor(st.Rdev)
	}
	wd, _ := os.Getwd()
	for _, dir := range []string{t.TempDir(), wd} {
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			continue
		}
		maj, mnr := unix.Major(st.Dev), unix.Minor(st.Dev)
		if _, err := os.Stat(fmt.Sprintf("/sys/dev/block/%d:%d", maj, mnr)); err != nil {
			continue // tmpfs, overlayfs: no block device
		}
		d, err := os.MkdirTemp(dir, ".glmd-io-test-")
		if err != nil {
			continue
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		return filepath.Join(d, "data"), maj, mnr
	}
	testenv.Skip(t, "no directory on a block device to write to (set GLMD_TEST_DISK to a throw-away disk)")
	return "", 0, 0
}

// delegated is the "delegated" helper mode: an agent in a delegated v2
// subtree (see TestV2_Manager_DelegatedSubtree).
func delegated() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "delegated:", err); return 1 }
	m, err := New(Options{MoveSelf: true})
	if err != nil {
		return fail(err)
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	fmt.Println("own=" + strings.TrimPrefix(strings.TrimSpace(string(self)), "0::"))
	g, err := m.Open(context.Background(), "leaf@0", resources.Limits{MemoryMax: 64 << 20, PidsMax: 50})
	if err != nil {
		return fail(err)
	}
	pid, err := g.Start(func(fd int) (int, error) {
		attr := &syscall.ProcAttr{Files: []uintptr{0, 2, 2}, Sys: &syscall.SysProcAttr{}}
		if fd >= 0 {
			attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, fd
		}
		return syscall.ForkExec("/bin/sleep", []string{"sleep", "1000"}, attr)
	})
	if err != nil {
		return fail(err)
	}
	w, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	cg := strings.TrimPrefix(strings.TrimSpace(string(w)), "0::")
	fmt.Println("worker=" + cg)
	max, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup", cg, "memory.max"))
	fmt.Println("memory.max=" + strings.TrimSpace(string(max)))
	io.Copy(io.Discard, os.Stdin)
	g.Kill()
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	if err := g.Delete(); err != nil {
		return fail(err)
	}
	if err := m.Wait(context.Background()); err != nil {
		return fail(err)
	}
	return 0
}

// openDevice opens path for reading and prints "open ok" or the error.
func openDevice(path string) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Println("open " + err.Error())
		return 0
	}
	f.Close()
	fmt.Println("open ok")
	return 0
}
