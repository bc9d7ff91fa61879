package gpu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Health is a GPU's state as the Pool sees it; the strings are what
// `glmctl gpus` and glmd_gpu_health_state{state} show.
type Health string

// GPU health states.
const (
	// HealthHealthy: allocatable.
	HealthHealthy Health = "healthy"
	// HealthRestartApp: a restart_app XID in the last 10 minutes; the GPU
	// stays allocatable.
	HealthRestartApp Health = "restart_app"
	// HealthResetPending: row remapping waits for a reset; out of the
	// pool, its holders keep running, reset once idle.
	HealthResetPending Health = "reset_pending"
	// HealthUnhealthy: out of the pool, its holders must stop, reset once
	// idle.
	HealthUnhealthy Health = "unhealthy"
	// HealthLost: fallen off the bus, or a node reboot is required. Only a
	// new Pool (glmd restart, normally after the reboot) clears it.
	HealthLost Health = "lost"
	// HealthUnknown: the driver event watch is broken, so the GPU may have
	// failed unseen; no new allocations until the watch works again.
	HealthUnknown Health = "unknown"
)

// Healths lists every state, in the order metrics show them.
var Healths = []Health{HealthHealthy, HealthRestartApp, HealthResetPending, HealthUnhealthy, HealthLost, HealthUnknown}

// Event kinds of the Pool, as Event.Kind.
const (
	KindXID          = "xid"           // a restart_app XID: restart the owners' instances if they failed
	KindUnhealthy    = "unhealthy"     // out of the pool: stop every owner's instance (reason gpu_unhealthy)
	KindResetPending = "reset_pending" // out of the pool, owners keep running; reset once they are gone
	KindHealthy      = "healthy"       // back in the pool (UUID "": the event watch works again)
	KindLost         = "lost"          // fallen off the bus: stop the owners; node reboot required
	KindReset        = "reset"         // the reset command ran (Message says how it went)
	KindStray        = "stray"         // processes nobody owns hold memory on the GPU
	KindWatchFailed  = "watch_failed"  // driver events broke: health unknown, no new allocations
)

// Event is a change the agent may act on. Events of one Pool are delivered
// in order.
type Event struct {
	Time    time.Time
	UUID    string // "" for events about every GPU (watch_failed, the watch's return)
	Index   int    // -1 with UUID ""
	Kind    string // Kind*
	XID     int    // 0 when no XID caused it
	Action  Action // the XID's action, "" when none
	Owners  []Owner
	Message string // "GPU 3 (GPU-...): xid 79 (fallen off the bus): reboot required; stopping llm:0"
}

// XIDCount counts one XID on one GPU since the Pool started.
type XIDCount struct {
	XID    int
	Action Action // as classified when it arrived
	Count  uint64
}

// Status is one GPU as the Pool sees it now.
type Status struct {
	Device    Device
	Sample    Sample    // the last sample; zero before the first
	SampledAt time.Time // zero before the first sample
	Health    Health
	Reason    string    // why it is not healthy: "xid 79 (fallen off the bus)"
	Since     time.Time // when Health last changed, or the last fault of a GPU out of the pool
	Holders   []Owner
	Strays    []Process // set by the agent (SetStrays)
	XIDs      []XIDCount
	LastXID   int // 0 when none
}

// PoolOptions configure a Pool. Zero values take the defaults.
type PoolOptions struct {
	// StateFile keeps each owner's last GPUs across agent restarts
	// (state_dir/gpus.json); "" keeps them in memory only.
	StateFile string
	Log       *slog.Logger
	Overrides Overrides
	// PollInterval (default 30s) paces the health poll: processes on GPUs
	// waiting for a reset, the reset command, re-admission, the end of
	// restart_app.
	PollInterval time.Duration
	// SampleInterval (default 10s) paces Sample: memory in use for
	// MinMemory, remap and ECC checks, and what metrics show.
	SampleInterval time.Duration
	// CallTimeout (default 5s) bounds every Inventory call; each runs in
	// its own goroutine, because NVML can hang on a lost GPU.
	CallTimeout time.Duration
	// ResetCommand is the operator's hook to reset a GPU, run (no shell)
	// once the GPU has no compute process left. "{uuid}", "{index}" and
	// "{pci_bus_id}" in its arguments are replaced; without any of them
	// the UUID is appended: ["nvidia-smi", "-r", "-i"].
	ResetCommand []string
	// RecoverAfter (default 10m) is how long an unhealthy GPU must stay
	// quiet (no new fault, no compute process, present, no remap
	// pending) before it returns to the pool when there is no
	// ResetCommand. Negative: never without a ResetCommand or a restart.
	RecoverAfter time.Duration
	// OnEvent is called from the Pool's goroutine (inside Run), in order;
	// it must not block.
	OnEvent func(Event)
	// Now replaces time.Now in tests.
	Now func() time.Time
}

