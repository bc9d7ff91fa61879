package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/internal/tasklog"
	"github.com/open-autoglm/glmd/internal/version"
	"github.com/open-autoglm/glmd/supervisor"
)

var _ api.Backend = (*Agent)(nil)

// Info describes the agent.
func (a *Agent) Info(ctx context.Context) api.AgentInfo {
	info := api.AgentInfo{Version: version.Version, Node: a.cfg.NodeName, PID: os.Getpid(),
		StartedAt: a.started, ConfDir: a.cfg.ConfDir, Dev: a.cfg.Dev, Cgroups: a.cgroupMode}
	if a.disc != nil {
		if h := a.disc.Health(); h.Enabled && !h.OK {
			info.Discovery = h.Reason
		}
	}
	return info
}

// Status lists every instance, disabled tasks' instances, and one row per
// invalid task file.
func (a *Agent) Status(ctx context.Context, opts api.StatusOptions) []api.InstanceStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	names := make([]string, 0, len(a.tasks))
	for n := range a.tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	out := []api.InstanceStatus{}
	for _, name := range names {
		t := a.tasks[name]
		if !t.spec.Enabled {
			for i := range t.spec.Instances {
				out = append(out, api.InstanceStatus{Task: name, Instance: i, State: "stopped", GPUs: []string{},
					Kind: string(t.spec.Kind), File: t.spec.File, Since: a.started,
					Message: fmt.Sprintf("disabled (enabled = false in %s)", t.spec.File)})
			}
			continue
		}
		var waiting []string
		if !t.startAsked {
			waiting = a.waitingFor(t)
		}
		if t.cron != nil {
			out = append(out, a.cronRow(t))
			continue
		}
		for _, in := range t.instances {
			row := statusRow(t, in, in.runner.Status())
			switch {
			case in.blocked != "":
				row.State, row.Message = "failed", in.blocked
			case row.State == "pending" && len(waiting) > 0:
				row.Message = waitingMessage(waiting)
			case in.held && row.State == "stopped":
				row.Message = "stopped by an operator (glmctl start to start it)"
			}
			if in.note != "" {
				row.Message = strings.TrimSpace(row.Message + " (" + in.note + ")")
			}
			if st, ok := in.runner.Stats(); ok {
				row.Cgroup = fmt.Sprintf("%s@%d", t.spec.Name, in.index)
				if opts.Resources {
					row.Resources = usage(st, in.spec.Resources)
				}
			}
			out = append(out, row)
		}
	}
	for _, f := range a.invalidFiles() {
		errs := a.invalid[f]
		msg := joinErrors(errs)
		for _, t := range a.tasks {
			if t.spec.File == f {
				msg += " (the last good version keeps running)"
				break
			}
		}
		out = append(out, api.InstanceStatus{Task: errs[0].Task, Instance: -1, State: "invalid", GPUs: []string{},
			File: f, Message: msg, Since: time.Now()})
	}
	return out
}

// usage is the API form of a group's stats and the limits it has.
func usage(st resources.Stats, l resources.Limits) *api.Usage {
	return &api.Usage{
		CPUSeconds: st.CPU.Seconds(), CPUThrottledSeconds: st.CPUThrottled.Seconds(),
		MemoryBytes: st.MemoryCurrent, MemoryPeakBytes: st.MemoryPeak, Pids: st.Pids,
		IOReadBytes: st.IOReadBytes, IOWriteBytes: st.IOWriteBytes, OOMKills: st.OOMKills,
		CPUs: l.CPUs, MemoryMax: l.MemoryMax, PidsMax: l.PidsMax,
	}
}

