//go:build !unix

package config

import "syscall"

// Outside Unix the syscall package knows only a few signals; glmd does not
// supervise there, but the package still builds for glmctl and tests.
var stopSignals = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM,
	"INT":  syscall.SIGINT,
	"QUIT": syscall.SIGQUIT,
	"HUP":  syscall.SIGHUP,
	"KILL": syscall.SIGKILL,
	"ABRT": syscall.SIGABRT,
	"ALRM": syscall.SIGALRM,
	"PIPE": syscall.SIGPIPE,
}
