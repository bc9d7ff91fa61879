package health

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-autoglm/glmd/supervisor"
)

// fakeExec stands in for the agent's Exec: each check is an exec check whose
// argv[0] names a behaviour the test sets, and the fake records the calls.
type fakeExec struct {
	mu       sync.Mutex
	behave   map[string]func(ctx context.Context, n int) (code int, err error) // n: 1-based call number
	calls    map[string][]call
	running  map[string]int
	overlaps int // calls that began while another of the same name ran
}

// call is one run of a fake command.
type call struct{ start, end time.Time }

func newFakeExec() *fakeExec {
	return &fakeExec{
		behave:  map[string]func(context.Context, int) (int, error){},
		calls:   map[string][]call{},
		running: map[string]int{},
	}
}

func (f *fakeExec) set(name string, b func(ctx context.Context, n int) (int, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.behave[name] = b
}

func (f *fakeExec) exec(ctx context.Context, argv []string) (int, []byte, error) {
	name := argv[0]
	f.mu.Lock()
	if f.running[name] > 0 {
		f.overlaps++
	}
	f.running[name]++
	n := len(f.calls[name]) + 1
	f.calls[name] = append(f.calls[name], call{start: time.Now()})
	b := f.behave[name]
	f.mu.Unlock()

	code, err := 0, error(nil)
	if b != nil {
		code, err = b(ctx, n)
	}

	f.mu.Lock()
	f.running[name]--
	f.calls[name][n-1].end = time.Now()
	f.mu.Unlock()
	return code, []byte(name + " said so\n"), err
}

// count is the number of calls of name so far.
func (f *fakeExec) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls[name])
}

func (f *fakeExec) history(name string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls[name]...)
}

// execCheck is an exec check of role running the fake command name.
func execCheck(role, name string, interval, timeout time.Duration, failures int) Check {
	c := Check{
		Role: role, Type: TypeExec, Interval: interval, Timeout: timeout,
		FailureThreshold: failures, SuccessThreshold: 1,
		Exec: &ExecCheck{Argv: []string{name}},
	}
	if role == RoleStartup {
		c.StartPeriod = 10 * time.Minute
	}
	return c
}

// hang blocks until the probe's timeout.
func hang(ctx context.Context, _ int) (int, error) {
	<-ctx.Done()
	return -1, ctx.Err()
}

func pass(context.Context, int) (int, error) { return 0, nil }
func fail(context.Context, int) (int, error) { return 1, nil }

// recv returns the next verdict; it fails the test if none comes before
// every goroutine of the bubble blocks for good.
func recv(t *testing.T, ch <-chan supervisor.Verdict) supervisor.Verdict {
	t.Helper()
	v, ok := <-ch
	if !ok {
		t.Fatal("verdict channel closed early")
	}
	return v
}

// none checks that no verdict is waiting once the bubble is idle.
func none(t *testing.T, ch <-chan supervisor.Verdict) {
	t.Helper()
	synctest.Wait()
	select {
	case v, ok := <-ch:
		t.Fatalf("unexpected verdict %+v (open %v)", v, ok)
	default:
	}
}

// closes cancels the watch and checks that its channel gets closed.
func closes(t *testing.T, cancel context.CancelFunc, ch <-chan supervisor.Verdict) {
	t.Helper()
	cancel()
	for v := range ch {
		if v.Unhealthy {
			t.Fatalf("unhealthy verdict after cancel: %+v", v)
		}
	}
}

func newTestMonitor(t *testing.T, f *fakeExec, checks ...Check) *Monitor {
	t.Helper()
	m, err := NewMonitor(checks, Deps{Exec: f.exec})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMonitor_NoChecks_ReadyAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newTestMonitor(t, newFakeExec())
		ctx, cancel := context.WithCancel(t.Context())
		ch := m.Watch(ctx, 42)
		if v := recv(t, ch); !v.Ready || v.Unhealthy {
			t.Fatalf("first verdict %+v, want ready", v)
		}
		time.Sleep(time.Hour)
		none(t, ch)
		closes(t, cancel, ch)
	})
}

