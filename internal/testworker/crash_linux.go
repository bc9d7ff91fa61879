package main

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resetSignal sets sig to SIG_DFL in the kernel. signal.Reset is not enough: the Go runtime keeps its own handler for
// SIGSEGV, SIGBUS and friends and ignores them when another process (here: we) sends them.
func resetSignal(sig syscall.Signal) {
	// struct sigaction all zero: handler SIG_DFL, no flags, empty mask; larger than any architecture's layout.
	var act [8]uint64
	const sigsetSize = 8 // _NSIG/8 on every architecture glmd supports
	// An error (SIGKILL, SIGSTOP) leaves the default action in place, which is what we want anyway.
	_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, sigsetSize, 0, 0)
}