func statusRow(t *task, in *instance, st supervisor.Status) api.InstanceStatus {
	row := api.InstanceStatus{
		Task: t.spec.Name, Instance: in.index, State: st.State.String(), PID: st.PID,
		Restarts: st.Restarts, Ready: st.Ready,
		LastExit: api.Exit{Code: st.LastExit.Code, Signal: st.LastExit.Signal, Reason: st.LastExit.Reason},
		GPUs:     []string{}, Message: st.Message, Kind: string(t.spec.Kind), File: t.spec.File, Since: st.Since,
	}
	if len(st.Devices) > 0 && !st.State.Ended() {
		row.GPUs = st.Devices
	}
	if !st.StartedAt.IsZero() {
		s := st.StartedAt
		row.StartedAt = &s
	}
	if !st.NextStart.IsZero() {
		n := st.NextStart
		row.NextStart = &n
	}
	if len(in.ports) > 0 {
		row.Ports = map[string]int{}
		for k, v := range in.ports {
			if k == "" {
				k = "port"
			}
			row.Ports[k] = v
		}
	}
	return row
}

// lookup finds the instances TASK[:INSTANCE] names; instance -1 means all.
func (a *Agent) lookup(name string, idx int) (*task, []*instance, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tasks[name]
	if t == nil {
		return nil, nil, fmt.Errorf("task %q: %w (glmctl status lists the tasks)", name, api.ErrNotFound)
	}
	if !t.spec.Enabled {
		return nil, nil, fmt.Errorf("task %q is disabled (enabled = false in %s): %w", name, t.spec.File, api.ErrConflict)
	}
	if t.spec.Kind == config.KindCron {
		if idx > 0 {
			return nil, nil, fmt.Errorf("%s: %w (a scheduled task has one row, %s:0)", instanceName(name, idx), api.ErrNotFound, name)
		}
		return t, nil, nil
	}
	if idx < 0 {
		return t, append([]*instance(nil), t.instances...), nil
	}
	for _, in := range t.instances {
		if in.index == idx {
			return t, []*instance{in}, nil
		}
	}
	return nil, nil, fmt.Errorf("%s: %w (task %s has %d instances)", instanceName(name, idx), api.ErrNotFound, name, t.spec.Instances)
}