// A slow starter is not restarted within its start period, liveness and
// readiness wait for startup, and it becomes ready once startup and then
// readiness pass.
func TestMonitor_SlowStarter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeExec()
		start := time.Now()
		const loaded = 7*time.Minute + 3*time.Second // the model takes this long to load
		f.set("startup", func(context.Context, int) (int, error) {
			if time.Since(start) < loaded {
				return 1, nil
			}
			return 0, nil
		})
		f.set("liveness", pass)
		f.set("readiness", pass)
		startup := execCheck(RoleStartup, "startup", 10*time.Second, time.Second, 3)
		startup.InitialDelay = 30 * time.Second
		m := newTestMonitor(t, f, startup,
			execCheck(RoleLiveness, "liveness", 5*time.Second, time.Second, 3),
			execCheck(RoleReadiness, "readiness", 5*time.Second, time.Second, 3))
		ctx, cancel := context.WithCancel(t.Context())
		ch := m.Watch(ctx, 42)
		if v := recv(t, ch); v.Ready || v.Unhealthy {
			t.Fatalf("first verdict %+v, want not ready", v)
		}
		v := recv(t, ch)
		if !v.Ready || v.Unhealthy {
			t.Fatalf("second verdict %+v, want ready", v)
		}
		synctest.Wait() // the liveness probe started at the same instant
		// Startup probes at 30s, 40s, ...: the first at or after 7m3s is 7m10s.
		passed := 7*time.Minute + 10*time.Second
		if got := time.Since(start); got != passed {
			t.Errorf("ready after %s, want %s (first readiness probe as startup passed)", got, passed)
		}
		if first := f.history("startup")[0].start.Sub(start); first != 30*time.Second {
			t.Errorf("first startup probe after %s, want the initial delay, 30s", first)
		}
		for _, role := range []string{"liveness", "readiness"} {
			if h := f.history(role); len(h) == 0 || h[0].start.Sub(start) != passed {
				t.Errorf("%s first probed at %v, want when startup passed (%s)", role, h, passed)
			}
		}
		n := f.count("startup")
		time.Sleep(time.Hour)
		none(t, ch)
		if got := f.count("startup"); got != n {
			t.Errorf("startup probed %d more times after it passed", got-n)
		}
		if got := f.count("liveness"); got < 600 {
			t.Errorf("liveness probed %d times in an hour every 5s, want about 720", got)
		}
		closes(t, cancel, ch)
	})
}

func TestMonitor_StartupNotPassed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeExec()
		f.set("startup", fail)
		m := newTestMonitor(t, f, execCheck(RoleStartup, "startup", 10*time.Second, time.Second, 3),
			execCheck(RoleLiveness, "liveness", time.Second, time.Second, 3))
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		ch := m.Watch(ctx, 42)
		recv(t, ch)
		v := recv(t, ch)
		if !v.Unhealthy || v.Ready {
			t.Fatalf("verdict %+v, want unhealthy", v)
		}
		// Probes at 0s, 10s, ..., 9m50s fail within the start period and do
		// not count; those at 10m0s, 10m10s and 10m20s are the 3 failures.
		if got := time.Since(start); got != 10*time.Minute+20*time.Second {
			t.Errorf("unhealthy after %s, want the start period and 3 failures, 10m20s", got)
		}
		want := "startup: not passed within the start period of 10m0s and 3 failures after it: exec startup: exit 1: startup said so (63 tries)"
		if v.Message != want {
			t.Errorf("message %q\nwant %q", v.Message, want)
		}
		if n := f.count("liveness"); n != 0 {
			t.Errorf("liveness probed %d times before startup passed", n)
		}
		time.Sleep(time.Hour)
		none(t, ch)
		closes(t, cancel, ch)
	})
}

