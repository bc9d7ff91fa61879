package gpu

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// The health rules (notes section 7), applied under mu:
//
//   - ignore (and 45): counted, logged.
//   - restart_app: the GPU stays allocatable as restart_app; a "xid" event
//     names the owners, whose instances the agent restarts if they failed.
//     The third within 10 minutes escalates to a reset. 10 minutes after
//     the last one the GPU is healthy again.
//   - reset_gpu (48, 74, 144-150, unknown XIDs, uncorrected ECC growth,
//     row remap failure): unhealthy, out of the pool; an "unhealthy" event
//     names the owners, all of which the agent stops.
//   - row remap pending: reset_pending, out of the pool; owners keep
//     running (event "reset_pending").
//   - reboot (79, GPU lost): lost until a new Pool; event "lost".
//
// Re-admission (poll): an unhealthy or reset_pending GPU returns to the
// pool, without a glmd restart, once a sample taken after the last fault
// (and after the reset) shows it present without remap pending or failed,
// no compute process is left on it, and either the ResetCommand succeeded
// after the fault or, without a ResetCommand, RecoverAfter passed since
// the fault. Every new fault restarts that clock.

// handleEvent applies one driver event. Must hold mu.
func (p *Pool) handleEvent(ev XIDEvent) {
	var targets []*gpuState
	if ev.UUID == "" {
		targets = p.gpus
	} else if g, found := p.byUUID[ev.UUID]; found {
		targets = []*gpuState{g}
	} else {
		p.log.Warn("driver event for an unknown gpu", "gpu", ev.UUID, "kind", ev.Kind, "xid", ev.XID)
		return
	}
	switch ev.Kind {
	case EventXID, EventDoubleBit:
		xid := ev.XID
		if ev.Kind == EventDoubleBit && xid == 0 {
			xid = 48 // a DBE event is what XID 48 reports
		}
		for _, g := range targets {
			p.onXID(g, xid)
		}
	case EventLost:
		if ev.UUID == "" {
			// The driver could not say which GPU: the next sample can.
			p.lostCheck = true
			p.poke()
			return
		}
		p.markLost(targets[0], 0, "GPU is lost (fallen off the bus)")
	default:
		p.log.Warn("unknown driver event ignored", "kind", ev.Kind, "gpu", ev.UUID, "xid", ev.XID)
	}
}

// onXID applies one XID to one GPU. Must hold mu.
func (p *Pool) onXID(g *gpuState, xid int) {
	act := Classify(xid, p.opts.Overrides)
	g.xids[XIDCount{XID: xid, Action: act}]++
	g.lastXID = xid
	reason := describeXID(xid)
	switch act {
	case ActionIgnore:
		p.log.Info("gpu xid ignored", "gpu", g.dev.UUID, "xid", xid, "reason", reason)
	case ActionRestartApp:
		now := p.now()
		g.appXIDs = slices.DeleteFunc(g.appXIDs, func(t time.Time) bool { return now.Sub(t) >= escalateWindow })
		g.appXIDs = append(g.appXIDs, now)
		switch {
		case g.health != HealthHealthy && g.health != HealthRestartApp:
			// Already out of the pool: one more fault restarts its quiet period.
			g.since, g.resetOK, g.faultSeq = now, time.Time{}, p.seq
			g.faults++
			p.log.Info("gpu xid on a gpu out of the pool", "gpu", g.dev.UUID, "xid", xid, "health", g.health)
		case len(g.appXIDs) >= escalateCount:
			p.markBad(g, HealthUnhealthy, xid, ActionResetGPU,
				fmt.Sprintf("%s, %d restart_app XIDs within %v", reason, len(g.appXIDs), escalateWindow))
		default:
			if g.health != HealthRestartApp {
				g.health, g.since = HealthRestartApp, now
			}
			g.reason = reason
			p.emit(g, Event{Kind: KindXID, XID: xid, Action: act, Message: reason + ": restarting the instances on it if they failed"})
		}
	case ActionResetGPU:
		p.markBad(g, HealthUnhealthy, xid, act, reason)
	case ActionReboot:
		p.markLost(g, xid, reason)
	}
}

// markBad takes the GPU out of the pool (unhealthy or reset_pending),
// or restarts the quiet period of one already out. Must hold mu.
func (p *Pool) markBad(g *gpuState, h Health, xid int, act Action, reason string) {
	now := p.now()
	g.since, g.resetOK, g.resetTries, g.faultSeq = now, time.Time{}, 0, p.seq
	g.faults++
	g.needReset = true
	if g.health == HealthLost || (g.health == HealthUnhealthy && h == HealthResetPending) {
		return // already worse
	}
	if g.health == h {
		g.reason = reason
		p.log.Warn("gpu fault on a gpu out of the pool", "gpu", g.dev.UUID, "health", h, "reason", reason)
		return
	}
	g.health, g.reason = h, reason
	p.alloc.SetHealthy(g.dev.UUID, false)
	ev := Event{Kind: KindUnhealthy, XID: xid, Action: act, Message: reason + ": out of the pool until reset"}
	if h == HealthResetPending {
		ev.Kind = KindResetPending
		ev.Message = reason + ": out of the pool, reset once its instances are gone"
	}
	p.emit(g, ev)
}

