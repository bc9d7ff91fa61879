package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// fakeLauncher starts fakeProcesses; a test ends them with end().
type fakeLauncher struct {
	mu    sync.Mutex
	procs []*fakeProcess
	err   error // returned by the next Launch, then cleared
	// onSignal decides what a process does with a signal: by default
	// SIGTERM and SIGKILL end it.
	onSignal func(p *fakeProcess, sig syscall.Signal)
}

func (l *fakeLauncher) Launch(ctx context.Context, c *Command) (Process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.err; err != nil {
		l.err = nil
		return nil, err
	}
	p := &fakeProcess{pid: 1000 + len(l.procs), done: make(chan struct{}), l: l}
	l.procs = append(l.procs, p)
	return p, nil
}

func (l *fakeLauncher) last() *fakeProcess {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.procs[len(l.procs)-1]
}

func (l *fakeLauncher) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.procs)
}

type fakeProcess struct {
	pid     int
	l       *fakeLauncher
	mu      sync.Mutex
	exit    Exit
	ended   bool
	signals []syscall.Signal
	left    []int // leftover pids reported by Remaining after the end
	done    chan struct{}
}

func (p *fakeProcess) PID() int              { return p.pid }
func (p *fakeProcess) Done() <-chan struct{} { return p.done }
func (p *fakeProcess) Exit() Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

func (p *fakeProcess) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	p.signals = append(p.signals, sig)
	if sig == syscall.SIGKILL {
		p.left = nil
	}
	p.mu.Unlock()
	if p.l.onSignal != nil {
		p.l.onSignal(p, sig)
		return nil
	}
	if sig == syscall.SIGTERM || sig == syscall.SIGKILL {
		p.end(Exit{Code: 128 + int(sig), Signal: signalName(sig), Reason: ReasonSignal})
	}
	return nil
}

func (p *fakeProcess) Remaining() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ended {
		return append([]int{p.pid}, p.left...)
	}
	return p.left
}

func (p *fakeProcess) end(e Exit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	p.exit, p.ended = e, true
	close(p.done)
}

func (p *fakeProcess) gotSignals() []syscall.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]syscall.Signal(nil), p.signals...)
}

// harness runs a Runner inside a synctest bubble.
type harness struct {
	t      *testing.T
	l      *fakeLauncher
	r      *Runner
	mu     sync.Mutex
	events []Event
}

func newHarness(t *testing.T, mutate func(*Spec)) *harness {
	h := &harness{t: t, l: &fakeLauncher{}}
	spec := Spec{
		Command:     Command{Task: "t", Argv: []string{"/bin/true"}},
		Restart:     RestartPolicy{Policy: "always", SuccessCodes: []int{0}, Delay: 100 * time.Millisecond, MaxDelay: 5 * time.Minute, MinUptime: time.Minute},
		StopSignal:  syscall.SIGTERM,
		StopTimeout: 10 * time.Second,
	}
	if mutate != nil {
		mutate(&spec)
	}
	h.r = NewRunner(spec, Options{
		Launcher: h.l,
		Rand:     rand.New(rand.NewPCG(1, 1)),
		Log:      slog.New(slog.DiscardHandler),
		Notify: func(e Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	go h.r.Run(ctx)
	t.Cleanup(func() {
		cancel()
		<-h.r.Done()
	})
	return h
}

func (h *harness) want(s State) {
	h.t.Helper()
	synctest.Wait()
	if got := h.r.Status(); got.State != s {
		h.t.Fatalf("state %s (%s), want %s", got.State, got.Message, s)
	}
}

func TestRunner_StartCrashRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.want(StatePending)
		if err := h.r.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		h.want(StateRunning)
		if h.r.Status().PID != 1000 {
			t.Fatalf("pid %d", h.r.Status().PID)
		}
		// After a long healthy run, a crash comes back after exactly Delay.
		time.Sleep(2 * time.Hour)
		h.l.last().end(Exit{Code: 139, Signal: "SIGSEGV", Reason: ReasonSignal})
		h.want(StateBackoff)
		st := h.r.Status()
		if st.LastExit.Signal != "SIGSEGV" || st.Exits[ReasonSignal] != 1 {
			t.Fatalf("last exit %+v exits %v", st.LastExit, st.Exits)
		}
		time.Sleep(99 * time.Millisecond)
		h.want(StateBackoff)
		time.Sleep(time.Millisecond)
		h.want(StateRunning)
		if got := h.r.Status().Restarts; got != 1 {
			t.Fatalf("restarts %d, want 1", got)
		}
	})
}

