package supervisor

import "fmt"

// State is where one instance is in its life. Its String form is the
// `state` field of `glmctl status --json`.
//
//	           Start                exec ok
//	pending ----------> starting ----------> running ---------+
//	   ^                 |   ^  \               |  \          | exit, no restart
//	   |     start error |   |   \ permanent    |   \ Stop    v
//	   |                 v   |    \ error       |    v      exited (success)
//	   |             backoff-+     +--------> failed  stopping   failed (failure, limit)
//	   |                 ^   timer                |     |
//	   |                 +------------------------+     v
//	   |                   exit, restart due          stopped
//	   +-- (Start from stopped, exited, failed: to starting)
//	   +-- starting, when Devices.Acquire must wait (GPUs busy): back to pending
type State uint8

// The states of an instance.
const (
	StatePending  State = iota // created, waiting to be started (dependencies, or not yet asked)
	StateStarting              // being launched
	StateRunning               // its process runs
	StateStopping              // stop signal sent, or the worker ended and left processes: waiting for every process to end
	StateStopped               // stopped by an operator, a reload or the agent; no restart
	StateBackoff               // ended; waiting before the next start
	StateExited                // ended with success and no restart is due
	StateFailed                // ended with failure and no restart is due, or gave up
)

var stateNames = [...]string{
	StatePending:  "pending",
	StateStarting: "starting",
	StateRunning:  "running",
	StateStopping: "stopping",
	StateStopped:  "stopped",
	StateBackoff:  "backoff",
	StateExited:   "exited",
	StateFailed:   "failed",
}

// States lists every state, in declaration order.
func States() []State {
	out := make([]State, len(stateNames))
	for i := range stateNames {
		out[i] = State(i)
	}
	return out
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Ended reports whether no process runs and none is due without a command.
func (s State) Ended() bool {
	return s == StateStopped || s == StateExited || s == StateFailed
}

// transitions is the one table of legal moves; a test walks every pair.
var transitions = map[State][]State{
	StatePending:  {StateStarting, StateStopped},
	StateStarting: {StateRunning, StateBackoff, StateFailed, StateStopped, StatePending},
	StateRunning:  {StateStopping, StateStarting, StateBackoff, StateExited, StateFailed},
	StateStopping: {StateStopped, StateStarting, StateBackoff, StateExited, StateFailed},
	StateStopped:  {StateStarting, StatePending},
	StateBackoff:  {StateStarting, StateStopped, StateFailed},
	StateExited:   {StateStarting, StateStopped, StatePending},
	StateFailed:   {StateStarting, StateStopped, StatePending},
}

// TransitionError is returned for a move the state table does not allow.
type TransitionError struct {
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("invalid state transition from %s to %s", e.From, e.To)
}

// checkTransition returns a *TransitionError unless from -> to is legal.
func checkTransition(from, to State) error {
	for _, s := range transitions[from] {
		if s == to {
			return nil
		}
	}
	return &TransitionError{From: from, To: to}
}
