package supervisor

import (
	"math/rand/v2"
	"time"
)

// growthFloor is the base the backoff doubles from when Delay is below it, so
// that `delay = "0s"` restarts the first time at once but a crash loop still
// backs off instead of forking as fast as the machine can.
const growthFloor = 100 * time.Millisecond

// RestartPolicy says when and how fast an ended instance is started again.
type RestartPolicy struct {
	Policy       string // "always", "on-failure", "never"
	SuccessCodes []int
	Delay        time.Duration
	MaxDelay     time.Duration
	MinUptime    time.Duration
	Limit        int // more restarts than this within Window: give up; 0 = never
	Window       time.Duration
}

// Wants reports whether the policy restarts after exit. An instance stopped
// on request is never restarted.
func (p RestartPolicy) Wants(e Exit) bool {
	if e.Reason == ReasonStopped {
		return false
	}
	switch p.Policy {
	case "always":
		return true
	case "on-failure":
		return !e.Success(p.SuccessCodes)
	default:
		return false
	}
}

// Backoff decides how long to wait before a restart and when to give up.
// It is pure: time comes in as arguments and jitter from the injected
// source, so tests can walk a whole sequence.
type Backoff struct {
	rand     *rand.Rand
	attempt  int         // consecutive runs shorter than MinUptime
	restarts []time.Time // restart decisions within the window, oldest first
}

// NewBackoff returns a Backoff whose jitter comes from r.
func NewBackoff(r *rand.Rand) *Backoff {
	return &Backoff{rand: r}
}

// Next is called when a run that began at started ended at now and the
// policy wants a restart. It returns the delay before the restart, or
// giveUp when that restart would exceed Limit restarts within Window.
//
// The first restart after a run of at least MinUptime waits exactly Delay:
// a worker that crashes once after days of service comes back at once.
// Each further quick failure n waits a uniformly random time between Delay
// and min(MaxDelay, max(Delay, 100ms) * 2^n) ("full jitter").
func (b *Backoff) Next(p RestartPolicy, started, now time.Time) (delay time.Duration, giveUp bool) {
	if now.Sub(started) >= p.MinUptime {
		b.attempt = 0
	}
	if p.Limit > 0 {
		cut := 0
		for cut < len(b.restarts) && now.Sub(b.restarts[cut]) >= p.Window {
			cut++
		}
		b.restarts = append(b.restarts[:0], b.restarts[cut:]...)
		if len(b.restarts) >= p.Limit {
			return 0, true
		}
		b.restarts = append(b.restarts, now)
	}
	n := b.attempt
	b.attempt++
	if n == 0 {
		return p.Delay, false
	}
	ceil := capDelay(p, n)
	if ceil <= p.Delay {
		return p.Delay, false
	}
	return p.Delay + time.Duration(b.rand.Int64N(int64(ceil-p.Delay)+1)), false
}

// capDelay is min(MaxDelay, max(Delay, growthFloor) * 2^n) without overflow.
func capDelay(p RestartPolicy, n int) time.Duration {
	base := max(p.Delay, growthFloor)
	c := base
	for range n {
		if c >= p.MaxDelay/2 {
			return max(p.MaxDelay, p.Delay)
		}
		c *= 2
	}
	return min(c, max(p.MaxDelay, p.Delay))
}

// Reset forgets past failures: an operator's start or restart begins afresh.
func (b *Backoff) Reset() {
	b.attempt = 0
	b.restarts = b.restarts[:0]
}
