package tasklog

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// deadline bounds every wait of the tests; none of them is about speed.
const deadline = 20 * time.Second

// openTest opens instance 0 of task "job" under a temporary log dir and
// closes it at the end of the test.
func openTest(t *testing.T, opts Options, writeFn func(*os.File, []byte) (int, error)) *Instance {
	t.Helper()
	inst, err := open(t.TempDir(), "job", 0, opts, writeFn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { inst.Close() })
	return inst
}

// worker is a real process running on an instance's pipes.
type worker struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process was reaped
}

// start runs cmd on the instance's pipes and kills it at the end of the test.
func start(t *testing.T, inst *Instance, cmd *exec.Cmd) *worker {
	t.Helper()
	cmd.Stdout = inst.Stdout()
	cmd.Stderr = inst.Stderr()
	cmd.Env = append(cmd.Env, "PATH=/usr/bin:/bin")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	w := &worker{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-w.done
	})
	return w
}

// wait waits for the worker to exit with success, and fails the test if it
// does not within the deadline.
func (w *worker) wait(t *testing.T) {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(deadline):
		t.Fatalf("%v did not finish within %v: blocked on its output?", w.cmd.Args, deadline)
	}
	if !w.cmd.ProcessState.Success() {
		t.Fatalf("%v: %v", w.cmd.Args, w.cmd.ProcessState)
	}
}

// shell runs script with /bin/sh on the instance's pipes and waits for it.
func shell(t *testing.T, inst *Instance, script string) {
	t.Helper()
	start(t, inst, exec.Command("/bin/sh", "-c", script)).wait(t)
}

// startFlood starts the test binary as a worker flooding stream with total
// bytes of line-byte lines.
func startFlood(t *testing.T, inst *Instance, stream string, total int64, line int) *worker {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{
		childEnv + "=flood",
		fmt.Sprintf("FLOOD_BYTES=%d", total),
		fmt.Sprintf("FLOOD_LINE=%d", line),
		"FLOOD_STREAM=" + stream,
		// A -race binary otherwise sleeps a second at exit.
		"GORACE=atexit_sleep_ms=0",
	}
	return start(t, inst, cmd)
}

// waitFor polls cond until it holds, and fails the test at the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// backups returns the rotated files of s, oldest first.
func backups(t *testing.T, inst *Instance, s Stream) []string {
	t.Helper()
	path := inst.Path(s)
	matches, err := filepath.Glob(path + ".*")
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(path)
	var bs []backup
	for _, m := range matches {
		b, ok := parseBackup(base, filepath.Base(m))
		if !ok {
			t.Errorf("unexpected file %s next to the log", m)
			continue
		}
		bs = append(bs, b)
	}
	slices.SortFunc(bs, func(a, b backup) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	var out []string
	for _, b := range bs {
		out = append(out, filepath.Join(filepath.Dir(path), b.name))
	}
	return out
}

// recorder is a slog handler that keeps the messages, to count episodes.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// count returns how many messages start with prefix ("WARN cannot write").
func (r *recorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// disk is a log disk that works, is full (ENOSPC) or hangs, as the test says.
type disk struct {
	mu      sync.Mutex
	state   string        // "ok", "full" or "stuck"
	release chan struct{} // closed when a stuck disk comes back
}

func newDisk(state string) *disk { return &disk{state: state, release: make(chan struct{})} }

func (d *disk) write(f *os.File, p []byte) (int, error) {
	d.mu.Lock()
	state, release := d.state, d.release
	d.mu.Unlock()
	switch state {
	case "full":
		return 0, syscall.ENOSPC
	case "stuck":
		<-release
	}
	return f.Write(p)
}

// recover makes the disk work again.
func (d *disk) recover() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state == "stuck" {
		close(d.release)
	}
	d.state = "ok"
}