// Defaults of PoolOptions and the health rules.
const (
	DefaultPollInterval   = 30 * time.Second
	DefaultSampleInterval = 10 * time.Second
	DefaultCallTimeout    = 5 * time.Second
	DefaultRecoverAfter   = 10 * time.Minute

	// escalateCount restart_app XIDs on one GPU within escalateWindow
	// escalate to a reset: bursts of 13 or 31 can be hardware.
	escalateCount  = 3
	escalateWindow = 10 * time.Minute
	// resetTimeout bounds the reset command; maxResetTries failed runs
	// leave the GPU out until an operator steps in.
	resetTimeout  = 2 * time.Minute
	maxResetTries = 3
	// maxQueuedEvents bounds the events waiting for Run to deliver them.
	maxQueuedEvents = 1024
)

// Pool joins an Inventory with the Allocator and GPU health. Its methods
// are safe for concurrent use; Run must run for health to be watched and
// events to be delivered.
type Pool struct {
	inv           Inventory
	opts          PoolOptions
	driverVersion string // read once: "" when the inventory does not know
	log           *slog.Logger
	now           func() time.Time

	wake    chan struct{} // cap 1: events are queued
	pollNow chan struct{} // cap 1: sample and poll at once
	saveMu  sync.Mutex    // serialises writes of the state file

	sampleFails int // consecutive failed samples; owned by Run's goroutine

	mu        sync.Mutex // guards the fields below; never held while calling the inventory, OnEvent or a command
	alloc     *Allocator
	gpus      []*gpuState // index order
	byUUID    map[string]*gpuState
	prefer    map[Owner][]string // each owner's last grant; a UUID belongs to one owner at most
	watchOK   bool
	watchErr  string
	noSamples bool   // the inventory has no samples (static): presence cannot be checked
	seq       uint64 // counts samples started: orders samples against faults and resets
	lostCheck bool   // a GPU was lost without a UUID: the next sample tells which
	events    []Event
}

// gpuState is the Pool's record of one GPU.
type gpuState struct {
	dev       Device
	health    Health // own health; Status shows unknown over it while the watch is broken
	reason    string
	since     time.Time
	sample    Sample
	sampledAt time.Time
	sampleSeq uint64 // seq of the sample call that gave sample
	eccBase   int64  // last uncorrected ECC count seen; -1 unknown
	strays    []Process
	xids      map[XIDCount]uint64 // key with Count 0
	lastXID   int
	appXIDs   []time.Time // restart_app XIDs within escalateWindow

	faults     uint64    // counts faults, so a reset knows whether a new one came meanwhile
	faultSeq   uint64    // seq when the last fault arrived: only later samples count
	needReset  bool      // the fault wants the reset command (when there is one)
	resetting  bool      // the command runs
	resetOK    time.Time // the command last succeeded; zero if not since the fault
	resetSeq   uint64    // seq when it succeeded
	resetTries int
}

// NewPool reads the inventory's devices once and the state file, and
// returns a Pool with every GPU healthy. A state file that cannot be read
// is logged and ignored.
func NewPool(inv Inventory, opts PoolOptions) (*Pool, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.SampleInterval <= 0 {
		opts.SampleInterval = DefaultSampleInterval
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.RecoverAfter == 0 {
		opts.RecoverAfter = DefaultRecoverAfter
	}
	p := &Pool{
		inv: inv, opts: opts, log: opts.Log, now: opts.Now,
		wake: make(chan struct{}, 1), pollNow: make(chan struct{}, 1),
		byUUID: map[string]*gpuState{}, watchOK: true,
	}
	type devices struct {
		devs  []Device
		links map[Pair]Link
	}
	got, err := callTimeout(context.Background(), opts.CallTimeout, "devices", func(ctx context.Context) (devices, error) {
		d, l, err := inv.Devices(ctx)
		return devices{d, l}, err
	})
	if err != nil {
		return nil, fmt.Errorf("list gpus: %w", err)
	}
	p.alloc = NewAllocator(got.devs, got.links)
	if dv, ok := inv.(DriverVersioner); ok {
		p.driverVersion = dv.DriverVersion()
	}
	now := p.now()
	for _, d := range p.alloc.devs {
		g := &gpuState{dev: d, health: HealthHealthy, since: now, eccBase: -1, xids: map[XIDCount]uint64{}}
		p.gpus = append(p.gpus, g)
		p.byUUID[d.UUID] = g
	}
	p.prefer = map[Owner][]string{}
	if opts.StateFile != "" {
		prefer, err := loadState(opts.StateFile)
		if err != nil {
			p.log.Warn("gpu state unreadable, starting without previous assignments", "file", opts.StateFile, "err", err)
		}
		p.prefer = prefer
	}
	return p, nil
}

// Allocate gives the owner GPUs for req, preferring its previous ones and
// keeping other owners' previous ones for them while others fit, and
// remembers the grant in the state file. It fails with a *ShortError
// (never Permanent) while the driver event watch is broken.
func (p *Pool) Allocate(owner Owner, req Request) (Grant, error) {
	p.mu.Lock()
	if req.want() > 0 && !p.watchOK {
		msg := fmt.Sprintf("GPU health unknown, the driver event watch failed (%s): no new GPU allocations until it works again", p.watchErr)
		p.mu.Unlock()
		return Grant{}, &ShortError{Request: req, msg: msg}
	}
	// Other owners' previous GPUs are kept for them while others fit: after
	// an agent restart the instances come back in no particular order.
	avoid := map[string]bool{}
	for o, us := range p.prefer {
		if o != owner {
			for _, u := range us {
				avoid[u] = true
			}
		}
	}
	g, err := p.alloc.allocate(owner, req, p.prefer[owner], avoid)
	changed := false
	if err == nil && len(g.Devices) > 0 && !slices.Equal(p.prefer[owner], g.UUIDs()) {
		p.remember(owner, g.UUIDs())
		changed = true
	}
	p.mu.Unlock()
	if changed {
		p.save()
	}
	return g, err
}

// remember makes uuids the owner's preference and drops the preference
// of any other owner that named one of them, so that every UUID belongs
// to one owner at most and the file stays as small as the host.
// Must hold mu.
func (p *Pool) remember(owner Owner, uuids []string) {
	for o, us := range p.prefer {
		if o != owner && slices.ContainsFunc(us, func(u string) bool { return slices.Contains(uuids, u) }) {
			delete(p.prefer, o)
		}
	}
	p.prefer[owner] = slices.Clone(uuids)
}

// Release gives back the owner's GPUs. Its preference stays (in memory and
// in the state file), so that its next Allocate gets the same GPUs when
// they are still free.
func (p *Pool) Release(owner Owner) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.alloc.Release(owner)
}

