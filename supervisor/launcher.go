package supervisor

import (
	"context"
	"errors"
	"os"
	"syscall"
)

// Sentinel errors of the supervisor.
var (
	// ErrPermanent marks a start error that retrying cannot fix (missing
	// binary, unknown user, permission denied): the instance fails at once.
	ErrPermanent = errors.New("supervisor: permanent start error")
	// ErrUnsupported is returned by the OS launcher where glmd cannot run workers.
	ErrUnsupported = errors.New("supervisor: unsupported platform")
	// ErrStopped is returned by Restart when a stop overtook it.
	ErrStopped = errors.New("supervisor: instance was stopped")
)

// permanentError wraps an error so that errors.Is(err, ErrPermanent) holds.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() []error {
	return []error{e.err, ErrPermanent}
}

// Permanent marks err as a start error that retrying cannot fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// Command is what one start of an instance executes.
type Command struct {
	Task     string
	Instance int
	Argv     []string // Argv[0] without a slash is looked up in Env's PATH
	Env      []string // KEY=VALUE; PATH, HOME, USER and LOGNAME are added when missing
	Dir      string   // "" = the user's home directory, or /
	User     string   // "" = the agent's user
	Group    string   // "" = the user's primary group
	Umask    int      // < 0 keeps the agent's umask
	Stdout   *os.File // write ends the process gets as fd 1 and 2
	Stderr   *os.File
	// Cgroup, when set, is the group the process starts in; it then also
	// decides what "every process of the instance" is.
	Cgroup Group
	// OOMScoreAdj is the process's oom_score_adj; nil means 0, so that a
	// worker never inherits the agent's own (systemd sets it to -1000).
	OOMScoreAdj *int
}

// Launcher starts processes. The OS launcher is the real one; tests of the
// state machine use a fake.
type Launcher interface {
	Launch(ctx context.Context, c *Command) (Process, error)
}

// Process is one started worker and everything it started.
type Process interface {
	// PID is the main process's pid.
	PID() int
	// Done is closed once the main process has ended and been reaped.
	Done() <-chan struct{}
	// Exit is how the main process ended; valid after Done is closed.
	Exit() Exit
	// Signal sends sig to every process of the instance: the main process's
	// group, its descendants that left the group, and orphans it left behind.
	Signal(sig syscall.Signal) error
	// Remaining lists the pids of the instance's processes still alive.
	Remaining() []int
}
