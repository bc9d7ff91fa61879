package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/cron"
	"github.com/open-autoglm/glmd/internal/tasklog"
)

// cronTaskOf finds the scheduled task name.
func (a *Agent) cronTaskOf(name string) (*cronTask, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tasks[name]
	switch {
	case t == nil:
		return nil, fmt.Errorf("task %q: %w (glmctl status lists the tasks)", name, api.ErrNotFound)
	case t.spec.Kind != config.KindCron:
		return nil, fmt.Errorf("task %q is a %s, not a scheduled task (kind = \"cron\"): %w", name, t.spec.Kind, api.ErrConflict)
	case t.cron == nil:
		return nil, fmt.Errorf("task %q is disabled (enabled = false in %s): %w", name, t.spec.File, api.ErrConflict)
	}
	return t.cron, nil
}

// Runs returns the run history of a scheduled task, oldest first. A task
// that is gone still has its history until it is removed from state_dir.
func (a *Agent) Runs(ctx context.Context, name string) ([]api.CronRun, error) {
	th, err := a.cronHistory().Read(name)
	if err != nil {
		return nil, err
	}
	if len(th.Runs) == 0 {
		if _, err := a.cronTaskOf(name); err != nil {
			return nil, err
		}
	}
	out := make([]api.CronRun, len(th.Runs))
	for i, r := range th.Runs {
		out[i] = api.CronRun{
			ID: r.ID, Attempt: r.Attempt, Trigger: string(r.Trigger), Scheduled: timePtr(r.Scheduled),
			Start: timePtr(r.Start), End: timePtr(r.End), ExitCode: r.ExitCode, Signal: r.Signal,
			Result: string(r.Reason), Message: r.Message, Stdout: r.Logs.Stdout, Stderr: r.Logs.Stderr, Missed: r.Missed,
		}
	}
	return out, nil
}

// RunNow starts a run of a scheduled task now, also while it is suspended.
func (a *Agent) RunNow(ctx context.Context, name string) (uint64, error) {
	ct, err := a.cronTaskOf(name)
	if err != nil {
		return 0, err
	}
	r, err := ct.job.RunNow(ctx)
	if errors.Is(err, cron.ErrRunActive) {
		return 0, fmt.Errorf("%w: %w (concurrency = \"forbid\"; glmctl stop %s ends it)", err, api.ErrConflict, name)
	}
	if err != nil {
		return 0, err
	}
	return r.ID, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// cronRow is the status row of a scheduled task: running while an
// attempt runs, else how the last run ended, with the next run.
func (a *Agent) cronRow(t *task) api.InstanceStatus {
	st := t.cron.job.Status()
	row := api.InstanceStatus{Task: t.spec.Name, Instance: 0, State: "pending", GPUs: []string{},
		Kind: string(t.spec.Kind), File: t.spec.File, Since: a.started}
	if !st.NextStart.IsZero() {
		row.NextRun = timePtr(st.NextStart)
	}
	if att := t.cron.newest(); att != nil {
		rs := att.runner.Status()
		row.State, row.PID, row.Since, row.StartedAt = rs.State.String(), rs.PID, rs.Since, timePtr(rs.StartedAt)
		if len(rs.Devices) > 0 {
			row.GPUs = rs.Devices
		}
		row.Message = fmt.Sprintf("run %d attempt %d (%s)", att.run.ID, att.run.Attempt, att.run.Trigger)
	} else if last := st.Last; last.ID != 0 {
		row.State = "failed"
		if last.Reason == cron.ReasonSuccess {
			row.State = "exited"
		}
		row.Since = last.End
		row.LastExit = api.Exit{Code: max(last.ExitCode, 0), Signal: last.Signal, Reason: string(last.Reason)}
		row.Message = fmt.Sprintf("last run %d: %s after %s", last.ID, last.Reason, st.LastDuration.Round(time.Second))
	} else {
		row.Message = "no run yet"
	}
	switch {
	case t.spec.Cron.Scope == config.CronFleet && a.leading.Load() == 0:
		row.Message += "; scope = fleet: runs on the scheduler's node only, and this node does not hold the role (glmctl leader)"
	case st.Suspended:
		row.Message += "; suspended (glmctl run starts one now)"
	case row.NextRun != nil:
		row.Message += "; next " + row.NextRun.In(t.cron.zone()).Format("2006-01-02 15:04:05 MST")
	}
	return row
}

// newest returns the attempt started last, or nil.
func (ct *cronTask) newest() *cronAttempt {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	var out *cronAttempt
	for _, att := range ct.slots {
		if att.runner != nil && (out == nil || att.run.ID > out.run.ID || (att.run.ID == out.run.ID && att.run.Attempt > out.run.Attempt)) {
			out = att
		}
	}
	return out
}

// zone is the time zone the task's schedule is read in.
func (ct *cronTask) zone() *time.Location {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.loc
}

// runLogs is the log of the newest attempt, for glmctl logs on a
// scheduled task.
func (ct *cronTask) runLogs() *tasklog.Instance {
	if att := ct.newest(); att != nil {
		return att.logs
	}
	return nil
}

// cronOf returns t's scheduling loop, read under the lock.
func (a *Agent) cronOf(t *task) *cronTask {
	a.mu.Lock()
	defer a.mu.Unlock()
	return t.cron
}

// cronLogs shows the log of the running attempt, or of the last one.
func (a *Agent) cronLogs(ctx context.Context, ct *cronTask, req api.LogRequest) (io.ReadCloser, error) {
	if logs := ct.runLogs(); logs != nil {
		return streamLogs(ctx, logs, req)
	}
	th, err := a.cronHistory().Read(ct.job.Status().Task)
	if err != nil {
		return nil, err
	}
	for i := len(th.Runs) - 1; i >= 0; i-- {
		p := th.Runs[i].Logs.Stdout
		if req.Stream == api.StreamStderr {
			p = th.Runs[i].Logs.Stderr
		}
		if p == "" {
			continue
		}
		// A stream that never wrote has no file: an empty log.
		tail, err := tasklog.TailFile(p, req.Lines)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("logs of %s: %w", th.Task, err)
		}
		return io.NopCloser(bytes.NewReader(tail)), nil
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}
