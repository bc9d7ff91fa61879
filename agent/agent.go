// Package agent is glmd's composition root and reconciler: it wires the
// real launcher, the control API, metrics and the conf.d watcher, turns task
// files into supervised instances, and applies each change of conf.d with
// the least disruption (only changed tasks; in place when the process is not
// affected; restarts one instance at a time).
package agent

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/glmd/cgroup"
	"github.com/open-autoglm/glmd/discovery"
	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/confwatch"
	"github.com/open-autoglm/glmd/internal/gpu"
	"github.com/open-autoglm/glmd/internal/health"
	"github.com/open-autoglm/glmd/internal/metrics"
	"github.com/open-autoglm/glmd/internal/version"
	"github.com/open-autoglm/glmd/supervisor"
)

// Deps are the agent's collaborators. Zero values pick the real ones.
type Deps struct {
	Log      *slog.Logger
	Launcher supervisor.Launcher
	// Notify receives sd_notify state strings ("READY=1", "STOPPING=1",
	// "WATCHDOG=1", "STATUS=..."); nil when not under systemd.
	Notify func(state string)
	// Watchdog is the interval systemd expects WATCHDOG=1 pings at; 0 = none.
	Watchdog time.Duration
	// Cgroups replaces the real cgroup manager (tests); nil builds one from
	// the [cgroup] config.
	Cgroups supervisor.Cgroups
	// Discovery replaces the Consul client (tests: discoverytest's fake);
	// nil builds one from [consul], or the standalone one.
	Discovery func(discovery.Options) discovery.Client
	// GPUs replaces the GPU inventory (tests: the go-nvml mocks or the
	// fake of gputest); nil opens the one [gpu] provider names.
	GPUs gpu.Inventory
	// Listening, when set, is called with the control socket and the
	// metrics address ("off" when none) once both are open: tests use it to
	// find a port the kernel picked.
	Listening func(socket, metrics string)
}

// Agent supervises the tasks of one node.
type Agent struct {
	cfg      *config.Agent
	log      *slog.Logger
	launcher supervisor.Launcher
	notify   func(string)
	deps     Deps
	events   *eventBus
	started  time.Time

	// probeTransport carries every HTTP health probe of the agent, so that
	// connections to the instances are kept alive between probes.
	probeTransport http.RoundTripper

	// cgroups is nil when cgroups cannot be used; cgroupErr says why.
	cgroups    supervisor.Cgroups
	cgroupErr  error
	cgroupMode string

	// gpus is the node's GPU pool (empty without GPUs); gpuWaiters are the
	// instances pending for GPUs, woken when some are released.
	gpus       *gpu.Pool
	gpuInv     gpu.Inventory
	hasGPUs    bool // the pool has GPUs: set once in setupGPUs
	gpuMu      sync.Mutex
	gpuWaiters map[*instanceGPUs]struct{}

	// disc registers the instances in Consul and holds the election of
	// the scheduler role (standalone without Consul). leading is the
	// fencing token while this agent holds the role, 0 otherwise.
	disc discovery.Client
	// cronZone is [cron] timezone, loaded once: the zone of scheduled
	// tasks that name none.
	cronZone *time.Location
	discWake chan struct{} // cap 1: sync the registrations now
	leading  atomic.Uint64

	// runCtx lives until every instance is stopped at shutdown; runner
	// goroutines and rollouts use it, not Run's ctx, which ends first.
	runCtx    context.Context
	runCancel context.CancelFunc
	wg        sync.WaitGroup // runner goroutines and rollouts

	reconcileMu sync.Mutex     // one reconcile at a time; guards loader
	loader      *config.Loader // re-parses only the task files that changed
	wake        chan struct{}  // cap 1: re-evaluate dependencies

	mu      sync.Mutex // guards everything below
	tasks   map[string]*task
	invalid map[string][]*config.FileError // files that are invalid now, by file name
	reloads map[string]int                 // by result: ok, invalid, error
	dirErr  error                          // conf_dir could not be read
}

// New returns an agent for cfg. Run starts it.
func New(cfg *config.Agent, d Deps) *Agent {
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	notify := d.Notify
	if notify == nil {
		notify = func(string) {}
	}
	return &Agent{
		cfg:            cfg,
		log:            log,
		launcher:       d.Launcher,
		notify:         notify,
		deps:           d,
		events:         newEventBus(),
		wake:           make(chan struct{}, 1),
		probeTransport: health.NewTransport(),
		loader:         config.NewLoader(config.LoadOptions{Node: cfg.NodeName, RequireRootOwned: os.Geteuid() == 0}),
		tasks:          map[string]*task{},
		gpuWaiters:     map[*instanceGPUs]struct{}{},
		discWake:       make(chan struct{}, 1),
		cronZone:       cronZone(cfg, log),
		invalid:        map[string][]*config.FileError{},
		reloads:        map[string]int{},
	}
}

