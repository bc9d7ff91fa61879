package gpu_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-autoglm/glmd/internal/gpu"
	"github.com/open-autoglm/glmd/internal/gpu/gputest"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// poolRun is a Pool running on a Fake, recording its events.
type poolRun struct {
	t      *testing.T
	f      *gputest.Fake
	p      *gpu.Pool
	cancel context.CancelFunc
	done   chan error
	once   sync.Once

	mu     sync.Mutex
	events []gpu.Event
}

// startPool runs a Pool on f until the test ends. Inside a synctest
// bubble it returns once the first sample and poll are done.
func startPool(t *testing.T, f *gputest.Fake, opts gpu.PoolOptions) *poolRun {
	t.Helper()
	r := &poolRun{t: t, f: f, done: make(chan error, 1)}
	opts.OnEvent = func(ev gpu.Event) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, ev)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p, err := gpu.NewPool(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop ends Run and checks it returned nil.
func (r *poolRun) stop() {
	r.once.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			r.t.Errorf("Run returned %v, want nil", err)
		}
	})
}

// take returns the events delivered since the last take.
func (r *poolRun) take() []gpu.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.events
	r.events = nil
	return evs
}

func (r *poolRun) status(i int) gpu.Status { return r.p.Status()[i] }

// advance lets fake time pass in a synctest bubble, then waits until the
// Pool has done all it had to.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// kinds lists the events' kinds.
func kinds(evs []gpu.Event) []string {
	out := []string{}
	for _, ev := range evs {
		out = append(out, ev.Kind)
	}
	return out
}

// allocatable reports whether GPU i can be taken now by a fresh owner.
func (r *poolRun) allocatable(i int) bool {
	probe := owner("probe", i)
	_, err := r.p.Allocate(probe, gpu.Request{IDs: []string{r.f.UUID(i)}})
	r.p.Release(probe)
	return err == nil
}

