package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/cron"
	"github.com/open-autoglm/glmd/internal/tasklog"
	"github.com/open-autoglm/glmd/supervisor"
)

// cronTask is a scheduled task: a cron.Job decides when runs start, and
// each attempt of a run is a supervisor.Runner of its own, with its own
// cgroup, GPUs and log files (<log_dir>/<task>/runs/<id>-<attempt>.*.log).
type cronTask struct {
	a      *Agent
	job    *cron.Job
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex // guards the fields below
	spec  *config.Task
	loc   *time.Location       // the zone spec's schedule is read in
	slots map[int]*cronAttempt // the attempts running now, by slot (their GLMD_INSTANCE)
}

// cronAttempt is one running attempt.
type cronAttempt struct {
	run    cron.Run
	runner *supervisor.Runner
	logs   *tasklog.Instance
	result chan cron.Result // cap 1
	ended  chan struct{}    // closed once the attempt is over and cleaned up
	stop   sync.Once
}

var _ cron.Starter = (*cronTask)(nil)

// cronSpec is the cron package's view of a task, in the agent's default
// zone when the task names none.
func (a *Agent) cronSpec(t *config.Task) (cron.Spec, error) {
	loc, err := t.Cron.Location(a.cronZone)
	if err != nil {
		return cron.Spec{}, err
	}
	sched, err := cron.Parse(t.Cron.Schedule, loc)
	if err != nil {
		return cron.Spec{}, err
	}
	return cron.Spec{
		Schedule:         sched,
		Concurrency:      cron.Concurrency(t.Cron.Concurrency),
		StartingDeadline: t.Cron.StartingDeadline,
		Jitter:           t.Cron.Jitter,
		Timeout:          t.Cron.Timeout,
		Retry:            cron.Retry{Attempts: t.Cron.Retry.Attempts, Delay: t.Cron.Retry.Delay, MaxDelay: t.Cron.Retry.MaxDelay},
		// A fleet task runs on the scheduler's node only (standalone: here).
		Suspend: t.Cron.Suspend || (t.Cron.Scope == config.CronFleet && a.leading.Load() == 0),
		History: t.Cron.History,
	}, nil
}