// markLost marks the GPU lost for good. Must hold mu.
func (p *Pool) markLost(g *gpuState, xid int, reason string) {
	if g.health == HealthLost {
		return
	}
	g.health, g.reason, g.since = HealthLost, reason, p.now()
	p.alloc.SetHealthy(g.dev.UUID, false)
	p.emit(g, Event{Kind: KindLost, XID: xid, Action: ActionReboot, Message: reason + ": node reboot required"})
}

// markHealthy returns the GPU to the pool. Must hold mu.
func (p *Pool) markHealthy(g *gpuState, why string) {
	from := g.health
	g.health, g.reason, g.since = HealthHealthy, "", p.now()
	g.needReset, g.resetOK, g.resetTries, g.appXIDs = false, time.Time{}, 0, nil
	p.alloc.SetHealthy(g.dev.UUID, true)
	p.emit(g, Event{Kind: KindHealthy, Message: fmt.Sprintf("healthy again (was %s): %s", from, why)})
}

// applySample records a sample and applies its health rules. Must hold mu.
func (p *Pool) applySample(g *gpuState, s Sample, seq uint64) {
	prevECC := g.eccBase
	g.sample, g.sampledAt, g.sampleSeq = s, p.now(), seq
	p.alloc.SetUsed(g.dev.UUID, s.MemoryUsed)
	if s.ECCUncorrected >= 0 {
		g.eccBase = s.ECCUncorrected
	}
	if g.health == HealthLost {
		return
	}
	switch {
	case s.RemapFailed:
		if g.health != HealthUnhealthy || g.reason != reasonRemapFailed {
			p.markBad(g, HealthUnhealthy, 0, ActionResetGPU, reasonRemapFailed)
		}
	case prevECC >= 0 && s.ECCUncorrected > prevECC:
		p.markBad(g, HealthUnhealthy, 0, ActionResetGPU,
			fmt.Sprintf("volatile uncorrected ECC errors grew from %d to %d", prevECC, s.ECCUncorrected))
	case s.RemapPending && (g.health == HealthHealthy || g.health == HealthRestartApp):
		p.markBad(g, HealthResetPending, 0, ActionResetGPU, "row remapping pending")
	}
}

// reasonRemapFailed needs a new GPU, not a reset; the rule "no remap
// failed" keeps the GPU out until it is replaced.
const reasonRemapFailed = "row remapping failed: replace the GPU"

// emit queues an event about g for Run to deliver, and logs it. Must hold
// mu.
func (p *Pool) emit(g *gpuState, ev Event) {
	ev.Time = p.now()
	ev.Index = -1
	if g != nil {
		ev.UUID, ev.Index = g.dev.UUID, g.dev.Index
		ev.Owners = p.alloc.Holders(g.dev.UUID)
		ev.Message = fmt.Sprintf("GPU %d (%s): %s", g.dev.Index, g.dev.UUID, ev.Message)
		if len(ev.Owners) > 0 {
			switch ev.Kind {
			case KindUnhealthy, KindLost:
				ev.Message += "; stopping " + joinOwners(ev.Owners)
			case KindXID, KindResetPending, KindStray:
				ev.Message += "; held by " + joinOwners(ev.Owners)
			}
		}
	}
	level := slog.LevelInfo
	if ev.Kind != KindHealthy && ev.Kind != KindXID {
		level = slog.LevelWarn
	}
	p.log.Log(context.Background(), level, "gpu event", "kind", ev.Kind, "gpu", ev.UUID, "xid", ev.XID, "msg", ev.Message)
	if len(p.events) >= maxQueuedEvents {
		p.log.Warn("gpu event dropped, Run is not delivering", "kind", p.events[0].Kind, "gpu", p.events[0].UUID)
		p.events = p.events[1:]
	}
	p.events = append(p.events, ev)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// poke asks Run for a sample and a poll now.
func (p *Pool) poke() {
	select {
	case p.pollNow <- struct{}{}:
	default:
	}
}

// describeXID writes "xid 79 (fallen off the bus)".
func describeXID(xid int) string {
	if name := XIDName(xid); name != "" {
		return fmt.Sprintf("xid %d (%s)", xid, name)
	}
	return fmt.Sprintf("xid %d", xid)
}