// Run starts the agent and supervises until ctx ends; then it stops every
// task (dependents first, each level in parallel, bounded by the stop
// timeouts) and returns nil. It fails at once if the control socket is held
// by a live agent.
func (a *Agent) Run(ctx context.Context) error {
	a.started = time.Now()
	if a.launcher == nil {
		l, err := supervisor.NewOSLauncher(a.log)
		if err != nil {
			return fmt.Errorf("start the process launcher: %w", err)
		}
		a.launcher = l
	}
	if err := a.setupCgroups(ctx); err != nil {
		return err
	}
	for _, d := range []string{a.cfg.StateDir, a.cfg.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := a.setupGPUs(); err != nil {
		return err
	}
	defer a.closeGPUs()
	if err := a.setupDiscovery(); err != nil {
		return err
	}
	ln, err := api.Listen(a.cfg.Socket, a.cfg.SocketGroup)
	if err != nil {
		return err
	}
	var (
		metricsLn  net.Listener
		metricsSrv *http.Server
	)
	if a.cfg.Metrics.Listen != "" {
		metricsLn, err = net.Listen("tcp", a.cfg.Metrics.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics.listen %s: %w (another glmd? change [metrics] listen, or set it to \"\" to turn metrics off)", a.cfg.Metrics.Listen, err)
		}
	}
	a.runCtx, a.runCancel = context.WithCancel(context.WithoutCancel(ctx))
	defer a.runCancel()

	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	var servers sync.WaitGroup
	srv := api.NewServer(a, a.log)
	servers.Go(func() {
		if err := srv.Serve(serveCtx, ln); err != nil {
			a.log.Error("control api", "err", err)
		}
	})
	if metricsLn != nil {
		reg := metrics.NewRegistry(a, version.Version, version.Commit)
		reg.MustRegister(a.gpus.Collector(), newCronCollector(a), newDiscoveryCollector(a))
		metricsSrv = &http.Server{Handler: metrics.Handler(reg), ReadHeaderTimeout: 10 * time.Second}
		servers.Go(func() {
			if err := metricsSrv.Serve(metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("metrics", "err", err)
			}
		})
	}
	metricsAddr := "off"
	if metricsLn != nil {
		metricsAddr = metricsLn.Addr().String()
	}
	if a.deps.Listening != nil {
		a.deps.Listening(a.cfg.Socket, metricsAddr)
	}

	a.publish(api.Event{Type: "agent", Instance: -1, Message: fmt.Sprintf("glmd %s started on %s (pid %d)", version.Version, a.cfg.NodeName, os.Getpid())})
	a.log.Info("glmd started", "node", a.cfg.NodeName, "conf_dir", a.cfg.ConfDir, "socket", a.cfg.Socket, "metrics", metricsAddr, "version", version.Version)
	a.reconcile(confwatch.Read(a.cfg.ConfDir), false)

	watcher := confwatch.New(a.cfg.ConfDir, confwatch.Options{Logger: a.log})
	watchCtx, stopWatching := context.WithCancel(ctx)
	var loops sync.WaitGroup
	loops.Go(func() {
		if err := watcher.Run(watchCtx); err != nil {
			a.log.Error("watching conf_dir", "dir", a.cfg.ConfDir, "err", err)
		}
	})
	loops.Go(func() { a.dependencyLoop(watchCtx) })
	gpuCtx, stopGPUs := context.WithCancel(context.WithoutCancel(ctx))
	var gpuLoop sync.WaitGroup
	if a.hasGPUs {
		gpuLoop.Go(func() {
			if err := a.gpus.Run(gpuCtx); err != nil {
				a.log.Error("gpu health watch", "err", err)
			}
		})
	}
	discCtx, stopDiscovery := context.WithCancel(context.WithoutCancel(ctx))
	var discLoops sync.WaitGroup
	discLoops.Go(func() {
		if err := a.disc.Run(discCtx); err != nil {
			a.log.Error("discovery", "err", err)
		}
	})
	syncCtx, stopSync := context.WithCancel(discCtx)
	// Standalone there is nothing to register and no check to pass: an
	// idle agent stays idle.
	var heartbeatC <-chan time.Time
	if a.usesConsul() {
		discLoops.Go(func() { a.discoveryLoop(syncCtx) })
		heartbeat := time.NewTicker(a.disc.HeartbeatInterval())
		defer heartbeat.Stop()
		heartbeatC = heartbeat.C
		a.disc.Heartbeat()
	}
	if a.hasGPUs {
		gpuLoop.Go(func() { a.strayLoop(gpuCtx, cmp.Or(a.cfg.GPU.Health.PollInterval, config.DefaultGPUPollInterval)) })
	}
	a.notify("READY=1")
	a.notify("STATUS=supervising")

	var watchdog <-chan time.Time
	if a.deps.Watchdog > 0 {
		t := time.NewTicker(a.deps.Watchdog / 2)
		defer t.Stop()
		watchdog = t.C
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case snap := <-watcher.Snapshots():
			a.reconcile(snap, false)
		case <-watchdog:
			a.notify("WATCHDOG=1")
		case <-heartbeatC:
			// From the main loop, so that a stuck agent stops passing its
			// Consul check and gives up the scheduler role.
			a.disc.Heartbeat()
		}
	}

	a.notify("STOPPING=1")
	a.log.Info("glmd stopping: stopping all tasks")
	a.publish(api.Event{Type: "agent", Instance: -1, Message: "glmd stopping: stopping all tasks"})
	stopWatching()
	loops.Wait()
	a.shutdown()
	// The instances deregistered as they stopped; now the node's service,
	// the scheduler role and the session go.
	stopSync()
	if a.usesConsul() {
		a.syncDiscovery()
	}
	stopDiscovery()
	discLoops.Wait()
	stopGPUs()
	gpuLoop.Wait()
	stopServing()
	if metricsSrv != nil {
		metricsSrv.Close()
	}
	servers.Wait()
	a.log.Info("glmd stopped")
	return nil
}

