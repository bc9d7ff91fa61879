//go:build !linux

package tasklog

import (
	"fmt"
	"os"
)

// newPipe returns a pipe whose read end is non-blocking and registered with
// the runtime poller, and whose write end is blocking.
func newPipe(name string) (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("create pipe for %s: %w", name, err)
	}
	// Fd puts the descriptor back into blocking mode, for the worker.
	w.Fd()
	return r, w, nil
}

// maxPipeSize is the largest read: pipes cannot grow outside Linux.
const maxPipeSize = 64 << 10

func pipeSize(fd int) int { return 64 << 10 }

func growPipe(fd, old int) int { return old }
