package health

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/open-autoglm/glmd/supervisor"
)

// Deps are what a Monitor needs from the agent.
type Deps struct {
	// Exec runs an exec probe to completion within ctx and returns its exit
	// code and the start of its combined output (a few KiB at most). The
	// agent runs it through its process launcher, as the task's user, in a
	// clean environment; this package never uses os/exec, whose Wait would
	// race the agent's reaper. Exec must return soon after ctx ends (kill
	// the command, stop reading its output), or the check stalls. Required
	// for exec checks only.
	Exec func(ctx context.Context, argv []string) (code int, output []byte, err error)
	// Transport carries the HTTP probes; share one among all monitors of the
	// agent (see NewTransport). Probes call RoundTrip directly, so redirects
	// are never followed, and concurrent probes may share the request's
	// URL and headers, which RoundTrip must only read. nil: a transport of
	// the package, made by NewTransport. gRPC probes always use the
	// package's own h2c transport.
	Transport http.RoundTripper
	// Log gets a debug line per failed probe and per verdict; the runner
	// logs what it does with a verdict. nil: nothing is logged.
	Log *slog.Logger
}

// Monitor probes one instance: it implements supervisor.Health, and keeps
// probe statistics over every process of the instance it watched.
type Monitor struct {
	checks  []Check
	probers []prober // by check
	log     *slog.Logger

	// mu guards stats; it is never held while probing or sending.
	mu    sync.Mutex
	stats []*probeStats // by check
}

var _ supervisor.Health = (*Monitor)(nil)

// NewMonitor returns a monitor of checks, which must pass Validate (at most
// one check per role, known types, thresholds of at least 1, ...); exec
// checks need deps.Exec.
func NewMonitor(checks []Check, deps Deps) (*Monitor, error) {
	if err := Validate(checks); err != nil {
		return nil, err
	}
	httpT, grpcT := transports()
	rt := deps.Transport
	if rt == nil {
		rt = httpT
	}
	m := &Monitor{checks: slices.Clone(checks), log: deps.Log}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	for i := range m.checks {
		c := &m.checks[i]
		var p prober
		switch c.Type {
		case TypeHTTP:
			hp, err := newHTTPProbe(c.HTTP, rt)
			if err != nil {
				return nil, err
			}
			p = hp
		case TypeTCP:
			p = &tcpProbe{address: c.TCP.Address}
		case TypeExec:
			if deps.Exec == nil {
				return nil, errors.New("health: exec check without an exec function: the agent must set Deps.Exec")
			}
			p = newExecProbe(c.Exec, deps.Exec)
		case TypeGRPC:
			p = newGRPCProbe(c.GRPC, grpcT)
		}
		m.probers = append(m.probers, p)
		m.stats = append(m.stats, newProbeStats(*c))
	}
	return m, nil
}

// Watch probes the process pid, started now, until ctx ends. It sends the
// first verdict at once (ready without startup and readiness checks, else
// not ready), then one whenever readiness changes, and the unhealthy
// verdict at most once, after which it stops probing. The channel is closed
// once ctx ended and every probe returned.
func (m *Monitor) Watch(ctx context.Context, pid int) <-chan supervisor.Verdict {
	out := make(chan supervisor.Verdict, 1)
	start := time.Now()
	go m.watch(ctx, pid, start, out)
	return out
}

// watch is the probing of one process. Probes record their results
// themselves, under mu, and wake the loop only when there is news (a verdict,
// or checks to start or stop): waking another goroutine for every probe would
// cost more CPU than the probe.
type watch struct {
	m     *Monitor
	log   *slog.Logger
	start time.Time
	wake  chan struct{} // cap 1: news for the loop

	// mu guards tr and pending; it is never held while probing or sending.
	mu      sync.Mutex
	tr      *Tracker
	pending []supervisor.Verdict // for the loop to send, in order
}

