// Package crontest holds a fake cron.Clock for tests of the cron package and of the agent.
package crontest

import (
	"slices"
	"sync"
	"time"

	"github.com/open-autoglm/glmd/internal/cron"
)

// Clock is a cron.Clock that stands still until the test moves it with Advance or Set; timers fire (in deadline
// order) when the clock passes their deadline. It is safe for concurrent use. Its channels are buffered, so a
// timer fires even when nobody reads yet, as a *time.Timer does since Go 1.23.
type Clock struct {
	mu     sync.Mutex // guards the fields below
	now    time.Time
	timers []*timer // pending, in creation order
	added  chan struct{}
}

// NewClock returns a Clock that reads now.
func NewClock(now time.Time) *Clock {
	return &Clock{now: now, added: make(chan struct{}, 1)}
}

var _ cron.Clock = (*Clock)(nil)

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires once the clock reaches Now()+d; at once when d <= 0.
func (c *Clock) NewTimer(d time.Duration) cron.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	select {
	case c.added <- struct{}{}:
	default:
	}
	return t
}

// Advance moves the clock forward by d and fires the timers whose deadline it reaches.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.setLocked(c.now.Add(d))
	c.mu.Unlock()
}

// Set moves the clock to t and fires the timers whose deadline it reaches. t may lie in the past, as when a
// host's clock is stepped back: then nothing fires.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.setLocked(t)
	c.mu.Unlock()
}

func (c *Clock) setLocked(t time.Time) {
	c.now = t
	slices.SortStableFunc(c.timers, func(a, b *timer) int { return a.at.Compare(b.at) })
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(t) {
			kept = append(kept, tm)
			continue
		}
		tm.ch <- t // cap 1 and removed from the list once sent: never blocks
	}
	clear(c.timers[len(kept):])
	c.timers = kept
}

// Timers returns how many timers are pending.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextDeadline returns the earliest deadline of a pending timer, and false when none is pending. A test of code
// that sleeps until some instant can Set the clock to it.
func (c *Clock) NextDeadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	at := c.timers[0].at
	for _, t := range c.timers[1:] {
		if t.at.Before(at) {
			at = t.at
		}
	}
	return at, true
}

// TimerAdded returns a channel that receives (coalesced) when a timer is created: a test that is not inside a
// synctest bubble can wait on it for the code under test to go to sleep.
func (c *Clock) TimerAdded() <-chan struct{} { return c.added }

type timer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}
