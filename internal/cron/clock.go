package cron

import "time"

// Clock is where a Job reads the time and sets its timers. Cron cares about wall-clock meaning (time zones, DST),
// so tests need to put the clock at a chosen instant, e.g. 01:59 on a DST day in America/New_York: crontest.Clock
// does that. RealClock is the one glmd uses.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock, as *time.Timer.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was still pending.
	Stop() bool
}

// RealClock returns the Clock of the system: time.Now and time.NewTimer.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