func TestPool_XID(t *testing.T) {
	llm := owner("llm", 0)
	tests := []struct {
		name        string
		xid         int
		ov          gpu.Overrides
		health      gpu.Health
		kind        string // "" for no event
		action      gpu.Action
		message     string
		allocatable bool
	}{
		{name: "ignore", xid: 43, health: gpu.HealthHealthy, allocatable: true},
		{name: "restart_app", xid: 13, health: gpu.HealthRestartApp, kind: gpu.KindXID, action: gpu.ActionRestartApp,
			message:     "GPU 3 (GPU-fa4e0000-0000-4000-8000-000000000003): xid 13 (graphics engine exception): restarting the instances on it if they failed; held by llm:0",
			allocatable: true},
		{name: "double-bit ECC", xid: 48, health: gpu.HealthUnhealthy, kind: gpu.KindUnhealthy, action: gpu.ActionResetGPU,
			message: "GPU 3 (GPU-fa4e0000-0000-4000-8000-000000000003): xid 48 (double-bit ECC error): out of the pool until reset; stopping llm:0"},
		{name: "NVLink", xid: 74, health: gpu.HealthUnhealthy, kind: gpu.KindUnhealthy, action: gpu.ActionResetGPU},
		{name: "NVLink range", xid: 147, health: gpu.HealthUnhealthy, kind: gpu.KindUnhealthy, action: gpu.ActionResetGPU},
		{name: "unknown", xid: 999, health: gpu.HealthUnhealthy, kind: gpu.KindUnhealthy, action: gpu.ActionResetGPU,
			message: "GPU 3 (GPU-fa4e0000-0000-4000-8000-000000000003): xid 999: out of the pool until reset; stopping llm:0"},
		{name: "fallen off the bus", xid: 79, health: gpu.HealthLost, kind: gpu.KindLost, action: gpu.ActionReboot,
			message: "GPU 3 (GPU-fa4e0000-0000-4000-8000-000000000003): xid 79 (fallen off the bus): node reboot required; stopping llm:0"},
		{name: "fatal override", xid: 13, ov: gpu.Overrides{FatalXIDs: []int{13}}, health: gpu.HealthUnhealthy,
			kind: gpu.KindUnhealthy, action: gpu.ActionResetGPU},
		{name: "ignore override", xid: 48, ov: gpu.Overrides{IgnoreXIDs: []int{48}}, health: gpu.HealthHealthy, allocatable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := gputest.NewFake()
				r := startPool(t, f, gpu.PoolOptions{Overrides: tt.ov})
				if _, err := r.p.Allocate(llm, gpu.Request{IDs: []string{"3"}}); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				r.take()
				f.PushXID(3, tt.xid)
				synctest.Wait()

				evs := r.take()
				if tt.kind == "" {
					if len(evs) != 0 {
						t.Errorf("events %v, want none", kinds(evs))
					}
				} else {
					if len(evs) != 1 {
						t.Fatalf("events %v, want one %s", kinds(evs), tt.kind)
					}
					ev := evs[0]
					if ev.Kind != tt.kind || ev.XID != tt.xid || ev.Action != tt.action || ev.UUID != f.UUID(3) || ev.Index != 3 ||
						!slices.Equal(ev.Owners, []gpu.Owner{llm}) {
						t.Errorf("event %+v, want kind %s, xid %d, action %s on GPU 3 with owner llm:0", ev, tt.kind, tt.xid, tt.action)
					}
					if tt.message != "" && ev.Message != tt.message {
						t.Errorf("message %q\nwant    %q", ev.Message, tt.message)
					}
				}
				st := r.status(3)
				if st.Health != tt.health {
					t.Errorf("health %s (%s), want %s", st.Health, st.Reason, tt.health)
				}
				want := []gpu.XIDCount{{XID: tt.xid, Action: gpu.Classify(tt.xid, tt.ov), Count: 1}}
				if !slices.Equal(st.XIDs, want) || st.LastXID != tt.xid {
					t.Errorf("XIDs %v last %d, want %v", st.XIDs, st.LastXID, want)
				}
				if got := r.status(2).Health; got != gpu.HealthHealthy {
					t.Errorf("GPU 2 is %s, want healthy: the XID was on GPU 3", got)
				}
				r.p.Release(llm)
				if got := r.allocatable(3); got != tt.allocatable {
					t.Errorf("allocatable %v, want %v", got, tt.allocatable)
				}
			})
		})
	}
}

// TestPool_XIDWithoutGPU: an XID the driver could not place makes every
// GPU suspect.
func TestPool_XIDWithoutGPU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := gputest.NewFake()
		r := startPool(t, f, gpu.PoolOptions{})
		f.PushXID(-1, 48)
		synctest.Wait()
		if evs := r.take(); len(evs) != gputest.FakeGPUs {
			t.Errorf("events %v, want one unhealthy per GPU", kinds(evs))
		}
		for i, st := range r.p.Status() {
			if st.Health != gpu.HealthUnhealthy {
				t.Errorf("GPU %d is %s, want unhealthy", i, st.Health)
			}
		}
	})
}