// An unhealthy instance gets exactly one unhealthy verdict, after exactly
// failure_threshold failures in a row and not before; then probing stops.
func TestMonitor_Unhealthy_ExactlyAfterThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeExec()
		// Calls 3-4 fail, 5 passes (resetting the count), 6-8 fail.
		f.set("liveness", func(_ context.Context, n int) (int, error) {
			if n == 3 || n == 4 || n >= 6 {
				return 1, nil
			}
			return 0, nil
		})
		f.set("readiness", pass)
		m := newTestMonitor(t, f, execCheck(RoleLiveness, "liveness", time.Second, time.Second, 3),
			execCheck(RoleReadiness, "readiness", time.Second, time.Second, 3))
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		ch := m.Watch(ctx, 42)
		recv(t, ch) // not ready
		if v := recv(t, ch); !v.Ready {
			t.Fatalf("verdict %+v, want ready", v)
		}
		v := recv(t, ch)
		if !v.Unhealthy || v.Ready {
			t.Fatalf("verdict %+v, want unhealthy", v)
		}
		if n := f.count("liveness"); n != 8 {
			t.Errorf("unhealthy after %d liveness probes, want 8", n)
		}
		if got := time.Since(start); got != 7*time.Second {
			t.Errorf("unhealthy after %s, want 7s (probes at 0s..7s)", got)
		}
		if want := "liveness: exec liveness: exit 1: liveness said so (3/3)"; v.Message != want {
			t.Errorf("message %q, want %q", v.Message, want)
		}
		// A readiness probe due at the same instant as the verdict may still
		// be finishing: count from when everything due now has run.
		synctest.Wait()
		l, r := f.count("liveness"), f.count("readiness")
		time.Sleep(time.Hour)
		none(t, ch)
		if f.count("liveness") != l || f.count("readiness") != r {
			t.Errorf("probing went on after the unhealthy verdict: liveness %d -> %d, readiness %d -> %d",
				l, f.count("liveness"), r, f.count("readiness"))
		}
		st := m.Stats()[0]
		if st.Results["failure"] != 5 || st.Results["success"] != 3 || st.ConsecutiveFailures != 3 {
			t.Errorf("liveness stats %+v, want 5 failures, 3 successes, 3 in a row", st)
		}
		closes(t, cancel, ch)
	})
}

func TestMonitor_ReadinessFlips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeExec()
		var mu sync.Mutex
		healthy := false
		f.set("readiness", func(context.Context, int) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			if healthy {
				return 0, nil
			}
			return 1, nil
		})
		set := func(h bool) {
			mu.Lock()
			healthy = h
			mu.Unlock()
		}
		f.set("liveness", pass)
		ready := execCheck(RoleReadiness, "readiness", time.Second, time.Second, 2)
		ready.SuccessThreshold = 2
		m := newTestMonitor(t, f, execCheck(RoleLiveness, "liveness", time.Second, time.Second, 1), ready)
		ctx, cancel := context.WithCancel(t.Context())
		ch := m.Watch(ctx, 42)
		if v := recv(t, ch); v.Ready {
			t.Fatalf("first verdict %+v, want not ready", v)
		}
		time.Sleep(10 * time.Second)
		none(t, ch)
		for i, want := range []bool{true, false, true, false} {
			set(want)
			v := recv(t, ch)
			if v.Ready != want || v.Unhealthy {
				t.Fatalf("flip %d: verdict %+v, want ready=%v", i, v, want)
			}
			if !strings.Contains(v.Message, "(2/2)") {
				t.Errorf("flip %d: message %q, want the count (2/2)", i, v.Message)
			}
			time.Sleep(10 * time.Second)
			none(t, ch)
		}
		closes(t, cancel, ch)
	})
}

// A probe that hangs is cut at its timeout and counts as a failure with
// outcome "timeout"; probes of one check never overlap.
func TestMonitor_HangingProbeCutAtTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeExec()
		f.set("liveness", hang)
		m := newTestMonitor(t, f, execCheck(RoleLiveness, "liveness", time.Second, 2*time.Second, 3))
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		ch := m.Watch(ctx, 42)
		recv(t, ch)
		v := recv(t, ch)
		if !v.Unhealthy {
			t.Fatalf("verdict %+v, want unhealthy", v)
		}
		// Probes from 0s, 3s, 6s, each cut after 2s.
		if got := time.Since(start); got != 8*time.Second {
			t.Errorf("unhealthy after %s, want 8s", got)
		}
		if want := "liveness: exec liveness: timeout after 2s (3/3)"; v.Message != want {
			t.Errorf("message %q, want %q", v.Message, want)
		}
		st := m.Stats()[0]
		if st.Results["timeout"] != 3 || st.Latency.Count != 3 || st.Latency.Sum != 6 {
			t.Errorf("stats %+v, want 3 timeouts of 2s", st)
		}
		closes(t, cancel, ch)
	})
}

