package supervisor

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"time"
)

// outputGrace bounds how long Run reads output after the process ended: a
// child it left may hold the pipe open.
const outputGrace = 100 * time.Millisecond

// Run starts c, waits until it ends, and returns how it ended with up to
// maxOutput bytes of its combined stdout and stderr. When ctx ends first,
// Run kills the process group and returns ctx's error with the exit. It is
// for short commands such as exec health probes: they must go through the
// launcher, because os/exec's Wait would race the agent's reaper.
func (l *OSLauncher) Run(ctx context.Context, c *Command, maxOutput int) (Exit, []byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return Exit{}, nil, err
	}
	cmd := *c
	cmd.Stdout, cmd.Stderr, cmd.Cgroup = w, w, nil
	proc, err := l.Launch(ctx, &cmd)
	w.Close()
	if err != nil {
		r.Close()
		return Exit{}, nil, err
	}
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, int64(maxOutput)))
		io.Copy(io.Discard, r) // the rest, so that the writer never blocks on a full pipe
		out <- b
	}()
	p := proc.(*osProcess)
	var runErr error
	select {
	case <-p.Done():
	case <-ctx.Done():
		runErr = ctx.Err()
		p.killGroup()
		<-p.Done()
	}
	var b []byte
	select {
	case b = <-out:
	case <-time.After(outputGrace):
		r.Close()
		b = <-out
	}
	r.Close()
	return p.Exit(), b, runErr
}

// killGroup sends SIGKILL to the process's group while its pid is still
// ours (see Signal).
func (p *osProcess) killGroup() {
	p.reaper.forkMu.RLock()
	defer p.reaper.forkMu.RUnlock()
	if p.mainAlive() {
		if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			p.reaper.log.Warn("kill", "pid", p.pid, "err", err)
		}
	}
}