// TestPool_Escalation: the third restart_app XID within 10 minutes resets
// the GPU; spread out, they do not; 10 quiet minutes make it healthy.
func TestPool_Escalation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := gputest.NewFake()
		r := startPool(t, f, gpu.PoolOptions{})
		for _, gap := range []time.Duration{0, 6 * time.Minute, 6 * time.Minute} {
			advance(gap)
			f.PushXID(1, 31)
			synctest.Wait()
		}
		if got := kinds(r.take()); !slices.Equal(got, []string{"xid", "xid", "xid"}) {
			t.Errorf("spread out: events %v, want three xid", got)
		}
		if st := r.status(1); st.Health != gpu.HealthRestartApp {
			t.Errorf("spread out: GPU 1 is %s, want restart_app", st.Health)
		}
		advance(10*time.Minute + time.Minute)
		evs := r.take()
		if got := kinds(evs); !slices.Equal(got, []string{"healthy"}) {
			t.Fatalf("after 10 quiet minutes: events %v, want healthy", got)
		}
		if st := r.status(1); st.Health != gpu.HealthHealthy {
			t.Errorf("after 10 quiet minutes: GPU 1 is %s, want healthy", st.Health)
		}

		for range 3 {
			advance(3 * time.Minute)
			f.PushXID(1, 13)
			synctest.Wait()
		}
		evs = r.take()
		if got := kinds(evs); !slices.Equal(got, []string{"xid", "xid", "unhealthy"}) {
			t.Fatalf("burst: events %v, want xid, xid, unhealthy", got)
		}
		if last := evs[2]; last.Action != gpu.ActionResetGPU || !strings.Contains(last.Message, "3 restart_app XIDs within 10m0s") {
			t.Errorf("escalation event %+v", last)
		}
		if st := r.status(1); st.Health != gpu.HealthUnhealthy {
			t.Errorf("burst: GPU 1 is %s, want unhealthy", st.Health)
		}
	})
}

// TestPool_Lost: a GPU that falls off the bus is lost for good.
func TestPool_Lost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := gputest.NewFake()
		r := startPool(t, f, gpu.PoolOptions{})
		llm := owner("llm", 0)
		if _, err := r.p.Allocate(llm, gpu.Request{IDs: []string{"2"}}); err != nil {
			t.Fatal(err)
		}
		f.Lose(2)
		synctest.Wait()
		advance(time.Minute) // samples see it missing too
		evs := r.take()
		if len(evs) != 1 || evs[0].Kind != gpu.KindLost || !slices.Equal(evs[0].Owners, []gpu.Owner{llm}) {
			t.Fatalf("events %+v, want one lost naming llm:0", evs)
		}
		r.p.Release(llm)
		advance(24 * time.Hour)
		if st := r.status(2); st.Health != gpu.HealthLost {
			t.Errorf("a day later GPU 2 is %s, want lost", st.Health)
		}
		_, err := r.p.Allocate(llm, gpu.Request{IDs: []string{"2"}})
		var short *gpu.ShortError
		if !errors.As(err, &short) || short.Permanent() || !strings.Contains(err.Error(), "unhealthy") {
			t.Errorf("Allocate of a lost GPU: %v, want a ShortError, not permanent", err)
		}
	})
}

// TestPool_WatchFailure: a broken watch makes health unknown and stops
// allocations until a rebuilt watch works.
func TestPool_WatchFailure(t *testing.T) {
	for _, how := range []string{"returned error", "in-band event"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := gputest.NewFake()
				r := startPool(t, f, gpu.PoolOptions{})
				llm := owner("llm", 0)
				if _, err := r.p.Allocate(llm, gpu.Request{Count: 1}); err != nil {
					t.Fatal(err)
				}
				if how == "returned error" {
					f.FailWatch(errors.New("nvml EventSetWait: ERROR_UNKNOWN"))
				} else {
					// The inventory reports the failure and goes on; the Pool
					// rebuilds the watch, which then works at once.
					f.Push(gpu.XIDEvent{Kind: gpu.EventWatchFail})
				}
				synctest.Wait()
				evs := r.take()
				if len(evs) != 1 || evs[0].Kind != gpu.KindWatchFailed || evs[0].UUID != "" || evs[0].Index != -1 {
					t.Fatalf("events %+v, want one watch_failed", evs)
				}
				for i, st := range r.p.Status() {
					if st.Health != gpu.HealthUnknown {
						t.Errorf("GPU %d is %s, want unknown", i, st.Health)
					}
				}
				_, err := r.p.Allocate(owner("new", 0), gpu.Request{Count: 1})
				var short *gpu.ShortError
				if !errors.As(err, &short) || short.Permanent() || !strings.Contains(err.Error(), "no new GPU allocations") {
					t.Errorf("Allocate while the watch is broken: %v", err)
				}
				if g, err := r.p.Allocate(owner("cpu", 0), gpu.Request{}); err != nil || len(g.Devices) != 0 {
					t.Errorf("a request for no GPU: %v, %v", g, err)
				}
				r.p.Release(llm)

				if how == "returned error" {
					advance(5 * time.Minute) // retries keep failing quietly
					if got := kinds(r.take()); len(got) != 0 {
						t.Errorf("events while retrying %v, want none", got)
					}
					f.FailWatch(nil)
				}
				advance(2 * time.Minute)
				evs = r.take()
				if len(evs) != 1 || evs[0].Kind != gpu.KindHealthy || evs[0].UUID != "" {
					t.Fatalf("events after the watch works %+v, want one healthy", evs)
				}
				if calls, running := f.Watches(); calls < 2 || running != 1 {
					t.Errorf("Watch called %d times, %d running; want retries and one running", calls, running)
				}
				if st := r.status(0); st.Health != gpu.HealthHealthy {
					t.Errorf("GPU 0 is %s, want healthy", st.Health)
				}
				if _, err := r.p.Allocate(owner("new", 0), gpu.Request{Count: 1}); err != nil {
					t.Errorf("Allocate after the watch works: %v", err)
				}
			})
		})
	}
}

