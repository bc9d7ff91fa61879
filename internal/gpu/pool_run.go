package gpu

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Watch backoff: a broken event watch is rebuilt after 1s, doubling to a
// minute. A watch that has run watchSettle without failing works again:
// NVML fails at once when the event set cannot be built, and Wait returns
// every 5 s, so a real failure shows within that time.
const (
	watchBackoffMin = time.Second
	watchBackoffMax = time.Minute
	watchSettle     = 10 * time.Second
)

// Run watches GPU health until ctx ends, then returns nil: driver events
// (the watch is rebuilt with backoff when it breaks), a sample every
// SampleInterval, a health poll every PollInterval, the reset command,
// and event delivery to OnEvent. Call it once.
func (p *Pool) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { p.watchLoop(ctx) })

	sampleTick := time.NewTicker(p.opts.SampleInterval)
	defer sampleTick.Stop()
	pollTick := time.NewTicker(p.opts.PollInterval)
	defer pollTick.Stop()
	p.sample(ctx)
	p.poll(ctx, &wg)
	for {
		p.deliver()
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-sampleTick.C:
			p.sample(ctx)
		case <-pollTick.C:
			p.poll(ctx, &wg)
		case <-p.pollNow:
			p.sample(ctx)
			p.poll(ctx, &wg)
		}
	}
}

// deliver hands the queued events to OnEvent, outside mu.
func (p *Pool) deliver() {
	p.mu.Lock()
	evs := p.events
	p.events = nil
	p.mu.Unlock()
	if p.opts.OnEvent == nil {
		return
	}
	for _, ev := range evs {
		p.opts.OnEvent(ev)
	}
}

// watchLoop runs the inventory's Watch, applies its events, and rebuilds
// it with backoff when it breaks.
func (p *Pool) watchLoop(ctx context.Context) {
	backoff := watchBackoffMin
	for failures := 0; ; {
		settled, err := p.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrNotSupported) {
			p.log.Info("gpu inventory has no driver events, health is polled only")
			return
		}
		if settled {
			backoff, failures = watchBackoffMin, 0
		}
		if err == nil {
			err = errors.New("watch ended")
		}
		failures++
		if lost := LostGPUs(err); len(lost) > 0 || errors.Is(err, ErrGPULost) {
			// A lost GPU is not a broken watch: mark it, rebuild the watch.
			p.mu.Lock()
			for _, u := range lost {
				p.handleEvent(XIDEvent{Time: p.now(), UUID: u, Kind: EventLost})
			}
			if len(lost) == 0 {
				p.handleEvent(XIDEvent{Time: p.now(), Kind: EventLost})
			}
			p.mu.Unlock()
		} else {
			p.watchBroken(err, failures)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// watchOnce runs one Watch until it fails or ctx ends. settled reports
// whether it ran watchSettle first (and so counted as working). When ctx
// ends it returns at once: a Watch that ignores its context (NVML stuck
// on a lost GPU) is left behind rather than holding up glmd's exit.
func (p *Pool) watchOnce(ctx context.Context) (settled bool, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := make(chan XIDEvent)
	done := make(chan error, 1)
	go func() { done <- p.inv.Watch(wctx, in) }()
	settle := time.NewTimer(watchSettle)
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return settled, nil
		case err := <-done:
			return settled, err
		case <-settle.C:
			settled = true
			p.watchWorks()
		case ev := <-in:
			if ev.Kind == EventWatchFail {
				// The inventory says its watch broke without returning:
				// end it, so that it is rebuilt like a returned error.
				cancel()
				for {
					select {
					case <-ctx.Done():
						return settled, nil
					case <-in:
					case <-done:
						return settled, errors.New("the inventory reported watch_failed")
					}
				}
			}
			p.mu.Lock()
			p.handleEvent(ev)
			p.mu.Unlock()
		}
	}
}

// watchBroken marks every GPU's health unknown and stops allocations. The
// first failure and every tenth are logged.
func (p *Pool) watchBroken(err error, failures int) {
	if failures == 1 || failures%10 == 0 {
		p.log.Warn("gpu driver event watch failed, retrying", "err", err, "failures", failures)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.watchOK {
		p.watchErr = err.Error()
		return
	}
	p.watchOK, p.watchErr = false, err.Error()
	p.emit(nil, Event{Kind: KindWatchFailed, Message: fmt.Sprintf("driver event watch failed: %v; GPU health unknown, no new GPU allocations until it works again", err)})
}

// watchWorks ends the unknown state after a watch settled.
func (p *Pool) watchWorks() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watchOK {
		return
	}
	p.watchOK, p.watchErr = true, ""
	p.emit(nil, Event{Kind: KindHealthy, Message: "driver event watch works again: GPU health known, allocations resume"})
}

