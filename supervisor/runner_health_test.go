package supervisor

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeHealth hands the test the verdict channel of every watched process.
type fakeHealth struct {
	mu      sync.Mutex
	watches []*watch
}

type watch struct {
	pid int
	ctx context.Context
	ch  chan Verdict
}

func (h *fakeHealth) Watch(ctx context.Context, pid int) <-chan Verdict {
	w := &watch{pid: pid, ctx: ctx, ch: make(chan Verdict, 4)}
	h.mu.Lock()
	h.watches = append(h.watches, w)
	h.mu.Unlock()
	go func() { <-ctx.Done(); close(w.ch) }()
	return w.ch
}

func (h *fakeHealth) last() *watch {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.watches[len(h.watches)-1]
}

func (h *fakeHealth) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watches)
}

func TestRunner_Health_ReadyWithoutChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		h.r.Start(t.Context())
		h.want(StateRunning)
		if !h.r.Status().Ready {
			t.Fatal("a running instance without checks is not ready")
		}
	})
}

func TestRunner_Health_ReadinessFlipsWithoutRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fh := &fakeHealth{}
		h := newHarness(t, func(s *Spec) { s.Health = fh })
		h.r.Start(t.Context())
		h.want(StateRunning)
		if h.r.Status().Ready {
			t.Fatal("ready before any verdict")
		}
		w := fh.last()
		if w.pid != 1000 {
			t.Fatalf("watching pid %d", w.pid)
		}
		w.ch <- Verdict{Ready: true}
		synctest.Wait()
		if !h.r.Status().Ready {
			t.Fatal("not ready after a ready verdict")
		}
		w.ch <- Verdict{Ready: false, Message: "readiness: GET http://x/health: 503 (3/3)"}
		synctest.Wait()
		st := h.r.Status()
		if st.Ready || st.State != StateRunning || st.Message != "not ready: readiness: GET http://x/health: 503 (3/3)" {
			t.Fatalf("status %+v", st)
		}
		if h.l.count() != 1 {
			t.Fatal("readiness restarted the worker")
		}
	})
}

func TestRunner_Health_UnhealthyRestartsWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fh := &fakeHealth{}
		h := newHarness(t, func(s *Spec) { s.Health = fh })
		h.r.Start(t.Context())
		h.want(StateRunning)
		first := fh.last()
		first.ch <- Verdict{Ready: true}
		synctest.Wait()
		time.Sleep(2 * time.Hour)
		first.ch <- Verdict{Unhealthy: true, Message: "unhealthy: GET http://x/health: timeout after 2s (3/3)"}
		synctest.Wait()
		if first.ctx.Err() == nil {
			t.Fatal("probing went on after the unhealthy verdict")
		}
		h.want(StateBackoff)
		st := h.r.Status()
		if st.LastExit.Reason != ReasonUnhealthy || st.Exits[ReasonUnhealthy] != 1 || st.Ready {
			t.Fatalf("status %+v", st)
		}
		h.l.mu.Lock()
		firstProc := h.l.procs[0]
		h.l.mu.Unlock()
		if sigs := firstProc.gotSignals(); len(sigs) == 0 {
			t.Fatal("the unhealthy worker got no stop signal")
		}
		time.Sleep(time.Second)
		h.want(StateRunning)
		if fh.count() != 2 || fh.last().pid != 1001 {
			t.Fatalf("%d watches, last pid %d", fh.count(), fh.last().pid)
		}
	})
}

func TestRunner_Health_StopEndsProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fh := &fakeHealth{}
		h := newHarness(t, func(s *Spec) { s.Health = fh })
		h.r.Start(t.Context())
		h.want(StateRunning)
		w := fh.last()
		h.r.Stop(t.Context())
		h.want(StateStopped)
		if w.ctx.Err() == nil {
			t.Fatal("probes go on after stop")
		}
		// A late verdict changes nothing.
		synctest.Wait()
		if st := h.r.Status(); st.Ready || st.State != StateStopped {
			t.Fatalf("status %+v", st)
		}
	})
}

func TestRunner_Health_UpdateRewatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fh, fh2 := &fakeHealth{}, &fakeHealth{}
		h := newHarness(t, func(s *Spec) { s.Health = fh })
		h.r.Start(t.Context())
		h.want(StateRunning)
		old := fh.last()
		spec := h.r.spec
		spec.Health = fh2
		if err := h.r.Update(t.Context(), spec); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if old.ctx.Err() == nil || fh2.count() != 1 || fh2.last().pid != 1000 {
			t.Fatal("new checks did not replace the old ones on the running worker")
		}
		if h.l.count() != 1 {
			t.Fatal("changing the checks restarted the worker")
		}
	})
}