// TestPool_RecoverQuiet: without a reset command an unhealthy GPU comes
// back after RecoverAfter once no compute process is left on it.
func TestPool_RecoverQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := gputest.NewFake()
		r := startPool(t, f, gpu.PoolOptions{})
		llm := owner("llm", 0)
		if _, err := r.p.Allocate(llm, gpu.Request{IDs: []string{"1"}}); err != nil {
			t.Fatal(err)
		}
		f.SetProcesses(1, gpu.Process{PID: 4242, Memory: oneGiB})
		f.PushXID(1, 48)
		synctest.Wait()
		if evs := r.take(); len(evs) != 1 || evs[0].Kind != gpu.KindUnhealthy {
			t.Fatalf("events %+v, want unhealthy", evs)
		}
		r.p.Release(llm)
		advance(gpu.DefaultRecoverAfter + time.Minute)
		if st := r.status(1); st.Health != gpu.HealthUnhealthy {
			t.Fatalf("with a process left GPU 1 is %s, want unhealthy", st.Health)
		}
		f.SetProcesses(1)
		advance(gpu.DefaultPollInterval)
		evs := r.take()
		if len(evs) != 1 || evs[0].Kind != gpu.KindHealthy || !strings.Contains(evs[0].Message, "quiet for 10m0s") {
			t.Fatalf("events %+v, want healthy", evs)
		}
		if !r.allocatable(1) {
			t.Error("GPU 1 not allocatable after recovery")
		}
	})
}

// TestPool_RecoverNever: a negative RecoverAfter keeps a GPU out until
// glmd restarts.
func TestPool_RecoverNever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := gputest.NewFake()
		r := startPool(t, f, gpu.PoolOptions{RecoverAfter: -1})
		f.PushXID(5, 95)
		advance(24 * time.Hour)
		if st := r.status(5); st.Health != gpu.HealthUnhealthy {
			t.Errorf("GPU 5 is %s, want unhealthy", st.Health)
		}
	})
}

