package supervisor

import (
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaper collects the exit status of every child of the agent: the workers
// it started and the orphans they leave behind, which reach the agent
// because it is a child subreaper. It must be the only code in the process
// that waits for children: os/exec's Cmd.Wait would race it for statuses,
// so every process glmd starts goes through the OS launcher.
type reaper struct {
	log *slog.Logger

	// forkMu is held for reading across fork and registration, and for
	// writing while reaping, so that a child that exits at once is never
	// reaped before its pid is registered.
	forkMu sync.RWMutex
	mu     sync.Mutex // guards procs
	procs  map[int]*osProcess
}

func newReaper(log *slog.Logger) (*reaper, error) {
	// Orphans of workers (double-forked daemons, children of a crashed
	// worker) are re-parented to us instead of init, so that we can kill
	// them with their instance and reap them: no zombie stays.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	r := &reaper{log: log, procs: make(map[int]*osProcess)}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGCHLD)
	go r.loop(sigc) // lives as long as the process: the subreaper role does too
	return r, nil
}

func (r *reaper) loop(sigc <-chan os.Signal) {
	for range sigc {
		r.reap()
	}
}

// reap collects every child that has ended. SIGCHLD signals coalesce, so
// one wake-up may stand for many exits.
func (r *reaper) reap() {
	r.forkMu.Lock()
	defer r.forkMu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		if ws.Stopped() || ws.Continued() {
			continue
		}
		r.mu.Lock()
		p := r.procs[pid]
		delete(r.procs, pid)
		r.mu.Unlock()
		if p == nil {
			r.log.Debug("reaped orphan", "pid", pid, "status", exitFromStatus(ws).String())
			continue
		}
		p.exited(ws)
	}
}

// register records a started child; call it with forkMu held for reading.
func (r *reaper) register(p *osProcess) {
	r.mu.Lock()
	r.procs[p.pid] = p
	r.mu.Unlock()
}

// isWorker reports whether pid is a main process the launcher started.
func (r *reaper) isWorker(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.procs[pid]
	return ok
}
