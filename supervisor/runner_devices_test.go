package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-autoglm/glmd/internal/resources"
)

// fakeDevices hands out one GPU when free is true.
type fakeDevices struct {
	mu       sync.Mutex
	free     bool
	held     bool
	acquires int
	releases int
	wake     chan struct{}
}

func (d *fakeDevices) Acquire(context.Context) (Grant, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.acquires++
	if !d.held && !d.free {
		return Grant{}, fmt.Errorf("needs 1 GPU, 0 available: %w", ErrWait)
	}
	d.held = true
	return Grant{Env: []string{"CUDA_VISIBLE_DEVICES=GPU-1"}, CpusetCPUs: "0-3", CpusetMems: "0", IDs: []string{"GPU-1"}}, nil
}

func (d *fakeDevices) Release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.held {
		d.releases++
	}
	d.held = false
}

func (d *fakeDevices) Wake() <-chan struct{} { return d.wake }

func (d *fakeDevices) setFree() {
	d.mu.Lock()
	d.free = true
	d.mu.Unlock()
	d.wake <- struct{}{}
}

func (d *fakeDevices) counts() (acquires, releases int, held bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acquires, d.releases, d.held
}

// envLauncher records the environment of each launch.
type envLauncher struct {
	fakeLauncher
	envs [][]string
}

func (l *envLauncher) Launch(ctx context.Context, c *Command) (Process, error) {
	l.mu.Lock()
	l.envs = append(l.envs, slices.Clone(c.Env))
	l.mu.Unlock()
	return l.fakeLauncher.Launch(ctx, c)
}

func TestRunner_Devices(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := &fakeDevices{wake: make(chan struct{}, 1)}
		cg := &fakeCgroups{}
		l := &envLauncher{}
		h := &harness{t: t, l: &l.fakeLauncher}
		spec := Spec{
			Command:     Command{Task: "llm", Argv: []string{"/bin/true"}, Env: []string{"A=1"}},
			Restart:     RestartPolicy{Policy: "always", SuccessCodes: []int{0}, Delay: time.Second, MaxDelay: time.Minute, MinUptime: time.Minute},
			StopSignal:  syscall.SIGTERM,
			StopTimeout: 10 * time.Second,
			Resources:   resources.Limits{MemoryMax: 1 << 30},
			Devices:     dev,
		}
		h.r = NewRunner(spec, Options{Launcher: l, Cgroups: cg, Rand: rand.New(rand.NewPCG(1, 1)), Log: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		go h.r.Run(ctx)
		t.Cleanup(func() { cancel(); <-h.r.Done() })

		// No GPU free: pending, with the reason, and nothing launched.
		h.r.Start(t.Context())
		h.want(StatePending)
		if msg := h.r.Status().Message; msg != "needs 1 GPU, 0 available: supervisor: waiting for devices" {
			t.Fatalf("message %q", msg)
		}
		if l.count() != 0 {
			t.Fatal("launched without its GPU")
		}
		// The GPU frees up: the instance starts by itself, with the
		// environment and the cpuset of the grant.
		dev.setFree()
		h.want(StateRunning)
		if !slices.Equal(l.envs[0], []string{"A=1", "CUDA_VISIBLE_DEVICES=GPU-1"}) {
			t.Fatalf("env %q", l.envs[0])
		}
		if got := h.r.Status().Devices; !slices.Equal(got, []string{"GPU-1"}) {
			t.Fatalf("devices %q", got)
		}
		cg.mu.Lock()
		g := cg.groups["llm@0"]
		cg.mu.Unlock()
		if lim, _ := g.state(); lim.CpusetCPUs != "0-3" || lim.CpusetMems != "0" || lim.MemoryMax != 1<<30 {
			t.Fatalf("limits %+v", lim)
		}
		// An update of the limits keeps the pinning.
		spec.Resources.MemoryMax = 2 << 30
		if err := h.r.Update(t.Context(), spec); err != nil {
			t.Fatal(err)
		}
		if lim, _ := g.state(); lim.CpusetCPUs != "0-3" || lim.MemoryMax != 2<<30 {
			t.Fatalf("limits after update %+v", lim)
		}
		// A crash keeps the GPU across the restart.
		h.l.last().end(Exit{Code: 1, Reason: ReasonExited})
		h.want(StateBackoff)
		if _, releases, held := dev.counts(); releases != 0 || !held {
			t.Fatalf("GPU released on a crash (releases %d, held %v)", releases, held)
		}
		time.Sleep(time.Minute)
		h.want(StateRunning)
		// A restart for a cause: the exit says why.
		if err := h.r.RestartFor(t.Context(), "gpu_unhealthy", "restarted: GPU 3 unhealthy"); err != nil {
			t.Fatal(err)
		}
		h.want(StateRunning)
		if st := h.r.Status(); st.LastExit.Reason != "gpu_unhealthy" || st.Message != "started pid 1002" {
			t.Fatalf("after RestartFor: %+v", st)
		}
		// Stopped for good: released once.
		h.r.Stop(t.Context())
		h.want(StateStopped)
		if _, releases, held := dev.counts(); releases != 1 || held {
			t.Fatalf("after stop: releases %d, held %v", releases, held)
		}
	})
}

func TestRunner_Devices_StopWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := &fakeDevices{wake: make(chan struct{}, 1)}
		h := newHarness(t, func(s *Spec) { s.Devices = dev })
		h.r.Start(t.Context())
		h.want(StatePending)
		h.r.Stop(t.Context())
		h.want(StateStopped)
		// A wake-up after the stop starts nothing.
		dev.setFree()
		synctest.Wait()
		h.want(StateStopped)
		if h.l.count() != 0 {
			t.Fatal("started after stop")
		}
	})
}