// TestPool_SampleRules: remap pending, remap failed and ECC growth.
func TestPool_SampleRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := gputest.NewFake()
		f.SetECC(2, 3) // errors from before glmd started are no news
		r := startPool(t, f, gpu.PoolOptions{})
		llm := owner("llm", 0)
		if _, err := r.p.Allocate(llm, gpu.Request{IDs: []string{"4", "2", "6"}}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if evs := r.take(); len(evs) != 0 {
			t.Fatalf("events %+v before any fault", evs)
		}
		f.SetECC(2, 4)
		f.SetRemap(4, true, false)
		f.SetRemap(6, false, true)
		advance(gpu.DefaultSampleInterval)
		want := map[int]struct {
			kind   string
			health gpu.Health
			reason string
		}{
			2: {gpu.KindUnhealthy, gpu.HealthUnhealthy, "volatile uncorrected ECC errors grew from 3 to 4"},
			4: {gpu.KindResetPending, gpu.HealthResetPending, "row remapping pending"},
			6: {gpu.KindUnhealthy, gpu.HealthUnhealthy, "row remapping failed: replace the GPU"},
		}
		evs := r.take()
		if len(evs) != len(want) {
			t.Fatalf("events %v, want %d", kinds(evs), len(want))
		}
		for _, ev := range evs {
			w := want[ev.Index]
			if ev.Kind != w.kind || !slices.Equal(ev.Owners, []gpu.Owner{llm}) {
				t.Errorf("GPU %d: event %+v, want %s naming llm:0", ev.Index, ev, w.kind)
			}
		}
		for i, w := range want {
			if st := r.status(i); st.Health != w.health || st.Reason != w.reason {
				t.Errorf("GPU %d: %s (%s), want %s (%s)", i, st.Health, st.Reason, w.health, w.reason)
			}
		}
		// Idle, quiet and with its remap done, GPU 4 returns; 6 never does.
		r.p.Release(llm)
		f.SetRemap(4, false, false)
		advance(gpu.DefaultRecoverAfter + time.Minute)
		got := map[int]gpu.Health{}
		for i := range want {
			got[i] = r.status(i).Health
		}
		if got[2] != gpu.HealthHealthy || got[4] != gpu.HealthHealthy || got[6] != gpu.HealthUnhealthy {
			t.Errorf("after the quiet period: %v, want 2 and 4 healthy, 6 unhealthy", got)
		}
	})
}

// TestPool_CallTimeout: a hanging inventory call gives up after
// CallTimeout; the next sample works again.
func TestPool_CallTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := gputest.NewFake()
		r := startPool(t, f, gpu.PoolOptions{CallTimeout: 5 * time.Second})
		f.Hang(true)
		start := time.Now()
		_, err := r.p.Processes(context.Background(), f.UUID(0))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Processes on a hanging inventory: %v, want a deadline error", err)
		}
		if waited := time.Since(start); waited < 5*time.Second {
			t.Errorf("gave up after %v, before CallTimeout", waited)
		}
		f.SetUsed(0, 7*oneGiB)
		advance(time.Minute)
		f.Hang(false)
		advance(gpu.DefaultSampleInterval)
		if st := r.status(0); st.Sample.MemoryUsed != 7*oneGiB {
			t.Errorf("after the hang, sample used %d, want %d", st.Sample.MemoryUsed, 7*oneGiB)
		}
	})
}

// TestPool_SampleError: a failed sample keeps the last one and changes no
// health.
func TestPool_SampleError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := gputest.NewFake()
		f.SetUsed(0, 5*oneGiB)
		r := startPool(t, f, gpu.PoolOptions{})
		advance(gpu.DefaultSampleInterval)
		first := r.status(0).SampledAt
		f.SetSampleError(errors.New("nvml GetMemoryInfo: ERROR_UNKNOWN"))
		f.SetUsed(0, 9*oneGiB)
		advance(3 * gpu.DefaultSampleInterval)
		st := r.status(0)
		if st.Sample.MemoryUsed != 5*oneGiB || !st.SampledAt.Equal(first) || st.Health != gpu.HealthHealthy {
			t.Errorf("after failed samples: used %d at %v, %s; want the last good sample, healthy", st.Sample.MemoryUsed, st.SampledAt, st.Health)
		}
		f.SetSampleError(nil)
		advance(gpu.DefaultSampleInterval)
		if st := r.status(0); st.Sample.MemoryUsed != 9*oneGiB {
			t.Errorf("sampling again: used %d, want %d", st.Sample.MemoryUsed, 9*oneGiB)
		}
		if evs := r.take(); len(evs) != 0 {
			t.Errorf("events %v, want none", kinds(evs))
		}
	})
}

