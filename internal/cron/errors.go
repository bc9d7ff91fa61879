package cron

import "errors"

// The errors of this package, for errors.Is. The messages that wrap them are written for the operator.
var (
	// ErrInvalidSchedule: the schedule expression does not parse, or can never fire.
	ErrInvalidSchedule = errors.New("cron: invalid schedule")
	// ErrUnknownZone: the time zone is not in the IANA database of this machine.
	ErrUnknownZone = errors.New("cron: unknown time zone")
	// ErrInvalidSpec: a Spec value is out of range.
	ErrInvalidSpec = errors.New("cron: invalid job spec")
	// ErrRunActive: RunNow under concurrency forbid while a run is active.
	ErrRunActive = errors.New("cron: a run is active")
	// ErrNotRunning: the Job's Run loop is not running, so it cannot start or stop runs.
	ErrNotRunning = errors.New("cron: job is not running")
	// ErrPermanent marks a StartRun error that no retry can fix (a missing binary, an unknown user): the Starter
	// wraps it (fmt.Errorf("%w: %w", cron.ErrPermanent, err)) and the run is recorded as failed without retries.
	ErrPermanent = errors.New("cron: permanent start failure")
)

// operatorError is an error whose message is written for the operator as is (the config loader prefixes the file
// and key), while errors.Is still finds the sentinel kind.
type operatorError struct {
	msg  string
	kind error
}

func (e *operatorError) Error() string { return e.msg }
func (e *operatorError) Unwrap() error { return e.kind }