// sample reads every GPU's changing facts and applies the sample rules.
func (p *Pool) sample(ctx context.Context) {
	p.mu.Lock()
	p.seq++
	seq := p.seq
	p.mu.Unlock()
	samples, err := callTimeout(ctx, p.opts.CallTimeout, "sample", p.inv.Sample)
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, ErrNotSupported) {
		p.mu.Lock()
		p.noSamples = true
		p.mu.Unlock()
		return
	}
	lost := LostGPUs(err)
	if err != nil && len(lost) == 0 {
		// The first failure and every tenth: a broken driver fails every time.
		if p.sampleFails++; p.sampleFails == 1 || p.sampleFails%10 == 0 {
			p.log.Warn("gpu sample failed, metrics and memory checks use the last sample", "err", err, "failures", p.sampleFails)
		}
	} else {
		p.sampleFails = 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	present := map[string]bool{}
	for _, s := range samples {
		if g, found := p.byUUID[s.UUID]; found {
			present[s.UUID] = true
			p.applySample(g, s, seq)
		}
	}
	for _, u := range lost {
		if g, found := p.byUUID[u]; found {
			p.markLost(g, 0, "GPU is lost (fallen off the bus)")
		}
	}
	if p.lostCheck && (err == nil || len(lost) > 0) {
		p.lostCheck = false
		for _, g := range p.gpus {
			if !present[g.dev.UUID] {
				p.markLost(g, 0, "GPU is lost (missing after a lost-GPU event)")
			}
		}
	}
}

// poll ends restart_app after its window, and moves GPUs out of the pool
// towards re-admission: processes, reset command, checks.
func (p *Pool) poll(ctx context.Context, wg *sync.WaitGroup) {
	p.mu.Lock()
	now := p.now()
	var waiting []string
	for _, g := range p.gpus {
		switch g.health {
		case HealthRestartApp:
			if len(g.appXIDs) == 0 || now.Sub(g.appXIDs[len(g.appXIDs)-1]) >= escalateWindow {
				p.markHealthy(g, fmt.Sprintf("no restart_app XID for %v", escalateWindow))
			}
		case HealthUnhealthy, HealthResetPending:
			if !g.resetting {
				waiting = append(waiting, g.dev.UUID)
			}
		}
	}
	p.mu.Unlock()

	for _, u := range waiting {
		procs, err := p.Processes(ctx, u)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrNotSupported) {
			procs, err = nil, nil // a static inventory cannot tell: only the quiet period counts
		}
		if err != nil {
			p.log.Warn("gpu processes unknown, keeping it out of the pool", "gpu", u, "err", err)
			continue
		}
		p.mu.Lock()
		g := p.byUUID[u]
		if (g.health == HealthUnhealthy || g.health == HealthResetPending) && !g.resetting && len(procs) == 0 {
			if args := p.resetArgs(g); args != nil && g.needReset && g.resetOK.IsZero() {
				if g.resetTries < maxResetTries {
					g.resetting = true
					g.resetTries++
					fault := g.faults
					wg.Go(func() { p.reset(ctx, u, args, fault) })
				}
			} else if why, ok := p.readmissible(g, now); ok {
				p.markHealthy(g, why)
			}
		}
		p.mu.Unlock()
	}
}

// readmissible applies the re-admission rule (see pool_health.go). Must
// hold mu.
func (p *Pool) readmissible(g *gpuState, now time.Time) (string, bool) {
	if !p.noSamples {
		// A sample started after the fault and after the reset.
		if g.sampleSeq <= max(g.faultSeq, g.resetSeq) || g.sample.RemapPending || g.sample.RemapFailed {
			return "", false
		}
	}
	if len(p.opts.ResetCommand) > 0 && g.needReset {
		return "reset command succeeded, no remap pending", !g.resetOK.IsZero()
	}
	if p.opts.RecoverAfter < 0 || now.Sub(g.since) < p.opts.RecoverAfter {
		return "", false
	}
	return fmt.Sprintf("quiet for %v without compute processes, no remap pending", p.opts.RecoverAfter), true
}

// resetArgs expands ResetCommand for g; nil when there is none. Must hold
// mu.
func (p *Pool) resetArgs(g *gpuState) []string {
	if len(p.opts.ResetCommand) == 0 {
		return nil
	}
	r := strings.NewReplacer("{uuid}", g.dev.UUID, "{index}", strconv.Itoa(g.dev.Index), "{pci_bus_id}", g.dev.PCIBusID)
	args := make([]string, len(p.opts.ResetCommand))
	templated := false
	for i, a := range p.opts.ResetCommand {
		args[i] = r.Replace(a)
		templated = templated || args[i] != a
	}
	if !templated {
		args = append(args, g.dev.UUID)
	}
	return args
}

// reset runs the reset command for the GPU and records how it went. A
// success counts only if no new fault arrived meanwhile (fault is the
// fault it was started for).
func (p *Pool) reset(ctx context.Context, uuid string, args []string, fault uint64) {
	ctx, cancel := context.WithTimeout(ctx, resetTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.byUUID[uuid]
	g.resetting = false
	tail := strings.TrimSpace(string(out))
	if len(tail) > 200 {
		tail = "..." + tail[len(tail)-200:]
	}
	if err != nil {
		msg := fmt.Sprintf("reset command %q failed (try %d of %d): %v", strings.Join(args, " "), g.resetTries, maxResetTries, err)
		if tail != "" {
			msg += ": " + tail
		}
		if g.resetTries >= maxResetTries {
			msg += "; giving up: reset the GPU by hand, then restart glmd"
		}
		p.emit(g, Event{Kind: KindReset, Message: msg})
		return
	}
	msg := fmt.Sprintf("reset command %q succeeded; back in the pool once a sample confirms it", strings.Join(args, " "))
	if g.faults == fault {
		g.resetOK, g.resetSeq = p.now(), p.seq
	} else {
		msg = fmt.Sprintf("reset command %q succeeded, but the GPU failed again meanwhile", strings.Join(args, " "))
	}
	p.emit(g, Event{Kind: KindReset, Message: msg})
	p.poke()
}
