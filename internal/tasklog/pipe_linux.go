package tasklog

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// newPipe returns a pipe whose read end is non-blocking and registered with
// the runtime poller (so that an idle reader parks without a thread and
// Close can bound the drain with a deadline), and whose write end is
// blocking, as a worker expects its fd 1 and 2 to be.
func newPipe(name string) (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("create pipe for %s: %w", name, err)
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, fmt.Errorf("create pipe for %s: %w", name, err)
	}
	return os.NewFile(uintptr(p[0]), "|0"+name), os.NewFile(uintptr(p[1]), "|1"+name), nil
}

// maxPipeSize is what a flooding stream's pipe grows to: one read then
// moves up to 1 MiB, and the worker can run ahead of the agent by as much.
const maxPipeSize = 1 << 20

// pipeSize returns the capacity of the pipe fd.
func pipeSize(fd int) int {
	n, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		return 0
	}
	return n
}

// growPipe enlarges the pipe fd to maxPipeSize and returns its new size, or
// the old one where the kernel refuses (an unprivileged agent beyond
// /proc/sys/fs/pipe-max-size or pipe-user-pages-soft).
func growPipe(fd, old int) int {
	n, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, maxPipeSize)
	if err != nil {
		return old
	}
	return n
}
