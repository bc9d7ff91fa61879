package config

import (
	"fmt"
	"strings"
	"syscall"
)

// stopSignalNames lists, in the order messages show them, the signals a
// task may name as its stop signal. Signals that cannot end a process
// (STOP, CONT, CHLD, ...) are left out on purpose. The name -> number table
// is per OS (stopSignals in signal_unix.go).
var stopSignalNames = []string{"TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2", "ABRT", "ALRM", "WINCH", "PIPE"}

// defaultStopSignal is what glmd sends to stop an instance unless [stop] signal says otherwise.
const defaultStopSignal = syscall.SIGTERM

// ParseSignal reads a stop signal name: "SIGTERM", "TERM" or "sigterm".
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "SIG")
	if sig, ok := stopSignals[name]; ok {
		return sig, nil
	}
	var known []string
	for _, n := range stopSignalNames {
		if _, ok := stopSignals[n]; ok {
			known = append(known, "SIG"+n)
		}
	}
	return 0, fmt.Errorf("%q is not a stop signal (use one of %s)", s, strings.Join(known, ", "))
}

// SignalName returns "SIGTERM" for syscall.SIGTERM; a signal outside the
// stop signals is shown by number, as "signal 34".
func SignalName(sig syscall.Signal) string {
	for name, s := range stopSignals {
		if s == sig {
			return "SIG" + name
		}
	}
	return fmt.Sprintf("signal %d", int(sig))
}
