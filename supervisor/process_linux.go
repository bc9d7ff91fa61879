package supervisor

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// osProcess is a worker started by the OS launcher. Until the cgroup
// support takes over, "every process of the instance" is its process group,
// its descendants (also those that called setsid), and the orphans it left:
// children re-parented to the agent (a subreaper) whose environment carries
// the instance's GLMD_TASK and GLMD_INSTANCE, or which are still in its
// process group, with their descendants.
type osProcess struct {
	pid        int
	task       string
	instance   string
	reaper     *reaper
	group      Group  // nil without cgroups
	oomAtStart uint64 // the group's OOM kill count when the process started

	mu     sync.Mutex // guards status and sent; done is closed once status is set
	status syscall.WaitStatus
	done   chan struct{}
	// sent records who got which signal, so that repeating Signal reaches
	// only processes found since: a worker that got SIGTERM once is not
	// sent it again (some treat a second one as "quit now").
	sent map[syscall.Signal]map[int]bool
}

func (p *osProcess) PID() int              { return p.pid }
func (p *osProcess) Done() <-chan struct{} { return p.done }

// Exit classifies how the main process ended. A SIGKILL while the
// group's OOM kill counter rose is the kernel's OOM killer (notes: on v1 the
// OOM eventfd also fires on rmdir and failcnt stays 0, so only the counter
// and the signal together are evidence).
func (p *osProcess) Exit() Exit {
	p.mu.Lock()
	e := exitFromStatus(p.status)
	p.mu.Unlock()
	if p.group != nil && e.Signal == "SIGKILL" {
		if n, err := p.group.OOMKills(); err == nil && n > p.oomAtStart {
			e.Reason = ReasonOOMKilled
		}
	}
	return e
}

func (p *osProcess) exited(ws syscall.WaitStatus) {
	p.mu.Lock()
	p.status = ws
	p.mu.Unlock()
	close(p.done)
}

func (p *osProcess) mainAlive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to every process of the instance that has not had it
// yet; SIGKILL goes to all of them every time. ESRCH (already gone) is not
// an error.
func (p *osProcess) Signal(sig syscall.Signal) error {
	var first error
	note := func(err error) {
		if err != nil && !errors.Is(err, syscall.ESRCH) && first == nil {
			first = err
		}
	}
	again := sig == syscall.SIGKILL
	p.mu.Lock()
	if p.sent == nil {
		p.sent = map[syscall.Signal]map[int]bool{}
	}
	if p.sent[sig] == nil {
		p.sent[sig] = map[int]bool{}
	}
	sent := p.sent[sig]
	group := again || !sent[-p.pid]
	sent[-p.pid] = true
	p.mu.Unlock()
	if p.group != nil {
		if sig == syscall.SIGKILL {
			return p.group.Kill()
		}
		pids, err := p.group.Procs()
		note(err)
		for _, pid := range pids {
			p.mu.Lock()
			skip := sent[pid]
			sent[pid] = true
			p.mu.Unlock()
			if !skip {
				note(syscall.Kill(pid, sig))
			}
		}
		return first
	}
	// The reaper cannot reap the main process while we hold forkMu for
	// reading, so its pid, which is also the group id, is still ours.
	p.reaper.forkMu.RLock()
	if group && p.mainAlive() {
		note(syscall.Kill(-p.pid, sig))
	}
	p.reaper.forkMu.RUnlock()
	for _, pid := range p.others(false) {
		p.mu.Lock()
		skip := !again && sent[pid]
		sent[pid] = true
		p.mu.Unlock()
		if !skip {
			note(syscall.Kill(pid, sig))
		}
	}
	return first
}

// Remaining lists the live processes of the instance, the main one included.
func (p *osProcess) Remaining() []int {
	if p.group != nil {
		pids, err := p.group.Procs()
		if err != nil {
			// Unreadable: assume something is left; the stop keeps
			// escalating and retrying rather than leaking a process.
			return []int{-1}
		}
		var out []int
		for _, pid := range pids {
			if alive(pid) {
				out = append(out, pid)
			}
		}
		return out
	}
	var out []int
	if p.mainAlive() {
		out = append(out, p.pid)
	}
	for _, pid := range p.others(true) {
		if alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// others lists the instance's processes other than the main one: its
// descendants and the orphans it left with theirs. fresh asks for an orphan
// scan newer than the last reap.
func (p *osProcess) others(fresh bool) []int {
	var roots []int
	if p.mainAlive() {
		roots = append(roots, p.pid)
	}
	for _, o := range p.reaper.orphans(fresh) {
		if o.pid != p.pid && (o.pgid == p.pid || (o.task == p.task && o.instance == p.instance)) {
			roots = append(roots, o.pid)
		}
	}
	var out []int
	seen := map[int]bool{p.pid: true}
	for len(roots) > 0 {
		pid := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if !seen[pid] {
			seen[pid] = true
			out = append(out, pid)
		}
		for _, c := range children(pid) {
			if !seen[c] {
				roots = append(roots, c)
			}
		}
	}
	return out
}

// envVar finds KEY's value in a NUL-separated environment block.
func envVar(environ []byte, key string) string {
	prefix := []byte(key + "=")
	for kv := range bytes.SplitSeq(environ, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, prefix); ok {
			return string(v)
		}
	}
	return ""
}

// children lists pid's children from /proc/<pid>/task/*/children: a child
// is listed under the thread that forked it (or adopted it).
func children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			out = append(out, threadChildren(pid, tid)...)
		}
	}
	return out
}

// threadChildren lists the children of one thread of pid. It reads with
// plain syscalls: it is on the path from a crash to the restart.
func threadChildren(pid, tid int) []int {
	b, err := readProc("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/children")
	if err != nil {
		return nil
	}
	var out []int
	for f := range bytes.FieldsSeq(b) {
		if c, err := strconv.Atoi(string(f)); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// readProc reads a small /proc file without the poller registration and
// stat that os.ReadFile costs.
func readProc(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	buf := make([]byte, 4096)
	n := 0
	for {
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return buf[:n], nil
		}
		n += m
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain ") ".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}
