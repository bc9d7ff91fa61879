package cron

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Defaults for the zero values of Spec.
const (
	// DefaultStartingDeadline is how late a run may still start when Spec.StartingDeadline is 0. It covers a
	// restart of glmd (an upgrade, a crash restarted by systemd, a quick reboot), not a real outage: a nightly GPU
	// job that was missed by hours is recorded as missed rather than started at a surprising time, as cron and
	// systemd timers (Persistent=false) do; Kubernetes starts one catch-up run whatever its age (when fewer than
	// 100 were missed), which on a GPU fleet recovering from an outage is the surprise we avoid. Set
	// starting_deadline to catch up over longer downtimes.
	DefaultStartingDeadline = 5 * time.Minute
	// DefaultHistory is how many runs are kept when Spec.History is 0: a week of a daily job with room for retries.
	DefaultHistory = 10
	// MaxHistory bounds Spec.History, which keeps the history file small (it is rewritten on every change).
	MaxHistory = 1000
	// DefaultRetryDelay and DefaultRetryMaxDelay apply when Retry.Attempts > 0 and the delays are 0.
	DefaultRetryDelay    = 10 * time.Second
	DefaultRetryMaxDelay = 5 * time.Minute
)

// Concurrency says what a fire time does while a run of the same task is active (running, or waiting for a retry).
type Concurrency string

// The concurrency policies, as Kubernetes' CronJob concurrencyPolicy.
const (
	// Forbid skips the new run and records it as skipped ("" means Forbid: two copies of a GPU job would fight
	// over the same GPUs, and systemd timers skip likewise).
	Forbid Concurrency = "forbid"
	// Replace stops the active runs (reason replaced) and starts the new one once they have ended.
	Replace Concurrency = "replace"
	// Allow starts the new run alongside.
	Allow Concurrency = "allow"
)

// ParseConcurrency parses "forbid", "replace" or "allow"; "" is Forbid.
func ParseConcurrency(s string) (Concurrency, error) {
	switch c := Concurrency(s); c {
	case "":
		return Forbid, nil
	case Forbid, Replace, Allow:
		return c, nil
	}
	return "", &operatorError{
		msg:  fmt.Sprintf(`concurrency %q: want "forbid" (skip while a run is active), "replace" or "allow"`, s),
		kind: ErrInvalidSpec,
	}
}

// Retry says how a failed run is tried again. A run fails when it exits non-zero, is killed by a signal it did not
// get from us, or cannot be started. A run that timed out, was replaced or stopped is not retried: a hung job
// retried at once would hold its GPUs for another full timeout, and the next fire time is its natural retry. A
// start error wrapping ErrPermanent is not retried either.
type Retry struct {
	// Attempts is how many times a failed run is tried again (0: never), as Nomad's restart attempts and
	// Kubernetes' backoffLimit count: Attempts = 2 means at most 3 attempts.
	Attempts int
	// Delay is the wait before the first retry; retry n waits a uniformly random time between Delay and
	// min(MaxDelay, Delay * 2^(n-1)), the same "full jitter" as the supervisor's restart backoff.
	Delay    time.Duration
	MaxDelay time.Duration
}

// Spec is the schedule and the policies of one cron task. The config package decodes the task file into it;
// Validate checks what decoding cannot.
type Spec struct {
	Schedule    Schedule
	Concurrency Concurrency // "" is Forbid
	// StartingDeadline is how late a run may still start: a fire time missed by more (glmd was not running, the
	// host was suspended) is recorded as missed instead. Within it, one catch-up run starts for the latest missed
	// fire time, however many were missed. 0 is DefaultStartingDeadline.
	StartingDeadline time.Duration
	// Jitter delays each scheduled run by a random time in [0, Jitter), so a fleet does not start together.
	// Catch-up and manual runs start at once.
	Jitter time.Duration
	// Timeout ends an attempt that runs longer (reason timeout); 0: no limit. Each attempt gets the whole Timeout.
	Timeout time.Duration
	Retry   Retry
	// Suspend stops scheduled runs; manual runs, and retries of runs already started, still happen. Fire times
	// that pass while suspended are neither run nor recorded as missed.
	Suspend bool
	// History is how many runs the history keeps (0: DefaultHistory, at most MaxHistory).
	History int
}

// Validate reports the first value out of range, naming the task-file key.
func (s Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return &operatorError{msg: fmt.Sprintf(format, args...), kind: ErrInvalidSpec}
	}
	if s.Schedule.IsZero() {
		return bad("schedule is required for a cron task")
	}
	if _, err := ParseConcurrency(string(s.Concurrency)); err != nil {
		return err
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"starting_deadline", s.StartingDeadline}, {"jitter", s.Jitter}, {"timeout", s.Timeout},
		{"retry.delay", s.Retry.Delay}, {"retry.max_delay", s.Retry.MaxDelay},
	} {
		if d.v < 0 {
			return bad("%s %s: must not be negative", d.key, d.v)
		}
	}
	switch {
	case s.Retry.Attempts < 0:
		return bad("retry.attempts %d: must not be negative", s.Retry.Attempts)
	case s.Retry.MaxDelay > 0 && s.Retry.MaxDelay < s.Retry.Delay:
		return bad("retry.max_delay %s is less than retry.delay %s", s.Retry.MaxDelay, s.Retry.Delay)
	case s.History < 0 || s.History > MaxHistory:
		return bad("history %d: want 1 to %d runs (0 is %d)", s.History, MaxHistory, DefaultHistory)
	}
	// A jitter as long as the interval would delay each run past the next fire time, which would then count as
	// missed.
	if iv := s.Schedule.shortestInterval(); s.Jitter > 0 && iv > 0 && s.Jitter >= iv {
		return bad("jitter %s: must be shorter than the time between two runs of %q (%s)", s.Jitter, s.Schedule, iv)
	}
	return nil
}

// withDefaults fills the zero values.
func (s Spec) withDefaults() Spec {
	if s.Concurrency == "" {
		s.Concurrency = Forbid
	}
	if s.StartingDeadline == 0 {
		s.StartingDeadline = DefaultStartingDeadline
	}
	if s.History == 0 {
		s.History = DefaultHistory
	}
	if s.Retry.Delay == 0 {
		s.Retry.Delay = DefaultRetryDelay
	}
	if s.Retry.MaxDelay == 0 {
		s.Retry.MaxDelay = max(DefaultRetryMaxDelay, s.Retry.Delay)
	}
	return s
}

// RetryDelay returns the wait before retry n (1 for the second attempt), jitter drawn from r: uniform between
// Delay and min(MaxDelay, Delay * 2^(n-1)). Zero delays are replaced by the defaults first.
func (r Retry) RetryDelay(n int, rnd *rand.Rand) time.Duration {
	r = Spec{Retry: r}.withDefaults().Retry
	hi := r.Delay
	for i := 1; i < n && hi < r.MaxDelay; i++ {
		hi *= 2
	}
	hi = min(hi, r.MaxDelay)
	if hi <= r.Delay {
		return r.Delay
	}
	return r.Delay + time.Duration(rnd.Int64N(int64(hi-r.Delay)+1))
}
