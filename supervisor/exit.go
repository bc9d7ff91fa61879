package supervisor

import (
	"fmt"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// Why an instance's process ended: Exit.Reason.
const (
	ReasonExited    = "exited"     // it exited by itself with Exit.Code
	ReasonSignal    = "signal"     // a signal it did not handle killed it
	ReasonOOMKilled = "oom_killed" // the kernel's OOM killer ended it (cgroup counters)
	ReasonUnhealthy = "unhealthy"  // glmd ended it after failed liveness probes
	ReasonStopped   = "stopped"    // glmd stopped it on request
)

// Exit says how a process ended. Code follows the shell convention: a
// process killed by signal N has Code 128+N.
type Exit struct {
	Code   int
	Signal string // "SIGKILL"; "" when it exited by itself
	Reason string
}

// exitFromStatus classifies a wait status.
func exitFromStatus(ws syscall.WaitStatus) Exit {
	switch {
	case ws.Signaled():
		return Exit{Code: 128 + int(ws.Signal()), Signal: signalName(ws.Signal()), Reason: ReasonSignal}
	default:
		return Exit{Code: ws.ExitStatus(), Reason: ReasonExited}
	}
}

// Success reports whether the exit counts as success under the codes given.
func (e Exit) Success(codes []int) bool {
	return e.Reason == ReasonExited && slices.Contains(codes, e.Code)
}

func (e Exit) String() string {
	switch e.Reason {
	case ReasonExited:
		return fmt.Sprintf("exit %d", e.Code)
	case ReasonSignal:
		return "killed by " + e.Signal
	case "":
		return "-"
	default:
		if e.Signal != "" {
			return e.Reason + " (" + e.Signal + ")"
		}
		return e.Reason
	}
}

// signalName gives "SIGTERM" for syscall.SIGTERM.
func signalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return fmt.Sprintf("SIG%d", int(s))
}
