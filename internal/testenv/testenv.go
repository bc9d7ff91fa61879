// Package testenv holds what glmd's tests share: prerequisites that skip on a laptop and fail in CI, the test worker
// binary, and helpers to wait for processes without sleeping.
//
// A prerequisite that is missing skips the test with its reason; under GLMD_TEST_STRICT=1 (set by CI) it fails the
// test with the same reason, so that CI cannot pass by skipping. Every test binary that uses Worker calls Main from
// its TestMain, which removes the built worker and checks for leaked goroutines.
package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// StrictEnv is the environment variable that turns missing prerequisites into failures when set to "1".
const StrictEnv = "GLMD_TEST_STRICT"

// DefaultTimeout is what WaitGone and Eventually wait when given a timeout of 0: generous, because tests assert
// behaviour, not speed, and CI machines are slow and shared.
const DefaultTimeout = 10 * time.Second

// Strict reports whether GLMD_TEST_STRICT=1: then a missing prerequisite fails the test instead of skipping it.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// Skip skips with the reason, or fails with the same reason under GLMD_TEST_STRICT=1.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (%s=1: a missing prerequisite is a failure)", reason, StrictEnv)
	}
	t.Skip(reason)
}

// RequireRoot skips (or fails, see Skip) unless the test runs with effective uid 0.
func RequireRoot(t testing.TB) {
	t.Helper()
	if euid := os.Geteuid(); euid != 0 {
		Skip(t, "test needs root, runs as uid %d: run it as root, e.g. in CI or with sudo", euid)
	}
}

// RequireLinux skips (or fails, see Skip) unless the test runs on Linux.
func RequireLinux(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		Skip(t, "test needs Linux, runs on %s", runtime.GOOS)
	}
}

// Main wraps testing.M for TestMain: runs the tests, removes the built worker, and checks goroutine leaks with
// goleak after a successful run (goleak.VerifyTestMain semantics, with opts). It does not return.
func Main(m *testing.M, opts ...goleak.Option) {
	goleak.VerifyTestMain(mainRunner{m}, opts...)
}

// mainRunner removes the worker right after the tests, before goleak looks and before any goleak.Cleanup option.
type mainRunner struct{ m *testing.M }

func (r mainRunner) Run() int {
	code := r.m.Run()
	removeWorker()
	return code
}

// Eventually polls cond every few ms until it returns true or the timeout (0: DefaultTimeout) passes, then fails
// the test with the message.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	for p := newPoller(); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s (still not true after %v)", fmt.Sprintf(format, args...), timeout)
		}
		p.wait()
	}
}

// poller backs off from 1 ms to 10 ms, so quick conditions are seen quickly and slow ones cost little CPU.
type poller struct{ d time.Duration }

func newPoller() *poller { return &poller{d: time.Millisecond} }

func (p *poller) wait() {
	time.Sleep(p.d)
	p.d = min(2*p.d, 10*time.Millisecond)
}

// ReadPids reads a file of one pid per line (a pidfile or children file), tolerating a missing file. Blank lines are
// skipped; anything else that is not a pid fails the test.
func ReadPids(t testing.TB, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("read pids: %v", err)
	}
	var pids []int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		pid, err := strconv.Atoi(line)
		if err != nil || pid <= 0 {
			t.Fatalf("read pids: %s:%d: %q is not a pid", path, n, line)
		}
		pids = append(pids, pid)
	}
	return pids
}

// WaitGone waits until none of pids exists any more, or fails the test after timeout (0: DefaultTimeout), naming
// the pids still alive and the zombies: a zombie has exited but nobody reaped it, which is a bug of its parent (or
// of a test that started it and did not Wait). A pid taken over by a new process counts as gone.
func WaitGone(t testing.TB, timeout time.Duration, pids ...int) {
	t.Helper()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	first := make(map[int]procInfo, len(pids))
	for _, pid := range pids {
		first[pid] = inspect(pid)
	}
	deadline := time.Now().Add(timeout)
	for p := newPoller(); ; p.wait() {
		var alive, zombies []string
		for _, pid := range pids {
			info := inspect(pid)
			if !info.present || info.start != first[pid].start {
				continue
			}
			if info.zombie {
				zombies = append(zombies, info.String())
			} else {
				alive = append(alive, info.String())
			}
		}
		if len(alive)+len(zombies) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			fmt.Fprintf(&b, "processes not gone after %v:", timeout)
			if len(alive) > 0 {
				fmt.Fprintf(&b, " alive: %s.", strings.Join(alive, ", "))
			}
			if len(zombies) > 0 {
				fmt.Fprintf(&b, " zombies (exited, never reaped by their parent): %s.", strings.Join(zombies, ", "))
			}
			t.Fatal(b.String())
		}
	}
}

// procInfo is what the process helpers know about one pid.
type procInfo struct {
	pid     int
	present bool   // there is a process (or zombie) with this pid
	zombie  bool   // exited, not reaped
	start   uint64 // start time in clock ticks since boot, to tell a reused pid; 0 where unknown
	comm    string // command name, for messages
	state   string // /proc state letter, for messages
	ppid    int
}

func (p procInfo) String() string {
	if p.comm == "" {
		return strconv.Itoa(p.pid)
	}
	return fmt.Sprintf("%d (%s, state %s, parent %d)", p.pid, p.comm, p.state, p.ppid)
}

// sortedPids sorts and returns pids, for stable results and messages.
func sortedPids(pids []int) []int {
	slices.Sort(pids)
	return pids
}