// TestPool_HangDoesNotBlock: while an inventory call hangs, Allocate,
// Release and Status answer (real time: the call would hang for an hour).
func TestPool_HangDoesNotBlock(t *testing.T) {
	f := gputest.NewFake()
	p, err := gpu.NewPool(f, gpu.PoolOptions{CallTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.Hang(true) // the first sample of Run hangs
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	testenv.Eventually(t, 0, func() bool { return f.Hanging() > 0 }, "no inventory call hangs")

	done := make(chan error, 1)
	go func() {
		_ = p.Status()
		g, err := p.Allocate(owner("llm", 0), gpu.Request{Count: 1})
		if err == nil && len(g.Devices) != 1 {
			err = errors.New("no GPU")
		}
		p.Release(owner("llm", 0))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Allocate while a call hangs: %v", err)
		}
	case <-time.After(testenv.DefaultTimeout):
		t.Fatal("Status/Allocate/Release blocked behind a hanging inventory call")
	}
}

// TestPool_Persistence: a new Pool on the same state file offers each
// owner its previous GPUs first.
func TestPool_Persistence(t *testing.T) {
	state := t.TempDir() + "/gpus.json"
	a, b, c := owner("a", 0), owner("b", 0), owner("c", 0)
	p1, err := gpu.NewPool(gputest.NewFake(), gpu.PoolOptions{StateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		o    gpu.Owner
		want []int
	}{{a, []int{0, 1}}, {b, []int{2, 3}}} {
		g, err := p1.Allocate(s.o, gpu.Request{Count: 2})
		if err != nil || !slices.Equal(indices(g), s.want) {
			t.Fatalf("first pool: %v got %v, %v; want %v", s.o, indices(g), err, s.want)
		}
	}
	// Within one Pool: a released instance gets its GPUs back.
	p1.Release(b)
	if g, err := p1.Allocate(b, gpu.Request{Count: 2}); err != nil || !slices.Equal(indices(g), []int{2, 3}) {
		t.Errorf("b again: %v, %v; want [2 3]", indices(g), err)
	}

	// The agent restarts: b asks first, yet gets its own GPUs, not [0 1].
	p2, err := gpu.NewPool(gputest.NewFake(), gpu.PoolOptions{StateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		o    gpu.Owner
		want []int
	}{{b, []int{2, 3}}, {c, []int{4, 5}}, {a, []int{0, 1}}} { // c would take [0 1] if a's were not kept
		g, err := p2.Allocate(s.o, gpu.Request{Count: 2})
		if err != nil || !slices.Equal(indices(g), s.want) {
			t.Errorf("second pool: %v got %v, %v; want %v", s.o, indices(g), err, s.want)
		}
	}
}

// TestPool_CorruptState: a state file that cannot be read is logged and
// replaced; the Pool starts without preferences.
func TestPool_CorruptState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "gpus.json")
	if err := os.WriteFile(state, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	p, err := gpu.NewPool(gputest.NewFake(), gpu.PoolOptions{StateFile: state, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatalf("NewPool with a corrupt state file: %v", err)
	}
	if !strings.Contains(log.String(), "gpu state unreadable") {
		t.Errorf("log %q, want a warning about the state file", log.String())
	}
	if _, err := p.Allocate(owner("a", 0), gpu.Request{Count: 1}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"uuid": "GPU-fa4e0000-0000-4000-8000-000000000000"`; !strings.Contains(string(data), want) {
		t.Errorf("state file %s, want it rewritten with %s", data, want)
	}
}

// TestPool_Static: an inventory without events or samples (a static list)
// is healthy and allocatable; nothing is reported broken.
func TestPool_Static(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inv, err := gpu.NewStatic([]gpu.Device{
			{Index: 0, UUID: "GPU-s0", Name: "L40S", Memory: 48 * oneGiB, NUMANode: 0},
			{Index: 1, UUID: "GPU-s1", Name: "L40S", Memory: 48 * oneGiB, NUMANode: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		p, err := gpu.NewPool(inv, gpu.PoolOptions{OnEvent: func(ev gpu.Event) { t.Errorf("event %+v", ev) }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		advance(time.Hour)
		for _, st := range p.Status() {
			if st.Health != gpu.HealthHealthy || !st.SampledAt.IsZero() {
				t.Errorf("%s: %s, sampled %v; want healthy, never sampled", st.Device.UUID, st.Health, st.SampledAt)
			}
		}
		if g, err := p.Allocate(owner("a", 0), gpu.Request{Count: 2}); err != nil || len(g.Devices) != 2 || g.Mems != "0-1" {
			t.Errorf("Allocate: %+v, %v", g, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func TestPool_StrayEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := gputest.NewFake()
		r := startPool(t, f, gpu.PoolOptions{})
		strays := []gpu.Process{{PID: 20, Memory: 2 * oneGiB}, {PID: 10, Memory: oneGiB}, {PID: 30, Memory: -1}}
		r.p.SetStrays(f.UUID(7), strays)
		r.p.SetStrays(f.UUID(7), strays) // the same again: no news
		synctest.Wait()
		evs := r.take()
		want := "GPU 7 (GPU-fa4e0000-0000-4000-8000-000000000007): 3 stray processes hold 3GiB: pids [10 20 30]"
		if len(evs) != 1 || evs[0].Kind != gpu.KindStray || evs[0].Message != want {
			t.Fatalf("events %+v, want one stray: %s", evs, want)
		}
		if got := r.status(7).Strays; len(got) != 3 {
			t.Errorf("Status strays %v", got)
		}
		r.p.SetStrays(f.UUID(7), nil)
		synctest.Wait()
		if evs := r.take(); len(evs) != 0 || len(r.status(7).Strays) != 0 {
			t.Errorf("cleared strays: events %v, strays %v", kinds(evs), r.status(7).Strays)
		}
	})
}

// resetScript writes a reset hook that appends its arguments to a calls
// file and exits with code.
func resetScript(t *testing.T, code int) (script, calls string) {
	t.Helper()
	dir := t.TempDir()
	script, calls = filepath.Join(dir, "reset.sh"), filepath.Join(dir, "calls")
	body := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %q\necho resetting failed >&2\nexit %d\n", calls, code)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, calls
}

// readCalls returns the lines of the calls file; none when it is missing.
func readCalls(t *testing.T, calls string) []string {
	t.Helper()
	data, err := os.ReadFile(calls)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// TestPool_ResetCommand: the hook runs only once no compute process is
// left, then the GPU returns when a sample confirms it.
func TestPool_ResetCommand(t *testing.T) {
	testenv.RequireLinux(t)
	synctest.Test(t, func(t *testing.T) {
		script, calls := resetScript(t, 0)
		f := gputest.NewFake()
		r := startPool(t, f, gpu.PoolOptions{ResetCommand: []string{script, "-r", "-i", "{uuid}"}})
		llm := owner("llm", 0)
		if _, err := r.p.Allocate(llm, gpu.Request{IDs: []string{"1"}}); err != nil {
			t.Fatal(err)
		}
		f.SetProcesses(1, gpu.Process{PID: 4242, Memory: oneGiB})
		f.PushXID(1, 119)
		synctest.Wait()
		if evs := r.take(); len(evs) != 1 || evs[0].Kind != gpu.KindUnhealthy {
			t.Fatalf("events %+v, want unhealthy", evs)
		}
		r.p.Release(llm)
		advance(3 * gpu.DefaultPollInterval)
		if got := readCalls(t, calls); got != nil {
			t.Fatalf("reset ran %q while a compute process was left", got)
		}
		f.SetProcesses(1)
		advance(gpu.DefaultPollInterval)
		if got, want := readCalls(t, calls), []string{"-r -i " + f.UUID(1)}; !slices.Equal(got, want) {
			t.Fatalf("reset calls %q, want %q", got, want)
		}
		evs := r.take()
		if got := kinds(evs); !slices.Equal(got, []string{"reset", "healthy"}) {
			t.Fatalf("events %v, want reset, healthy", got)
		}
		if !strings.Contains(evs[0].Message, "succeeded") || !strings.Contains(evs[1].Message, "reset command succeeded") {
			t.Errorf("messages %q, %q", evs[0].Message, evs[1].Message)
		}
		if !r.allocatable(1) {
			t.Error("GPU 1 not allocatable after its reset")
		}
		advance(time.Hour)
		if got := readCalls(t, calls); len(got) != 1 {
			t.Errorf("reset ran %d times, want once", len(got))
		}
	})
}

// TestPool_ResetCommandFails: a failing hook is retried a few times, then
// the GPU stays out.
func TestPool_ResetCommandFails(t *testing.T) {
	testenv.RequireLinux(t)
	synctest.Test(t, func(t *testing.T) {
		script, calls := resetScript(t, 3)
		f := gputest.NewFake()
		r := startPool(t, f, gpu.PoolOptions{ResetCommand: []string{script}})
		f.PushXID(6, 48)
		advance(time.Hour)
		if got, want := readCalls(t, calls), []string{f.UUID(6), f.UUID(6), f.UUID(6)}; !slices.Equal(got, want) {
			t.Errorf("reset calls %q, want the UUID appended, 3 times", got)
		}
		evs := r.take()
		if got := kinds(evs); !slices.Equal(got, []string{"unhealthy", "reset", "reset", "reset"}) {
			t.Fatalf("events %v", got)
		}
		if last := evs[3].Message; !strings.Contains(last, "exit status 3: resetting failed") || !strings.Contains(last, "giving up") {
			t.Errorf("last message %q", last)
		}
		if st := r.status(6); st.Health != gpu.HealthUnhealthy {
			t.Errorf("GPU 6 is %s, want unhealthy", st.Health)
		}
	})
}

// TestPool_ResetPending: a pending row remap keeps the holders running,
// resets once they are gone, and waits for the remap to clear.
func TestPool_ResetPending(t *testing.T) {
	testenv.RequireLinux(t)
	synctest.Test(t, func(t *testing.T) {
		script, calls := resetScript(t, 0)
		f := gputest.NewFake()
		r := startPool(t, f, gpu.PoolOptions{ResetCommand: []string{script, "--gpu={index}"}})
		llm := owner("llm", 0)
		if _, err := r.p.Allocate(llm, gpu.Request{IDs: []string{"5"}}); err != nil {
			t.Fatal(err)
		}
		f.SetProcesses(5, gpu.Process{PID: 99, Memory: oneGiB})
		f.SetRemap(5, true, false)
		advance(gpu.DefaultSampleInterval)
		evs := r.take()
		if len(evs) != 1 || evs[0].Kind != gpu.KindResetPending || !slices.Equal(evs[0].Owners, []gpu.Owner{llm}) {
			t.Fatalf("events %+v, want reset_pending naming llm:0", evs)
		}
		if got := r.p.Status()[5].Holders; !slices.Equal(got, []gpu.Owner{llm}) {
			t.Errorf("holders %v: reset_pending must not take the GPU from llm:0", got)
		}
		r.p.Release(llm)
		f.SetProcesses(5)
		advance(gpu.DefaultPollInterval)
		if got := readCalls(t, calls); !slices.Equal(got, []string{"--gpu=5"}) {
			t.Fatalf("reset calls %q", got)
		}
		advance(time.Hour)
		if st := r.status(5); st.Health != gpu.HealthResetPending {
			t.Errorf("remap still pending after the reset: GPU 5 is %s, want reset_pending", st.Health)
		}
		f.SetRemap(5, false, false)
		advance(gpu.DefaultPollInterval)
		if st := r.status(5); st.Health != gpu.HealthHealthy {
			t.Errorf("remap cleared: GPU 5 is %s, want healthy", st.Health)
		}
	})
}
