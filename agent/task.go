package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"

	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/health"
	"github.com/open-autoglm/glmd/internal/tasklog"
	"github.com/open-autoglm/glmd/supervisor"
)

// task is one loaded task and its instances. Fields are guarded by Agent.mu.
type task struct {
	spec       *config.Task
	hash       string
	instances  []*instance // nil while the task is disabled
	startAsked bool        // the dependency loop started it (or an operator did)
	invalid    string      // its file is invalid now: the message; this version keeps running
	rollout    context.CancelFunc
	rolloutEnd chan struct{} // closed when the rollout goroutine returns
	// cron runs a scheduled task (kind cron, enabled); it has no instances.
	cron *cronTask
}

// instance is one supervised copy of a task.
type instance struct {
	index  int
	runner *supervisor.Runner
	logs   *tasklog.Instance
	ports  map[string]int // "" is the task's port
	spec   *config.Task   // the version its runner's spec was built from
	hash   string         // spec.Hash()
	held   bool           // stopped by an operator: dependencies and reloads do not start it
	// blocked says why the instance may not start at all (it sets limits
	// and cgroups cannot be used); note is a warning shown with its state.
	blocked, note string
	// monitor probes the instance's health checks (nil without); checks
	// are the rendered checks it was made for.
	monitor *health.Monitor
	checks  []config.HealthCheck
	gpus    *instanceGPUs           // its seat at the GPU pool; nil when the task asks for no GPU
	svc     *config.ServiceInstance // its [service] rendered; nil without one (guarded by Agent.mu)
	cancel  context.CancelFunc
	done    <-chan struct{}
}

// newInstance renders instance i of t, opens its logs and starts its
// runner goroutine (in pending: nothing runs until Start).
func (a *Agent) newInstance(t *config.Task, i int) (*instance, error) {
	ports, err := pickPorts(t, i)
	if err != nil {
		return nil, err
	}
	logs, err := a.openLogs(t, i)
	if err != nil {
		return nil, err
	}
	in := &instance{index: i, logs: logs, ports: ports, spec: t, hash: t.Hash(), gpus: a.newInstanceGPUs(t, i)}
	spec, err := a.runnerSpec(t, in)
	if err != nil {
		logs.Close()
		return nil, err
	}
	in.blocked, in.note = a.cgroupVerdict(t)
	ctx, cancel := context.WithCancel(a.runCtx)
	in.cancel = cancel
	in.runner = supervisor.NewRunner(spec, supervisor.Options{
		Launcher: a.launcher,
		Log:      a.log,
		Notify:   a.onRunnerEvent,
		Cgroups:  a.cgroups,
	})
	in.done = in.runner.Done()
	a.wg.Go(func() { in.runner.Run(ctx) })
	return in, nil
}

// cgroupVerdict says whether t can start when cgroups cannot be used: a
// task with limits may not (blocked), except in --dev, where it runs
// without them (note).
func (a *Agent) cgroupVerdict(t *config.Task) (blocked, note string) {
	needs := !t.Resources.IsZero() || t.GPU.IsolateDevices
	if a.cgroups != nil || !needs {
		return "", ""
	}
	if a.cfg.Dev {
		return "", fmt.Sprintf("limits not enforced: %v", a.cgroupErr)
	}
	what := "its [resources] limits"
	if t.Resources.IsZero() {
		what = "[gpu] isolate_devices"
	}
	return fmt.Sprintf("needs cgroups for %s, but %v (run glmd as root on a host with cgroups, or remove them)", what, a.cgroupErr), ""
}

