package discovery

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// heartbeat passes the node's TTL check each time the agent's main loop calls Heartbeat. It has its own goroutine
// so that a slow registration never delays the check, and it only ever pushes after a Heartbeat call: a main loop
// that stops calling lets the check turn critical, which invalidates the node's session.
type heartbeat struct {
	api      agentAPI
	checkID  string
	interval time.Duration // how often the main loop should beat
	timeout  time.Duration
	log      *slog.Logger
	ready    func() bool   // the node service is registered
	output   func() string // the check's output: the node's role
	recovery func()        // Consul answered again, or lost the check: resync the registrations
	passed   func()        // the check passes again (first push, or first after failures)

	beat chan struct{} // cap 1

	// mu guards the fields below it.
	mu       sync.Mutex
	lastBeat time.Time // last Heartbeat call
	lastOK   time.Time // last successful push
	failures int
}

func newHeartbeat(c Config, a agentAPI, log *slog.Logger, checkID string) *heartbeat {
	return &heartbeat{
		api:      a,
		checkID:  checkID,
		interval: c.heartbeatInterval(),
		// A push that takes half the TTL is as good as lost: the next beat tries again.
		timeout: c.CheckTTL / 2,
		log:     log,
		beat:    make(chan struct{}, 1),
	}
}

// beat records a Heartbeat call and asks for one push; beats that arrive while one is pending collapse into it.
func (h *heartbeat) beatNow() {
	h.mu.Lock()
	h.lastBeat = time.Now()
	h.mu.Unlock()
	h.poke()
}

// poke asks for a push, which happens only if the main loop beat within the last two heartbeat intervals: the
// registry pokes right after registering the node, so that the election need not wait for the next beat.
func (h *heartbeat) poke() {
	select {
	case h.beat <- struct{}{}:
	default:
	}
}

// healthy reports whether the check was passed within the last ttl: a session bound to it can be created and
// will not be invalidated right away.
func (h *heartbeat) healthy(ttl time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failures == 0 && !h.lastOK.IsZero() && time.Since(h.lastOK) < ttl
}

func (h *heartbeat) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.beat:
		}
		h.mu.Lock()
		fresh := time.Since(h.lastBeat) < 2*h.interval
		h.mu.Unlock()
		if !fresh || !h.ready() {
			continue // not for a stuck main loop; and the registry registers the check passing
		}
		rctx, cancel := context.WithTimeout(ctx, h.timeout)
		err := h.api.UpdateTTLOpts(h.checkID, h.output(), statusPassing, query(rctx))
		cancel()
		if ctx.Err() != nil {
			return
		}
		h.mu.Lock()
		failures, first := h.failures, h.lastOK.IsZero()
		if err == nil {
			h.lastOK, h.failures = time.Now(), 0
		} else {
			h.failures++
		}
		h.mu.Unlock()
		switch {
		case err != nil && checkMissing(err):
			h.log.Warn("the node's consul check is gone; registering again", "check", h.checkID)
			h.recovery()
		case err != nil && (failures == 0 || (failures+1)%20 == 0):
			h.log.Warn("passing the node's consul check failed", "check", h.checkID, "err", err, "failures", failures+1)
		case err == nil && failures > 0:
			h.log.Info("consul answers again", "check", h.checkID, "failures", failures)
			h.recovery()
		}
		if err == nil && (first || failures > 0) {
			h.passed()
		}
	}
}
