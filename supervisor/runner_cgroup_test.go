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

	"github.com/open-autoglm/glmd/internal/resources"
)

// fakeCgroups records what the runner asks of its cgroups.
type fakeCgroups struct {
	mu      sync.Mutex
	opened  []string
	groups  map[string]*fakeGroup
	openErr error
}

func (c *fakeCgroups) Open(ctx context.Context, name string, l resources.Limits) (Group, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.openErr != nil {
		return nil, c.openErr
	}
	c.opened = append(c.opened, name)
	g := c.groups[name]
	if g == nil {
		g = &fakeGroup{name: name}
		if c.groups == nil {
			c.groups = map[string]*fakeGroup{}
		}
		c.groups[name] = g
	}
	g.mu.Lock()
	g.limits, g.deleted = l, false
	g.mu.Unlock()
	return g, nil
}

type fakeGroup struct {
	mu        sync.Mutex
	name      string
	limits    resources.Limits
	deleted   bool
	updateErr error
}

func (g *fakeGroup) Name() string { return g.name }
func (g *fakeGroup) Start(fork func(int) (int, error)) (int, error) {
	return fork(-1)
}
func (g *fakeGroup) Procs() ([]int, error)     { return nil, nil }
func (g *fakeGroup) Kill() error               { return nil }
func (g *fakeGroup) OOMKills() (uint64, error) { return 0, nil }
func (g *fakeGroup) Stats() (resources.Stats, error) {
	return resources.Stats{Pids: 3}, nil
}
func (g *fakeGroup) Update(l resources.Limits) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.updateErr != nil {
		return g.updateErr
	}
	g.limits = l
	return nil
}
func (g *fakeGroup) Delete() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deleted = true
	return nil
}

func (g *fakeGroup) state() (resources.Limits, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limits, g.deleted
}

func cgroupHarness(t *testing.T, cg *fakeCgroups) *harness {
	h := &harness{t: t, l: &fakeLauncher{}}
	spec := Spec{
		Command:     Command{Task: "lim", Instance: 2, Argv: []string{"/bin/true"}},
		Restart:     RestartPolicy{Policy: "on-failure", SuccessCodes: []int{0}, Delay: 100 * time.Millisecond, MaxDelay: time.Minute, MinUptime: time.Minute},
		StopSignal:  syscall.SIGTERM,
		StopTimeout: 10 * time.Second,
		Resources:   resources.Limits{MemoryMax: 1 << 30},
	}
	h.r = NewRunner(spec, Options{Launcher: h.l, Cgroups: cg, Rand: rand.New(rand.NewPCG(1, 1)), Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	go h.r.Run(ctx)
	t.Cleanup(func() { cancel(); <-h.r.Done() })
	return h
}

func TestRunner_Cgroup_Lifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cg := &fakeCgroups{}
		h := cgroupHarness(t, cg)
		h.r.Start(t.Context())
		h.want(StateRunning)
		cg.mu.Lock()
		g := cg.groups["lim@2"]
		cg.mu.Unlock()
		if g == nil {
			t.Fatal("no group opened")
		}
		if st, ok := h.r.Stats(); !ok || st.Pids != 3 {
			t.Fatalf("stats %+v %v", st, ok)
		}
		// A crash keeps the group for the restart.
		h.l.last().end(Exit{Code: 1, Reason: ReasonExited})
		h.want(StateBackoff)
		if _, deleted := g.state(); deleted {
			t.Fatal("group deleted between restarts")
		}
		time.Sleep(time.Second)
		h.want(StateRunning)
		// Limits change in place.
		spec := h.r.spec
		spec.Resources.MemoryMax = 2 << 30
		if err := h.r.Update(t.Context(), spec); err != nil {
			t.Fatal(err)
		}
		if l, _ := g.state(); l.MemoryMax != 2<<30 {
			t.Fatalf("limits %+v", l)
		}
		// The kernel refusing the new limits is reported.
		g.mu.Lock()
		g.updateErr = errors.New("device or resource busy")
		g.mu.Unlock()
		spec.Resources.MemoryMax = 1 << 20
		if err := h.r.Update(t.Context(), spec); err == nil {
			t.Fatal("a refused update reported no error")
		}
		// Stopped for good: the group goes.
		h.r.Stop(t.Context())
		h.want(StateStopped)
		if _, deleted := g.state(); !deleted {
			t.Fatal("group left after stop")
		}
		if _, ok := h.r.Stats(); ok {
			t.Fatal("stats of a deleted group")
		}
	})
}

func TestRunner_Cgroup_OpenFailureIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cg := &fakeCgroups{openErr: errors.New("no space left on device")}
		h := cgroupHarness(t, cg)
		h.r.Start(t.Context())
		h.want(StateBackoff)
		if msg := h.r.Status().Message; msg == "" {
			t.Fatal("no message")
		}
		cg.mu.Lock()
		cg.openErr = nil
		cg.mu.Unlock()
		time.Sleep(time.Second)
		h.want(StateRunning)
		if h.l.count() != 1 {
			t.Fatalf("%d launches", h.l.count())
		}
	})
}

func TestRunner_Cgroup_FinishedJobDropsGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cg := &fakeCgroups{}
		h := cgroupHarness(t, cg)
		h.r.Start(t.Context())
		h.want(StateRunning)
		h.l.last().end(Exit{Code: 0, Reason: ReasonExited})
		h.want(StateExited)
		cg.mu.Lock()
		g := cg.groups["lim@2"]
		cg.mu.Unlock()
		if _, deleted := g.state(); !deleted {
			t.Fatal("group of a finished job left behind")
		}
	})
}
