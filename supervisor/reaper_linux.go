package supervisor

import (
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

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
	mu     sync.Mutex // guards procs and gen
	procs  map[int]*osProcess
	gen    uint64 // counts reap rounds that collected something

	scanMu  sync.Mutex // guards scanGen, scanAt and scanned
	scanGen uint64
	scanAt  time.Time
	scanned []orphan
}

// orphan is a child of the agent that it did not start: a process a worker
// left behind, re-parented to the agent as subreaper.
type orphan struct {
	pid      int
	pgid     int
	task     string // from its GLMD_TASK and GLMD_INSTANCE
	instance string
}

// orphanTTL bounds how stale a shared orphan scan may be for a caller that
// does not need one newer than the last reap.
const orphanTTL = 20 * time.Millisecond

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
		r.gen++
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

// orphans lists the agent's orphans. One scan of /proc is shared by every
// caller until the next reap (fresh) or for orphanTTL: when a thousand
// instances stop together, /proc is read a few times, not a thousand.
//
// A caller that just saw its main process reaped asks for fresh: the
// kernel re-parents a process's children before its parent can reap it, so
// a scan newer than that reap sees all of them.
func (r *reaper) orphans(fresh bool) []orphan {
	r.mu.Lock()
	gen := r.gen
	r.mu.Unlock()
	r.scanMu.Lock()
	defer r.scanMu.Unlock()
	if r.scanAt.IsZero() || r.scanGen != gen || (!fresh && time.Since(r.scanAt) > orphanTTL) {
		r.scanned, r.scanGen, r.scanAt = r.scan(), gen, time.Now()
	}
	return r.scanned
}

func (r *reaper) scan() []orphan {
	// The kernel gives an orphan to the first live thread of the subreaper
	// (find_new_reaper and find_alive_thread in kernel/exit.c), which is the
	// thread-group leader: Go's main thread never exits. Workers themselves
	// are listed under whichever thread forked them, and need no scan.
	self := os.Getpid()
	kids := threadChildren(self, self)
	var out []orphan
	r.mu.Lock()
	for _, pid := range kids {
		if _, worker := r.procs[pid]; !worker {
			out = append(out, orphan{pid: pid})
		}
	}
	r.mu.Unlock()
	for i := range out {
		o := &out[i]
		o.pgid, _ = syscall.Getpgid(o.pid)
		if env, err := os.ReadFile("/proc/" + strconv.Itoa(o.pid) + "/environ"); err == nil {
			o.task, o.instance = envVar(env, "GLMD_TASK"), envVar(env, "GLMD_INSTANCE")
		}
	}
	return out
}
