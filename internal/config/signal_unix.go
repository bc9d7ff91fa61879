//go:build unix

package config

import "syscall"

var stopSignals = map[string]syscall.Signal{
	"TERM":  syscall.SIGTERM,
	"INT":   syscall.SIGINT,
	"QUIT":  syscall.SIGQUIT,
	"HUP":   syscall.SIGHUP,
	"KILL":  syscall.SIGKILL,
	"USR1":  syscall.SIGUSR1,
	"USR2":  syscall.SIGUSR2,
	"ABRT":  syscall.SIGABRT,
	"ALRM":  syscall.SIGALRM,
	"WINCH": syscall.SIGWINCH,
	"PIPE":  syscall.SIGPIPE,
}
