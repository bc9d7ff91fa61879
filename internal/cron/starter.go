package cron

import (
	"context"
	"time"
)

// Trigger says why a run started.
type Trigger string

// The triggers, as recorded in the history.
const (
	TriggerSchedule Trigger = "schedule" // a fire time of the schedule
	TriggerCatchUp  Trigger = "catch-up" // a fire time missed (glmd was down, the host slept) but within the deadline
	TriggerManual   Trigger = "manual"   // RunNow (glmctl)
	TriggerRetry    Trigger = "retry"    // attempt 2, 3, ... of a failed run
)

// Run identifies one attempt of a run of a cron task. All attempts of a run share its ID and Scheduled time.
type Run struct {
	Task string `json:"task"`
	// ID numbers the runs of the task from 1, kept across restarts of glmd. Skipped and missed fire times take a
	// number too, so the IDs in the history show every decision.
	ID        uint64    `json:"id"`
	Attempt   int       `json:"attempt"`   // 1 for the first attempt, 2 for the first retry, ...
	Trigger   Trigger   `json:"trigger"`   // of this attempt: a retry says TriggerRetry
	Scheduled time.Time `json:"scheduled"` // the fire time the run belongs to; for a manual run, when it was asked for
}

// Starter starts the runs of a cron task. The agent implements it: it launches the task's command in its own
// cgroup with log files of its own for this run (named from Task, ID and Attempt, so attempts never share files).
type Starter interface {
	// StartRun starts one attempt and returns once its process runs (or failed to start). ctx bounds the start
	// only, never the run: when ctx ends because glmd is stopping, the run keeps going. An error that no retry can
	// fix wraps ErrPermanent.
	StartRun(ctx context.Context, r Run) (Handle, error)
}

// Handle is a started attempt.
type Handle interface {
	// Logs returns the paths of the attempt's log files.
	Logs() Logs
	// Done returns a channel that receives the Result once every process of the attempt is gone. A channel
	// closed without a Result counts as a failed attempt.
	Done() <-chan Result
	// Stop ends the attempt: the agent kills its whole cgroup (stop signal, grace, SIGKILL). It must not block,
	// may be called more than once, and Done still delivers the Result. reason is "timeout", "replaced", or what
	// Kill was given, for the agent's logs.
	Stop(reason string)
}

// Logs are the paths of an attempt's log files.
type Logs struct {
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
}

// Result is how an attempt ended. It succeeded when ExitCode is 0 and Signal is "" (and it was not stopped by the
// Job); anything else is a failure.
type Result struct {
	ExitCode int    // as the supervisor reports it: 128+n when killed by signal n
	Signal   string // "SIGKILL" when killed by a signal; "" when it exited by itself
	Message  string // what the agent adds, e.g. "oom_killed"
}

func (r Result) success() bool { return r.ExitCode == 0 && r.Signal == "" }