func TestMonitor_ProbesNeverOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeExec()
		// Each probe takes 3s, three times the interval.
		f.set("liveness", func(ctx context.Context, _ int) (int, error) {
			select {
			case <-time.After(3 * time.Second):
				return 0, nil
			case <-ctx.Done():
				return -1, ctx.Err()
			}
		})
		m := newTestMonitor(t, f, execCheck(RoleLiveness, "liveness", time.Second, 10*time.Second, 3))
		ctx, cancel := context.WithCancel(t.Context())
		ch := m.Watch(ctx, 42)
		recv(t, ch)
		time.Sleep(time.Minute)
		closes(t, cancel, ch)
		h := f.history("liveness")
		if len(h) < 10 {
			t.Fatalf("%d probes in a minute, want about 15", len(h))
		}
		for i := 1; i < len(h); i++ {
			if gap := h[i].start.Sub(h[i-1].end); gap != time.Second {
				t.Fatalf("probe %d started %s after the previous one ended, want the interval, 1s", i, gap)
			}
		}
		if f.overlaps != 0 {
			t.Fatalf("%d overlapping probes", f.overlaps)
		}
	})
}

// Cancelling ctx stops a probe in flight and every goroutine of the watch:
// synctest.Test fails on goroutines left blocked in the bubble.
func TestMonitor_StopsWhenCtxEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeExec()
		f.set("startup", hang)
		m := newTestMonitor(t, f, execCheck(RoleStartup, "startup", time.Second, time.Hour, 1),
			execCheck(RoleLiveness, "liveness", time.Second, time.Second, 1))
		ctx, cancel := context.WithCancel(t.Context())
		ch := m.Watch(ctx, 42)
		recv(t, ch)
		time.Sleep(time.Minute) // the startup probe hangs
		synctest.Wait()
		closes(t, cancel, ch)
		if n := f.count("startup"); n != 1 {
			t.Errorf("%d startup probes, want the one that hung", n)
		}
	})
}

// After an unhealthy verdict the channel stays open until ctx ends, and the
// runner may stop reading verdicts at any time without blocking anything.
func TestMonitor_RunnerStopsReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeExec()
		f.set("readiness", func(_ context.Context, n int) (int, error) { return n % 2, nil }) // flips every probe
		m := newTestMonitor(t, f, execCheck(RoleReadiness, "readiness", time.Second, time.Second, 1))
		ctx, cancel := context.WithCancel(t.Context())
		ch := m.Watch(ctx, 42)
		time.Sleep(time.Minute) // nobody reads
		cancel()
		synctest.Wait()
		for range ch {
		}
	})
}

func TestMonitor_StatsAcrossProcesses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeExec()
		f.set("liveness", func(_ context.Context, n int) (int, error) {
			switch n {
			case 1:
				return 0, nil
			case 2:
				return 0, errors.New("launcher: no such user")
			}
			return 1, nil
		})
		m := newTestMonitor(t, f, execCheck(RoleLiveness, "liveness", time.Second, time.Second, 5))
		if got := m.Stats(); len(got) != 1 || got[0].Role != RoleLiveness || got[0].Type != TypeExec ||
			len(got[0].Results) != 4 || got[0].Latency.Count != 0 {
			t.Fatalf("stats before any probe: %+v", got)
		}
		ctx, cancel := context.WithCancel(t.Context())
		ch := m.Watch(ctx, 1)
		recv(t, ch)
		time.Sleep(3500 * time.Millisecond) // probes at 0s, 1s, 2s, 3s
		synctest.Wait()
		st := m.Stats()[0]
		if st.Results["success"] != 1 || st.Results["error"] != 1 || st.Results["failure"] != 2 || st.ConsecutiveFailures != 3 {
			t.Errorf("stats of the first process: %+v", st)
		}
		if want := "exec liveness: exit 1: liveness said so"; st.LastMessage != want {
			t.Errorf("last message %q, want %q", st.LastMessage, want)
		}
		closes(t, cancel, ch)

		ctx, cancel = context.WithCancel(t.Context())
		ch = m.Watch(ctx, 2)
		recv(t, ch)
		synctest.Wait()
		st = m.Stats()[0]
		if st.Results["failure"] != 3 || st.ConsecutiveFailures != 1 || st.Latency.Count != 5 {
			t.Errorf("stats after the second process's first probe: %+v, want counters kept, 1 failure in a row", st)
		}
		closes(t, cancel, ch)
	})
}