func TestRunner_ZeroDelayRestartsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(s *Spec) { s.Restart.Delay = 0 })
		h.r.Start(t.Context())
		h.want(StateRunning)
		time.Sleep(time.Hour)
		h.l.last().end(Exit{Code: 1, Reason: ReasonExited})
		h.want(StateRunning)
		if h.l.count() != 2 {
			t.Fatalf("%d launches, want 2", h.l.count())
		}
	})
}

func TestRunner_GivesUpAfterLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(s *Spec) { s.Restart.Limit, s.Restart.Window = 3, time.Hour })
		h.r.Start(t.Context())
		for i := range 4 {
			h.want(StateRunning)
			h.l.last().end(Exit{Code: 1, Reason: ReasonExited})
			synctest.Wait()
			if i < 3 {
				h.want(StateBackoff)
				time.Sleep(time.Until(h.r.Status().NextStart))
			}
		}
		h.want(StateFailed)
		if got := h.l.count(); got != 4 {
			t.Fatalf("%d launches, want 4 (first + 3 restarts)", got)
		}
		// Nothing more happens by itself.
		time.Sleep(24 * time.Hour)
		h.want(StateFailed)
		// An operator's start clears failed and the backoff.
		h.r.Start(t.Context())
		h.want(StateRunning)
		if got := h.l.count(); got != 5 {
			t.Fatalf("%d launches after start, want 5", got)
		}
	})
}

func TestRunner_BackoffGrows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.r.Start(t.Context())
		var delays []time.Duration
		for range 12 {
			h.want(StateRunning)
			h.l.last().end(Exit{Code: 1, Reason: ReasonExited})
			h.want(StateBackoff)
			d := time.Until(h.r.Status().NextStart)
			delays = append(delays, d)
			time.Sleep(d)
		}
		if delays[0] != 100*time.Millisecond {
			t.Errorf("first delay %v", delays[0])
		}
		for i, d := range delays {
			if d > 5*time.Minute {
				t.Errorf("delay %d = %v beyond max_delay", i, d)
			}
		}
		if delays[len(delays)-1] < 10*time.Second && delays[len(delays)-2] < 10*time.Second {
			t.Errorf("backoff did not grow: %v", delays)
		}
	})
}

func TestRunner_JobPolicies(t *testing.T) {
	tests := []struct {
		policy string
		exit   Exit
		want   State
	}{
		{"on-failure", Exit{Code: 0, Reason: ReasonExited}, StateExited},
		{"on-failure", Exit{Code: 2, Reason: ReasonExited}, StateBackoff},
		{"never", Exit{Code: 2, Reason: ReasonExited}, StateFailed},
		{"never", Exit{Code: 0, Reason: ReasonExited}, StateExited},
		{"always", Exit{Code: 0, Reason: ReasonExited}, StateBackoff},
	}
	for _, tt := range tests {
		t.Run(tt.policy+"/"+tt.exit.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, func(s *Spec) { s.Restart.Policy = tt.policy })
				h.r.Start(t.Context())
				h.want(StateRunning)
				h.l.last().end(tt.exit)
				h.want(tt.want)
			})
		})
	}
}

func TestRunner_StopEscalates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		// The worker ignores SIGTERM.
		h.l.onSignal = func(p *fakeProcess, sig syscall.Signal) {
			if sig == syscall.SIGKILL {
				p.end(Exit{Code: 137, Signal: "SIGKILL", Reason: ReasonSignal})
			}
		}
		h.r.Start(t.Context())
		h.want(StateRunning)
		p := h.l.last()
		start := time.Now()
		if err := h.r.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 10*time.Second {
			t.Fatalf("stop took %v, want the 10s timeout", took)
		}
		h.want(StateStopped)
		sigs := p.gotSignals()
		if len(sigs) < 2 || sigs[0] != syscall.SIGTERM || sigs[1] != syscall.SIGKILL {
			t.Fatalf("signals %v, want SIGTERM then SIGKILL", sigs)
		}
		st := h.r.Status()
		if st.LastExit.Reason != ReasonStopped || st.LastExit.Signal != "SIGKILL" {
			t.Fatalf("last exit %+v", st.LastExit)
		}
		// Stopped stays stopped.
		time.Sleep(time.Hour)
		h.want(StateStopped)
		if h.l.count() != 1 {
			t.Fatalf("restarted after stop")
		}
	})
}

