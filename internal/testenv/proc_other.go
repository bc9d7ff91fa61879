//go:build !linux

package testenv

import (
	"os"
	"syscall"
)

// Alive reports whether pid exists. Off Linux there is no /proc to tell a zombie from a live process.
func Alive(pid int) bool { return inspect(pid).present }

// ProcsWithEnv finds nothing off Linux, where there is no /proc/<pid>/environ.
func ProcsWithEnv(string) []int { return nil }

func inspect(pid int) procInfo {
	p, err := os.FindProcess(pid)
	if err != nil {
		return procInfo{pid: pid}
	}
	return procInfo{pid: pid, present: p.Signal(syscall.Signal(0)) == nil}
}