// watch runs the loop of one process: it sends the verdicts and starts and
// stops the checks as the tracker's gating says.
func (m *Monitor) watch(ctx context.Context, pid int, start time.Time, out chan<- supervisor.Verdict) {
	defer close(out)
	w := &watch{
		m:     m,
		log:   m.log.With("pid", pid),
		start: start,
		wake:  make(chan struct{}, 1),
		tr:    NewTracker(m.checks, start),
	}
	m.mu.Lock()
	for _, s := range m.stats {
		s.failures = 0
	}
	m.mu.Unlock()

	cancels := make([]context.CancelFunc, len(m.checks)) // of running checks
	started := make([]bool, len(m.checks))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() {
		for _, cancel := range cancels {
			if cancel != nil {
				cancel()
			}
		}
	}()

	out <- w.tr.Verdict() // the buffer holds it
	probing := make([]bool, len(m.checks))
	for {
		w.mu.Lock()
		verdicts := w.pending
		w.pending = nil
		done := w.tr.Done()
		for i, c := range m.checks {
			probing[i] = w.tr.Probing(c.Role)
		}
		w.mu.Unlock()

		now := time.Now()
		for i, c := range m.checks {
			switch {
			case probing[i] && !started[i]:
				started[i] = true
				first := start.Add(c.InitialDelay)
				if first.Before(now) {
					first = now
				}
				cctx, cancel := context.WithCancel(ctx)
				cancels[i] = cancel
				wg.Go(func() { w.probe(cctx, i, first) })
			case !probing[i] && cancels[i] != nil:
				cancels[i]()
				cancels[i] = nil
			}
		}
		for _, v := range verdicts {
			w.log.Debug("health verdict", "ready", v.Ready, "unhealthy", v.Unhealthy, "message", v.Message)
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
		if done {
			// Unhealthy: the runner stops the process and ends ctx; every
			// check was stopped above.
			<-ctx.Done()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
	}
}

// observe records the result r of check i and wakes the loop if the tracker
// has news.
func (w *watch) observe(i int, r Result) {
	role := w.m.checks[i].Role
	w.mu.Lock()
	gates := w.gates()
	v, send := w.tr.Observe(time.Now(), role, r)
	if send {
		w.pending = append(w.pending, v)
	}
	news := send || w.gates() != gates
	failures := w.tr.ConsecutiveFailures(role)
	w.mu.Unlock()

	w.m.mu.Lock()
	w.m.stats[i].add(r, failures)
	w.m.mu.Unlock()
	if !r.OK() {
		w.log.Debug("health probe failed", "role", role, "outcome", r.Outcome, "result", r.Message, "failures", failures)
	}
	if news {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// gates says which roles the tracker wants probed, as a bit set. Call with
// w.mu held.
func (w *watch) gates() (g uint8) {
	for bit, role := range []string{RoleStartup, RoleLiveness, RoleReadiness} {
		if w.tr.Probing(role) {
			g |= 1 << bit
		}
	}
	return g
}

// probe runs check i from first on, Interval after the end of each probe,
// until ctx ends.
func (w *watch) probe(ctx context.Context, i int, first time.Time) {
	c := &w.m.checks[i]
	timer := time.NewTimer(time.Until(onGrid(first)))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		r := runProbe(ctx, w.m.probers[i], c.Timeout)
		end := time.Now()
		if ctx.Err() != nil {
			return
		}
		w.observe(i, r)
		timer.Reset(time.Until(onGrid(end.Add(c.Interval))))
	}
}

// Stats returns what each check did so far, in the order of the checks.
func (m *Monitor) Stats() []ProbeStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := make([]ProbeStats, len(m.stats))
	for i, s := range m.stats {
		ps[i] = s.snapshot()
	}
	return ps
}

// probeGrid is the granularity of probe start times. Probes spread evenly
// over time wake an idle thread each, and for a keep-alive loopback request
// that wake-up costs more CPU than the request; rounding start times up to
// the grid lets one wake-up start every probe due within it.
const probeGrid = 20 * time.Millisecond

// onGrid rounds t up to the next multiple of probeGrid.
func onGrid(t time.Time) time.Time {
	if r := t.Truncate(probeGrid); !r.Equal(t) {
		return r.Add(probeGrid)
	}
	return t
}