func TestRunner_StopGraceful(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.r.Start(t.Context())
		h.want(StateRunning)
		start := time.Now()
		h.r.Stop(t.Context())
		if took := time.Since(start); took > 10*time.Millisecond {
			t.Fatalf("graceful stop took %v", took)
		}
		if sigs := h.l.last().gotSignals(); len(sigs) != 1 || sigs[0] != syscall.SIGTERM {
			t.Fatalf("signals %v, want only SIGTERM", sigs)
		}
	})
}

func TestRunner_LeftoversStoppedBeforeRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(s *Spec) { s.Restart.Delay = 0 })
		// Leftovers ignore SIGTERM; only SIGKILL (which clears them) helps.
		h.l.onSignal = func(p *fakeProcess, sig syscall.Signal) {}
		h.r.Start(t.Context())
		h.want(StateRunning)
		p := h.l.last()
		p.mu.Lock()
		p.left = []int{4242}
		p.mu.Unlock()
		p.end(Exit{Code: 1, Reason: ReasonExited})
		h.want(StateStopping)
		time.Sleep(5 * time.Second)
		h.want(StateStopping)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		time.Sleep(100 * time.Millisecond)
		h.want(StateRunning)
		if h.l.count() != 2 {
			t.Fatalf("%d launches", h.l.count())
		}
		if sigs := p.gotSignals(); sigs[0] != syscall.SIGTERM || sigs[len(sigs)-1] != syscall.SIGKILL {
			t.Fatalf("leftovers got %v", sigs)
		}
		if got := h.r.Status().LastExit; got.Reason != ReasonExited || got.Code != 1 {
			t.Fatalf("last exit %+v, want the worker's own exit 1", got)
		}
	})
}

func TestRunner_Restart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.r.Start(t.Context())
		h.want(StateRunning)
		if err := h.r.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
		h.want(StateRunning)
		if h.l.count() != 2 || h.r.Status().PID != 1001 {
			t.Fatalf("launches %d pid %d", h.l.count(), h.r.Status().PID)
		}
		if got := h.r.Status().LastExit.Reason; got != ReasonStopped {
			t.Fatalf("last exit reason %q", got)
		}
	})
}

func TestRunner_PermanentStartError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.l.err = Permanent(errors.New(`command "nope": not found`))
		if err := h.r.Restart(t.Context()); !errors.Is(err, ErrPermanent) {
			t.Fatalf("restart error %v", err)
		}
		h.want(StateFailed)
		if h.r.Status().Message == "" {
			t.Fatal("no message")
		}
		time.Sleep(time.Hour)
		h.want(StateFailed)
	})
}

func TestRunner_TransientStartErrorRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.l.err = syscall.EAGAIN
		h.r.Start(t.Context())
		h.want(StateBackoff)
		time.Sleep(time.Second)
		h.want(StateRunning)
	})
}

func TestRunner_StopWhileBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.r.Start(t.Context())
		h.want(StateRunning)
		h.l.last().end(Exit{Code: 1, Reason: ReasonExited})
		h.want(StateBackoff)
		h.r.Stop(t.Context())
		h.want(StateStopped)
		time.Sleep(time.Hour)
		h.want(StateStopped)
		if h.l.count() != 1 {
			t.Fatal("started again after stop")
		}
	})
}

func TestRunner_UpdateAppliesToNextStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.r.Start(t.Context())
		h.want(StateRunning)
		spec := h.r.spec
		spec.Restart.Policy = "never"
		h.r.Update(t.Context(), spec)
		h.l.last().end(Exit{Code: 1, Reason: ReasonExited})
		h.want(StateFailed)
	})
}

func TestRunner_EventsFollowStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.r.Start(t.Context())
		h.want(StateRunning)
		h.r.Stop(t.Context())
		synctest.Wait()
		h.mu.Lock()
		defer h.mu.Unlock()
		var got []State
		for _, e := range h.events {
			got = append(got, e.State)
		}
		want := []State{StateStarting, StateRunning, StateStopping, StateStopped}
		if len(got) != len(want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("events %v, want %v", got, want)
			}
		}
		if last := h.events[len(h.events)-1]; last.Exit == nil || last.Exit.Reason != ReasonStopped {
			t.Fatalf("stopped event without exit: %+v", last)
		}
	})
}