// setupCgroups builds the cgroup manager and removes the groups a previous
// agent left. Without cgroups the agent still runs (tasks without limits
// are unaffected) unless the config asked for a cgroup version explicitly.
func (a *Agent) setupCgroups(ctx context.Context) error {
	if a.deps.Cgroups != nil {
		a.cgroups, a.cgroupMode = a.deps.Cgroups, "injected"
		return nil
	}
	mode, parent := a.cfg.Cgroup.Mode, a.cfg.Cgroup.Parent
	if parent == "" && a.cfg.Dev {
		// A development agent must never share the production agent's
		// parent: each agent kills what it finds under its own at start.
		sum := sha256.Sum256([]byte(a.cfg.StateDir))
		parent = fmt.Sprintf("/glmd-dev-%x", sum[:4])
	}
	m, err := cgroup.New(cgroup.Options{Mode: mode, Parent: parent, Log: a.log, MoveSelf: !a.cfg.Dev})
	if err != nil {
		if mode == "v1" || mode == "v2" {
			return fmt.Errorf("[cgroup] mode = %q: %w", mode, err)
		}
		a.cgroupErr, a.cgroupMode = err, "off"
		what := "tasks with [resources] limits will not start"
		if a.cfg.Dev {
			what = "--dev: tasks with [resources] limits start without them"
		}
		a.log.Warn("running without cgroups: "+what, "err", err)
		return nil
	}
	removed, err := m.Cleanup(ctx)
	if err != nil {
		a.log.Warn("cleaning up cgroups of a previous agent", "err", err)
	}
	if len(removed) > 0 {
		a.log.Info("removed cgroups a previous agent left", "cgroups", removed)
	}
	a.cgroups, a.cgroupMode = m, m.Mode()
	a.log.Info("cgroups", "mode", a.cgroupMode)
	return nil
}

// Reload re-reads conf_dir now (SIGHUP, `glmctl reload`) and applies it,
// or only plans it when dryRun.
func (a *Agent) Reload(ctx context.Context, dryRun bool) (api.Plan, error) {
	return a.reconcile(confwatch.Read(a.cfg.ConfDir), dryRun), nil
}

// shutdown stops every task, dependents before what they depend on.
func (a *Agent) shutdown() {
	a.mu.Lock()
	levels := stopLevels(a.tasks)
	for _, t := range a.tasks {
		if t.rollout != nil {
			t.rollout()
		}
	}
	a.mu.Unlock()
	ctx := context.WithoutCancel(a.runCtx)
	for _, level := range levels {
		var wg sync.WaitGroup
		for _, t := range level {
			for _, in := range a.instancesOf(t) {
				wg.Go(func() { a.stopInstance(ctx, in) })
			}
			if ct := a.cronOf(t); ct != nil {
				wg.Go(func() { ct.stop(ctx, "glmd stopping") })
			}
		}
		wg.Wait()
	}
	a.runCancel()
	a.wg.Wait()
	// Stopped instances' cgroups are removed in the background; let that
	// finish so that the next agent finds nothing to clean up.
	if w, ok := a.cgroups.(interface{ Wait(context.Context) error }); ok {
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := w.Wait(wctx); err != nil {
			a.log.Warn("waiting for cgroups to be removed", "err", err)
		}
		cancel()
	}
	a.mu.Lock()
	for _, t := range a.tasks {
		for _, in := range t.instances {
			in.close(a.log)
		}
	}
	a.mu.Unlock()
}

func (a *Agent) publish(e api.Event) {
	a.events.publish(e)
}

// poke asks the dependency loop to look again.
func (a *Agent) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// cronZone loads [cron] timezone; LoadAgent checked it, so a failure here
// means the zone database changed since: UTC, said once.
func cronZone(cfg *config.Agent, log *slog.Logger) *time.Location {
	loc, err := config.LoadZone(cfg.Cron.Timezone)
	if err != nil {
		log.Warn("[cron] timezone: using UTC", "err", err)
		return time.UTC
	}
	return loc
}
