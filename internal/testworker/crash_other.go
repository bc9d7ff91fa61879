//go:build !linux

package main

import "syscall"

// resetSignal is best effort off Linux: signal.Reset, already done by crash, is all there is.
func resetSignal(syscall.Signal) {}