// save writes the preferences; a failure is logged, not returned: the
// grant stands, only its memory across a restart is lost.
func (p *Pool) save() {
	if p.opts.StateFile == "" {
		return
	}
	// Snapshot under saveMu, so that the last write holds the newest state.
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	prefer := make(map[Owner][]string, len(p.prefer))
	for o, us := range p.prefer {
		prefer[o] = slices.Clone(us)
	}
	p.mu.Unlock()
	if err := saveState(p.opts.StateFile, prefer); err != nil {
		p.log.Error("gpu state not saved, assignments will not survive a restart", "file", p.opts.StateFile, "err", err)
	}
}

// DriverVersion returns the kernel driver's version as the inventory
// reported it at NewPool, "" when it does not know.
func (p *Pool) DriverVersion() string { return p.driverVersion }

// Status returns every GPU, in index order.
func (p *Pool) Status() []Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Status, 0, len(p.gpus))
	for _, g := range p.gpus {
		s := Status{
			Device: g.dev, Sample: g.sample, SampledAt: g.sampledAt,
			Health: g.health, Reason: g.reason, Since: g.since,
			Holders: p.alloc.Holders(g.dev.UUID), Strays: slices.Clone(g.strays), LastXID: g.lastXID,
		}
		if !p.watchOK && (g.health == HealthHealthy || g.health == HealthRestartApp) {
			s.Health = HealthUnknown
			s.Reason = "driver event watch failed: " + p.watchErr
		}
		for k, n := range g.xids {
			s.XIDs = append(s.XIDs, XIDCount{XID: k.XID, Action: k.Action, Count: n})
		}
		slices.SortFunc(s.XIDs, func(a, b XIDCount) int { return a.XID - b.XID })
		out = append(out, s)
	}
	return out
}

// Processes lists the compute processes on the GPU, bounded by
// CallTimeout.
func (p *Pool) Processes(ctx context.Context, uuid string) ([]Process, error) {
	return callTimeout(ctx, p.opts.CallTimeout, "processes", func(ctx context.Context) ([]Process, error) {
		return p.inv.Processes(ctx, uuid)
	})
}

// SetStrays records the processes on the GPU that belong to no instance
// (the agent tells them apart by cgroup). A new non-empty set is a stray
// event.
func (p *Pool) SetStrays(uuid string, procs []Process) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, found := p.byUUID[uuid]
	if !found {
		return
	}
	old := strayPIDs(g.strays)
	g.strays = slices.Clone(procs)
	now := strayPIDs(g.strays)
	if len(now) == 0 || slices.Equal(old, now) {
		return
	}
	var mem int64
	for _, pr := range procs {
		mem += max(pr.Memory, 0)
	}
	p.emit(g, Event{Kind: KindStray, Message: fmt.Sprintf("%d stray processes hold %s: pids %v", len(now), formatBytes(mem), now)})
}

// strayPIDs is the sorted PIDs of procs.
func strayPIDs(procs []Process) []int {
	out := make([]int, len(procs))
	for i, pr := range procs {
		out[i] = pr.PID
	}
	slices.Sort(out)
	return out
}

// callTimeout runs f in its own goroutine and gives up after d: NVML may
// block for good on a lost GPU, and the caller must go on. The goroutine
// of a call that never returns is left behind.
func callTimeout[T any](ctx context.Context, d time.Duration, what string, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return zero, fmt.Errorf("gpu inventory %s: no answer within %v: %w", what, d, ctx.Err())
		}
		return zero, fmt.Errorf("gpu inventory %s: %w", what, ctx.Err())
	}
}