// Start starts the named instances, clearing failed and an operator's stop.
func (a *Agent) Start(ctx context.Context, name string, idx int) error {
	t, ins, err := a.lookup(name, idx)
	if err != nil {
		return err
	}
	if t.cron != nil {
		return fmt.Errorf("%s is a scheduled task: it starts on its schedule (glmctl run %s starts a run now): %w", name, name, api.ErrConflict)
	}
	a.mu.Lock()
	for _, in := range ins {
		if in.blocked != "" {
			a.mu.Unlock()
			return fmt.Errorf("%s %w: %s", instanceName(name, in.index), api.ErrConflict, in.blocked)
		}
	}
	if idx < 0 {
		t.startAsked = true
	}
	for _, in := range ins {
		in.held = false
	}
	a.mu.Unlock()
	for _, in := range ins {
		if err := in.runner.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops the named instances and waits; they stay stopped until Start.
func (a *Agent) Stop(ctx context.Context, name string, idx int) error {
	t, ins, err := a.lookup(name, idx)
	if err != nil {
		return err
	}
	if t.cron != nil {
		// The runs in progress; the schedule goes on (suspend = true in
		// the file stops it).
		return t.cron.job.Kill(ctx, "stopped by glmctl")
	}
	a.mu.Lock()
	for _, in := range ins {
		in.held = true
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(ins))
	for i, in := range ins {
		wg.Go(func() { errs[i] = in.runner.Stop(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Restart restarts the named instances one at a time, each once the
// previous runs again and is ready.
func (a *Agent) Restart(ctx context.Context, name string, idx int) error {
	t, ins, err := a.lookup(name, idx)
	if err != nil {
		return err
	}
	if t.cron != nil {
		return fmt.Errorf("%s is a scheduled task: glmctl run %s starts a run now: %w", name, name, api.ErrConflict)
	}
	for _, in := range ins {
		a.mu.Lock()
		in.held = false
		a.mu.Unlock()
		if err := in.runner.Restart(ctx); err != nil {
			return fmt.Errorf("restart %s: %w", instanceName(name, in.index), err)
		}
		if err := waitReady(ctx, in.runner); err != nil {
			return fmt.Errorf("restart %s: %w", instanceName(name, in.index), err)
		}
	}
	return nil
}

// Logs returns the tail of an instance's stream, then (Follow) what it
// writes until ctx ends.
func (a *Agent) Logs(ctx context.Context, req api.LogRequest) (io.ReadCloser, error) {
	t, ins, err := a.lookup(req.Task, req.Instance)
	if err != nil {
		return nil, err
	}
	if t.cron != nil {
		return a.cronLogs(ctx, t.cron, req)
	}
	a.mu.Lock()
	logs := ins[0].logs
	a.mu.Unlock()
	return streamLogs(ctx, logs, req)
}

// streamLogs returns the tail of a stream of logs, then (Follow) what is
// written to it until ctx ends.
func streamLogs(ctx context.Context, logs *tasklog.Instance, req api.LogRequest) (io.ReadCloser, error) {
	stream := tasklog.Stdout
	if req.Stream == api.StreamStderr {
		stream = tasklog.Stderr
	}
	if !req.Follow {
		return io.NopCloser(bytes.NewReader(logs.Tail(stream, req.Lines))), nil
	}
	ctx, cancel := context.WithCancel(ctx)
	// Subscribe before taking the tail: a line may show twice, none is lost.
	live := logs.Follow(ctx, stream)
	tail := logs.Tail(stream, req.Lines)
	pr, pw := io.Pipe()
	go func() {
		defer cancel()
		if _, err := pw.Write(tail); err != nil {
			pw.CloseWithError(err)
			return
		}
		for chunk := range live {
			if _, err := pw.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	return readCloser{Reader: pr, close: func() error { cancel(); return pr.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// RotateLogs rotates the log files of one task, or of all when task is "".
func (a *Agent) RotateLogs(ctx context.Context, name string) error {
	var ins []*instance
	if name != "" {
		_, found, err := a.lookup(name, -1)
		if err != nil {
			return err
		}
		ins = found
	} else {
		a.mu.Lock()
		for _, t := range a.tasks {
			ins = append(ins, t.instances...)
		}
		a.mu.Unlock()
	}
	for _, in := range ins {
		a.mu.Lock()
		logs, task := in.logs, in.spec.Name
		a.mu.Unlock()
		if err := logs.Rotate(); err != nil {
			return fmt.Errorf("rotate logs of %s: %w", instanceName(task, in.index), err)
		}
	}
	return nil
}

// Events returns the recent events and, when follow, the new ones until ctx ends.
func (a *Agent) Events(ctx context.Context, follow bool) ([]api.Event, <-chan api.Event, error) {
	backlog, c, cancel := a.events.subscribe(follow)
	if c == nil {
		return backlog, nil, nil
	}
	go func() {
		<-ctx.Done()
		cancel()
	}()
	return backlog, c, nil
}

// onRunnerEvent turns a runner's state change into an event and lets the
// dependency loop look again. It runs on the runner's goroutine.
func (a *Agent) onRunnerEvent(e supervisor.Event) {
	ev := api.Event{Time: e.Time, Type: "state", Task: e.Task, Instance: e.Instance, State: e.State.String(), Message: e.Message}
	if e.Exit != nil {
		ev.Exit = &api.Exit{Code: e.Exit.Code, Signal: e.Exit.Signal, Reason: e.Exit.Reason}
	}
	a.publish(ev)
	a.poke()
	a.pokeDiscovery()
}

// invalidFiles lists the invalid task files, sorted. Call with a.mu held.
func (a *Agent) invalidFiles() []string {
	files := make([]string, 0, len(a.invalid))
	for f := range a.invalid {
		files = append(files, f)
	}
	sort.Strings(files)
	return files
}
