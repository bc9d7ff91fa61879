package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults and alignment of the load modes.
const (
	defaultHogStep    = 4 << 20
	defaultWriteBytes = 32 << 20
	defaultWriteBlock = 1 << 20
	// directAlign is the O_DIRECT alignment of buffers, offsets and lengths: a page, which also covers the 4096-byte
	// logical blocks of 4Kn disks.
	directAlign = 4096
)

// hogged holds the memory of -hog, so that the collector can never free it.
var hogged [][]byte

// byteSize is a flag value in bytes: a plain number, or one with a binary suffix (K, KiB, M, MiB, G, GiB).
type byteSize int64

var sizeUnits = map[string]int64{
	"": 1, "K": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MIB": 1 << 20, "G": 1 << 30, "GIB": 1 << 30,
}

func (b *byteSize) Set(s string) error {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	unit, ok := sizeUnits[strings.ToUpper(s[i:])]
	if err != nil || !ok {
		return fmt.Errorf("invalid size %q: want bytes or a number with K, KiB, M, MiB, G or GiB", s)
	}
	if n > math.MaxInt64/unit {
		return fmt.Errorf("size %q is too large", s)
	}
	*b = byteSize(n * unit)
	return nil
}

func (b *byteSize) String() string {
	switch n := int64(*b); {
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	default:
		return strconv.FormatInt(n, 10)
	}
}

// mib formats n bytes as MiB, without decimals when they are whole.
func mib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', -1, 64) }

// burnCPU starts n goroutines that spin until the process ends. GOMAXPROCS is set explicitly, even when it is
// already high enough: since Go 1.25 the runtime lowers it to the cgroup's CPU limit, also later when the limit
// changes, unless a program sets it; the worker must keep n threads runnable for the kernel to throttle.
func (w *worker) burnCPU(n int) {
	runtime.GOMAXPROCS(max(n, runtime.GOMAXPROCS(0)))
	for range n {
		go spin()
	}
	w.print(fmt.Sprintf("burning %d\n", n))
}

func spin() {
	x := uint64(1)
	for {
		// Asynchronous preemption keeps the signal handler running while every P spins.
		x = x*6364136223846793005 + 1442695040888963407
	}
}

// hog allocates total bytes step bytes at a time and writes to every page, so that each step is resident (and
// charged to the cgroup) before it is reported: the runtime hands out fresh, untouched pages for large objects.
func (w *worker) hog(total, step int64) {
	page := os.Getpagesize()
	for done := int64(0); done < total; {
		n := min(step, total-done)
		b := make([]byte, n)
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		hogged = append(hogged, b)
		done += n
		w.print(fmt.Sprintf("hogged %d MiB\n", done>>20))
	}
}

// fork tries to start n children, copies of this binary that sleep in the worker's process group, and prints how
// many started. It goes on after a failure: under pids.max some forks fail with EAGAIN while exits of earlier
// children free room for later ones.
//
// syscall.ForkExec rather than exec.Cmd: an os.Process holds a pidfd, and a thousand of them exhaust RLIMIT_NOFILE;
// and one reaping goroutine driven by SIGCHLD, rather than one Wait per child, each of which blocks a thread, and
// threads count against pids.max as much as processes do.
func (w *worker) fork(n int) {
	exe, err := os.Executable()
	if err != nil {
		fatal(fmt.Errorf("find own executable to fork: %w", err))
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		fatal(fmt.Errorf("open %s for the children's stdin: %w", os.DevNull, err))
	}
	defer devNull.Close()
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{devNull.Fd(), 1, 2}}
	argv := append([]string{exe}, w.childArgs()...)

	// Before the first fork, so that no exit goes unnoticed.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	var pids []int
	var firstErr error
	for range n {
		pid, err := syscall.ForkExec(exe, argv, attr)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("fork/exec %s: %w", exe, err)
			}
			continue
		}
		pids = append(pids, pid)
	}
	go reap(pids, chld)
	w.print(forkSummary(len(pids), n, firstErr) + "\n")
}

// forkSummary is the line -fork prints: "forked 3 of 10 (7 failed: fork/exec /x: resource temporarily unavailable
// (EAGAIN))", or "forked 10 of 10 (0 failed)".
func forkSummary(ok, n int, firstErr error) string {
	s := fmt.Sprintf("forked %d of %d (%d failed", ok, n, n-ok)
	if firstErr != nil {
		s += ": " + firstErr.Error()
		var errno syscall.Errno
		if errors.As(firstErr, &errno) {
			if name := unix.ErrnoName(errno); name != "" {
				s += " (" + name + ")"
			}
		}
	}
	return s + ")"
}

// reap waits for the children of -fork without blocking: it looks at each one still running whenever a SIGCHLD
// arrives. The first pass catches the children that exited before it started.
func reap(pids []int, chld chan os.Signal) {
	live := make(map[int]bool, len(pids))
	for _, pid := range pids {
		live[pid] = true
	}
	for {
		for pid := range live {
			var ws unix.WaitStatus
			// ECHILD: not ours to wait for any more; done with it as well.
			if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); got == pid || errors.Is(err, unix.ECHILD) {
				delete(live, pid)
			}
		}
		if len(live) == 0 {
			signal.Stop(chld)
			return
		}
		<-chld
	}
}

// writeDirect writes size bytes to path with O_DIRECT, block bytes per write, fsyncs, prints the rate and exits 0;
// it exits 1 on any error. The time includes opening and the fsync.
func (w *worker) writeDirect(path string, size, block int64) {
	start := time.Now()
	err := directWrite(path, size, block)
	elapsed := time.Since(start)
	w.exitMu.Lock() // blocks forever if a signal is already ending the process
	if err != nil {
		fatal(fmt.Errorf("-write-direct: %w", err))
	}
	w.print(fmt.Sprintf("wrote %s MiB in %v (%.1f MiB/s)\n",
		mib(size), elapsed.Round(time.Microsecond), float64(size)/(1<<20)/elapsed.Seconds()))
	os.Exit(0)
}

// fillPattern fills the block that -write-direct writes over and over: pseudo-random, so that a compressing
// filesystem writes what it is asked to.
func fillPattern(buf []byte) {
	_, _ = rand.NewChaCha8([32]byte{}).Read(buf)
}