// startCron starts the scheduling loop of t.
func (a *Agent) startCron(t *config.Task) (*cronTask, error) {
	spec, err := a.cronSpec(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.File, err)
	}
	ct := &cronTask{a: a, spec: t, loc: spec.Schedule.Location(), slots: map[int]*cronAttempt{}, done: make(chan struct{})}
	ct.job, err = cron.New(cron.Options{
		Task: t.Name, Spec: spec, Starter: ct, History: a.cronHistory(), Log: a.log,
		OnEvent: a.onCronEvent,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(a.runCtx)
	ct.cancel = cancel
	go func() {
		defer close(ct.done)
		if err := ct.job.Run(ctx); err != nil {
			a.log.Error("cron task", "task", t.Name, "err", err)
		}
	}()
	return ct, nil
}

func (a *Agent) cronHistory() *cron.History {
	return cron.NewHistory(filepath.Join(a.cfg.StateDir, "cron"))
}

// setSpec applies a new version of the task: the schedule and policies at
// once, the command and everything else from the next run on.
func (ct *cronTask) setSpec(t *config.Task) error {
	spec, err := ct.a.cronSpec(t)
	if err != nil {
		return err
	}
	ct.mu.Lock()
	ct.spec, ct.loc = t, spec.Schedule.Location()
	ct.mu.Unlock()
	return ct.job.SetSpec(spec)
}

// stop kills the active runs (recorded as stopped, with why) and ends the
// scheduling loop.
func (ct *cronTask) stop(ctx context.Context, why string) {
	if err := ct.job.Kill(ctx, why); err != nil && !errors.Is(err, cron.ErrNotRunning) {
		ct.a.log.Warn("stop cron runs", "task", ct.spec.Name, "err", err)
	}
	ct.cancel()
	<-ct.done
}

// StartRun starts one attempt: a runner for it, in the task's next free
// slot (its instance number: cgroup <task>@<slot>, GLMD_INSTANCE), and
// returns once its process runs.
func (ct *cronTask) StartRun(ctx context.Context, r cron.Run) (cron.Handle, error) {
	a := ct.a
	ct.mu.Lock()
	spec := ct.spec
	slot := 0
	for ct.slots[slot] != nil {
		slot++
	}
	att := &cronAttempt{run: r, result: make(chan cron.Result, 1), ended: make(chan struct{})}
	ct.slots[slot] = att
	ct.mu.Unlock()
	fail := func(err error) (cron.Handle, error) {
		ct.mu.Lock()
		delete(ct.slots, slot)
		ct.mu.Unlock()
		return nil, err
	}

	opts := logOptions(spec, a.log)
	opts.FileName = fmt.Sprintf("runs/%d-%d", r.ID, r.Attempt)
	logs, err := tasklog.Open(a.cfg.LogDir, spec.Name, slot, opts)
	if err != nil {
		return fail(err)
	}
	ports, err := pickPorts(spec, slot)
	if err != nil {
		logs.Close()
		return fail(err)
	}
	in := &instance{index: slot, logs: logs, ports: ports, spec: spec, hash: spec.Hash(), gpus: a.newInstanceGPUs(spec, slot)}
	rs, err := a.runnerSpec(spec, in)
	if err != nil {
		logs.Close()
		return fail(fmt.Errorf("%w: %w", cron.ErrPermanent, err))
	}
	if blocked, _ := a.cgroupVerdict(spec); blocked != "" {
		logs.Close()
		return fail(fmt.Errorf("%w: %s", cron.ErrPermanent, blocked))
	}
	rs.Command.Env = append(rs.Command.Env, "GLMD_RUN_ID="+strconv.FormatUint(r.ID, 10), "GLMD_RUN_ATTEMPT="+strconv.Itoa(r.Attempt))
	rs.Restart.Policy = string(config.RestartNever) // [retry] decides, through the Job
	runner := supervisor.NewRunner(rs, supervisor.Options{
		Launcher: a.launcher,
		Log:      a.log.With("task", spec.Name, "run", r.ID, "attempt", r.Attempt),
		Notify:   att.notify,
		Cgroups:  a.cgroups,
	})
	// Status reads the attempts under ct.mu (newest).
	ct.mu.Lock()
	att.logs, att.runner = logs, runner
	ct.mu.Unlock()
	rctx, cancel := context.WithCancel(a.runCtx)
	go att.runner.Run(rctx)
	why := fmt.Sprintf("run %d attempt %d (%s)", r.ID, r.Attempt, r.Trigger)
	if err := att.runner.RestartFor(ctx, "", why); err != nil {
		// Not started (a missing binary, GPUs held by others): the Job
		// records it and retries per [retry].
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		att.runner.Stop(sctx)
		scancel()
		cancel()
		<-att.runner.Done()
		logs.Close()
		if errors.Is(err, supervisor.ErrPermanent) {
			err = fmt.Errorf("%w: %w", cron.ErrPermanent, err)
		}
		return fail(err)
	}
	go func() {
		<-att.ended
		cancel()
		<-att.runner.Done()
		if err := logs.Close(); err != nil {
			a.log.Warn("close run logs", "task", spec.Name, "run", r.ID, "err", err)
		}
		ct.mu.Lock()
		delete(ct.slots, slot)
		ct.mu.Unlock()
	}()
	return att, nil
}

// notify sees the attempt's state changes (on the runner's goroutine):
// once it has ended for good, its result goes to the Job.
func (att *cronAttempt) notify(e supervisor.Event) {
	if !e.State.Ended() || e.Exit == nil {
		return
	}
	res := cron.Result{ExitCode: e.Exit.Code, Signal: e.Exit.Signal}
	if e.Exit.Reason != supervisor.ReasonExited && e.Exit.Reason != supervisor.ReasonSignal {
		res.Message = e.Exit.Reason
	}
	select {
	case att.result <- res:
		close(att.ended)
	default:
	}
}

// Logs returns the attempt's log files.
func (att *cronAttempt) Logs() cron.Logs {
	return cron.Logs{Stdout: att.logs.Path(tasklog.Stdout), Stderr: att.logs.Path(tasklog.Stderr)}
}

// Done receives the attempt's result once every process of it is gone.
func (att *cronAttempt) Done() <-chan cron.Result { return att.result }

// Stop ends the attempt as a stop of the task would: stop signal, grace,
// SIGKILL of its whole cgroup. It does not wait.
func (att *cronAttempt) Stop(reason string) {
	att.stop.Do(func() {
		// Stop returns once the attempt has stopped, or at once when its
		// runner is gone.
		go func() { _ = att.runner.Stop(context.Background()) }()
	})
}

// onCronEvent turns what a Job did into a glmd event.
func (a *Agent) onCronEvent(e cron.Event) {
	r := e.Record
	var msg string
	switch e.Kind {
	case cron.EventStarted:
		msg = fmt.Sprintf("run %d attempt %d started (%s)", r.ID, r.Attempt, r.Trigger)
	case cron.EventEnded:
		msg = fmt.Sprintf("run %d attempt %d: %s after %s", r.ID, r.Attempt, r.Reason, r.Duration().Round(time.Millisecond))
		if r.Message != "" {
			msg += ": " + r.Message
		}
	case cron.EventSkipped:
		msg = fmt.Sprintf("run %d skipped: %s", r.ID, r.Message)
	case cron.EventMissed:
		msg = fmt.Sprintf("%d runs missed from %s (beyond starting_deadline)", r.Missed, r.Scheduled.Format(time.RFC3339))
	case cron.EventRetry:
		msg = fmt.Sprintf("run %d attempt %d failed; retry at %s", r.ID, r.Attempt, e.RetryAt.Format(time.RFC3339))
	default:
		msg = fmt.Sprintf("run %d: %s", r.ID, e.Kind)
	}
	a.log.Info("cron: "+msg, "task", e.Task)
	a.publish(api.Event{Type: "cron", Task: e.Task, Instance: -1, Message: msg})
}

// newCron starts a scheduled task; one that cannot start is reported.
func (a *Agent) newCron(t *config.Task) *cronTask {
	ct, err := a.startCron(t)
	if err != nil {
		a.log.Error("start scheduled task", "task", t.Name, "err", err)
		a.publish(api.Event{Type: "agent", Task: t.Name, Instance: -1, State: "failed", Message: err.Error()})
		return nil
	}
	return ct
}

// updateCron applies a new version of a task that is or was scheduled.
// Between kinds it is a replacement; between versions of a scheduled task
// the Job takes the new spec, and the next run the new command.
func (a *Agent) updateCron(ctx context.Context, t *task, spec *config.Task) {
	a.cancelRollout(t)
	a.mu.Lock()
	old, ct, ins := t.spec, t.cron, t.instances
	t.spec, t.hash, t.invalid = spec, spec.Hash(), ""
	a.mu.Unlock()
	if old.Kind == config.KindCron && spec.Kind == config.KindCron && ct != nil && spec.Enabled {
		if err := ct.setSpec(spec); err != nil {
			a.log.Error("update scheduled task", "task", spec.Name, "err", err)
		}
		return
	}
	// Another kind, or enabled changed: out with the old, in with the new.
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Go(func() { a.retire(ctx, in) })
	}
	if ct != nil {
		wg.Go(func() { ct.stop(ctx, "task changed") })
	}
	wg.Wait()
	cron, ins := a.populate(spec)
	a.mu.Lock()
	t.cron, t.instances, t.startAsked = cron, ins, false
	a.mu.Unlock()
}
