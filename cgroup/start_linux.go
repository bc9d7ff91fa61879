package cgroup

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Start runs fork so that the new process is in the group from its first
// instruction, and everything it forks with it.
//
// On cgroup v2 fork gets a directory fd of the group to pass as
// SysProcAttr.CgroupFD with UseCgroupFD: clone3(CLONE_INTO_CGROUP). The
// kernel takes cgroup2 directories only, so on v1 Start instead moves the
// calling OS thread into the group in every v1 hierarchy, forks from that
// thread (a child inherits its parent thread's cgroups) and moves the
// thread back. On a hybrid host fork gets the twin's fd as well. Starting
// then placing (AddProc) lets early forks escape: 9 of 40 runs in the
// notes; this way, 0 of 40.
func (g *group) Start(fork func(cgroupFD int) (int, error)) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deleted {
		return 0, fmt.Errorf("cgroup %s: start: the group was deleted", g.name)
	}
	fd := -1
	if g.unified != "" {
		var err error
		fd, err = unix.Open(g.unified, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("cgroup %s: start: open %s: %w", g.name, g.unified, err)
		}
		defer unix.Close(fd)
	}
	if g.m.v1 == nil {
		return fork(fd)
	}
	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	// A goroutine of its own: if the thread cannot be moved back, the
	// goroutine ends still locked to it, and Go then ends the thread rather
	// than running other goroutines in the worker's cgroup. While a thread
	// is locked, the runtime starts new threads from its template thread,
	// not from this one (runtime.newm), so none is born in the group.
	go func() {
		runtime.LockOSThread()
		pid, back, err := g.forkFromThread(fork, fd)
		if back {
			runtime.UnlockOSThread()
		}
		done <- result{pid, err}
	}()
	r := <-done
	return r.pid, r.err
}

// forkFromThread runs on a locked OS thread: into the group, fork, out
// again. back reports whether the thread is home again and may be reused.
//
// The thread writes "0" (itself) rather than its tid: for the writing
// thread the kernel skips the global cgroup_threadgroup_rwsem, whose write
// side waits for an RCU grace period when no migration happened for a
// while (measured here: 5-19 ms per start after an idle moment with the
// tid, 0.5-3 ms with "0"; cgroup_procs_write_start in kernel/cgroup).
func (g *group) forkFromThread(fork func(int) (int, error), fd int) (pid int, back bool, err error) {
	const self = "0"
	var moved []v1Hier
	defer func() {
		back = true
		for _, h := range moved {
			if merr := writeFile(filepath.Join(h.own, "tasks"), self); merr != nil {
				back = false
				g.m.log.Error("cgroup: cannot move the starting thread back to the agent's cgroup; the thread ends", "cgroup", g.name, "err", merr)
			}
		}
	}()
	for _, h := range g.m.v1.hiers {
		if h.ctrl == "devices" && !g.inDevices {
			continue
		}
		if err := writeFile(filepath.Join(g.dirs[h.ctrl], "tasks"), self); err != nil {
			return 0, true, fmt.Errorf("cgroup %s: start: move the starting thread into the group: %w", g.name, err)
		}
		moved = append(moved, h)
	}
	pid, err = fork(fd)
	if errors.Is(err, syscall.EAGAIN) {
		if data, rerr := readString(filepath.Join(g.dirs["pids"], "pids.max")); rerr == nil {
			err = fmt.Errorf("%w (on cgroup v1 the agent's starting thread counts toward the group's pids.max %s while it forks: pids_max must leave room for it)", err, strings.TrimSpace(data))
		}
	}
	return pid, true, err
}