// runnerSpec renders t for in with in's ports.
func (a *Agent) runnerSpec(t *config.Task, in *instance) (supervisor.Spec, error) {
	vars := config.Vars{Name: t.Name, Instance: in.index, Node: a.cfg.NodeName, Port: in.ports[""], Ports: map[string]int{}}
	for k, v := range in.ports {
		if k != "" {
			vars.Ports[k] = v
		}
	}
	r, err := t.Render(vars)
	if err != nil {
		return supervisor.Spec{}, fmt.Errorf("%s: instance %d: %w", t.File, in.index, err)
	}
	env := r.Env
	if t.GPU.Count == 0 && len(t.GPU.IDs) == 0 && a.hasGPUs {
		env = hideGPUs(env)
	}
	cmd := supervisor.Command{
		Task: t.Name, Instance: in.index,
		Argv: r.Argv, Env: env, Dir: r.Workdir,
		User: t.User, Group: t.Group, Umask: t.Umask,
		Stdout: in.logs.Stdout(), Stderr: in.logs.Stderr(),
	}
	a.mu.Lock()
	in.svc = r.Service
	a.mu.Unlock()
	mon, err := a.monitorFor(in, r.Health, cmd)
	if err != nil {
		return supervisor.Spec{}, err
	}
	var hc supervisor.Health
	if mon != nil {
		hc = mon
	}
	// One seat per instance for its whole life, so that a new version of
	// the task (a restart) gives back what the old one held.
	var dev supervisor.Devices
	if t.GPU.Count > 0 || len(t.GPU.IDs) > 0 {
		if in.gpus == nil {
			in.gpus = a.newInstanceGPUs(t, in.index)
		}
		in.gpus.set(t)
		dev = in.gpus
	} else if in.gpus != nil {
		dev = in.gpus // keeps releasing what an older version held
		in.gpus.set(t)
	}
	return supervisor.Spec{
		Command: cmd,
		Health:  hc,
		Devices: dev,
		Restart: supervisor.RestartPolicy{
			Policy:       string(t.Restart.Policy),
			SuccessCodes: t.Restart.SuccessCodes,
			Delay:        t.Restart.Delay,
			MaxDelay:     t.Restart.MaxDelay,
			MinUptime:    t.Restart.MinUptime,
			Limit:        t.Restart.Limit,
			Window:       t.Restart.Window,
		},
		StopSignal:  t.Stop.Signal,
		StopTimeout: t.Stop.Timeout,
		Resources:   t.Resources,
	}, nil
}

func (a *Agent) openLogs(t *config.Task, i int) (*tasklog.Instance, error) {
	logs, err := tasklog.Open(a.cfg.LogDir, t.Name, i, logOptions(t, a.log))
	if err != nil {
		return nil, fmt.Errorf("open logs of %s: %w", instanceName(t.Name, i), err)
	}
	return logs, nil
}

func logOptions(t *config.Task, log *slog.Logger) tasklog.Options {
	return tasklog.Options{
		MaxSize:     t.Logs.MaxSize,
		MaxFiles:    t.Logs.MaxFiles,
		MaxAge:      t.Logs.MaxAge,
		RotateEvery: t.Logs.RotateEvery,
		Compress:    t.Logs.Compress,
		MergeStderr: t.Logs.MergeStderr,
		Logger:      log.With("task", t.Name),
	}
}

// pickPorts gives instance i its ports: base + i, or a free port the
// kernel picks when the base is 0. A picked port is free when picked; the
// worker binds it a moment later (the usual race of port 0 schemes).
func pickPorts(t *config.Task, i int) (map[string]int, error) {
	ports := map[string]int{}
	pick := func(name string, base int) error {
		switch {
		case base == config.NoPort:
			return nil
		case base > 0:
			ports[name] = base + i
			return nil
		}
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			return fmt.Errorf("%s: pick a free port for instance %d: %w", t.File, i, err)
		}
		defer l.Close()
		ports[name] = l.Addr().(*net.TCPAddr).Port
		return nil
	}
	if err := pick("", t.Port); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(t.Ports))
	for n := range t.Ports {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := pick(n, t.Ports[n]); err != nil {
			return nil, err
		}
	}
	return ports, nil
}

// samePorts reports whether old and new declare the same ports, so that
// instances keep the ports they have.
func samePorts(old, new *config.Task) bool {
	if old.Port != new.Port || len(old.Ports) != len(new.Ports) {
		return false
	}
	for k, v := range old.Ports {
		if w, ok := new.Ports[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// stopInstance stops in's worker and waits for it; errors are logged.
func (a *Agent) stopInstance(ctx context.Context, in *instance) {
	if err := in.runner.Stop(ctx); err != nil {
		a.log.Warn("stop failed", "task", in.runner.Status().Task, "instance", in.index, "err", err)
	}
}

// retire stops in, ends its runner goroutine and closes its logs.
func (a *Agent) retire(ctx context.Context, in *instance) {
	a.stopInstance(ctx, in)
	in.cancel()
	<-in.done
	in.close(a.log)
}

func (in *instance) close(log *slog.Logger) {
	if err := in.logs.Close(); err != nil {
		log.Warn("close logs", "instance", in.index, "err", err)
	}
}

// instancesOf returns a copy of t's instances, for calls made without Agent.mu.
func (a *Agent) instancesOf(t *task) []*instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*instance(nil), t.instances...)
}

// instanceName is TASK:INSTANCE as glmctl writes it.
func instanceName(task string, i int) string {
	return task + ":" + strconv.Itoa(i)
}
