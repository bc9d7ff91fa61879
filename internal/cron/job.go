package cron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Options configure a Job.
type Options struct {
	Task    string
	Spec    Spec
	Starter Starter
	History *History
	Clock   Clock      // nil: RealClock()
	Rand    *rand.Rand // jitter of fire times and retries; nil: seeded at random. Used by the Job's goroutine only.
	Log     *slog.Logger
	// OnEvent, when set, is called on the Job's goroutine for every started, ended, skipped or missed run and
	// every retry scheduled, in order. It must not block, nor call the Job's methods other than Status.
	OnEvent func(Event)
}

// Job runs one cron task: it waits for the fire times of the schedule, starts runs through the Starter under the
// concurrency policy, enforces the timeout, retries failures and keeps the history. Run is its loop; the other
// methods are safe to call from any goroutine.
type Job struct {
	task    string
	starter Starter
	hist    *History
	clock   Clock
	rnd     *rand.Rand
	log     *slog.Logger
	onEvent func(Event)
	cmds    chan func(*loop)

	// counts are Status.Runs as the loop keeps them; only the loop's
	// goroutine touches them, publish copies them.
	counts map[Reason]uint64

	mu     sync.Mutex // guards the fields below
	spec   Spec
	alive  chan struct{} // non-nil while Run runs; closed when its loop takes no more commands
	status Status
}

// Status is a snapshot of a Job, for glmctl status and for the metrics collector, which reads it at scrape time.
type Status struct {
	Task      string `json:"task"`
	Schedule  string `json:"schedule"` // the expression
	Timezone  string `json:"timezone"`
	Suspended bool   `json:"suspended"`
	// Next is the next fire time of the schedule; zero when suspended, when the Job is not running, or when the
	// schedule never fires again. NextStart is Next plus its jitter: when the run will start.
	Next      time.Time   `json:"next,omitzero"`
	NextStart time.Time   `json:"next_start,omitzero"`
	Active    []ActiveRun `json:"active"` // oldest first
	// Last is the newest attempt that has ended (zero ID when none); LastDuration is how long it ran.
	Last         Record        `json:"last,omitzero"`
	LastDuration time.Duration `json:"last_duration_ns"`
	LastSuccess  time.Time     `json:"last_success,omitzero"` // end of the newest successful attempt, kept across restarts
	// Runs counts, since the Job was created, ended attempts by reason and fire times that did not run (skipped,
	// missed; a missed record of n fire times counts n): glmd_cron_runs_total{result}.
	Runs map[Reason]uint64 `json:"runs"`
}

// ActiveRun is a run that is not over: an attempt running, a retry pending, or (under Replace) a run waiting for
// the runs it replaces to end.
type ActiveRun struct {
	Run     Run       `json:"run"`
	State   string    `json:"state"`             // "running", "retrying" or "waiting"
	Started time.Time `json:"started,omitzero"`  // start of the current attempt; zero unless running
	RetryAt time.Time `json:"retry_at,omitzero"` // when retrying
	Logs    Logs      `json:"logs,omitzero"`
}

// New returns a Job for the task; nothing runs before Run.
func New(o Options) (*Job, error) {
	switch {
	case o.Task == "":
		return nil, errors.New("cron: new job: no task name")
	case o.Starter == nil:
		return nil, fmt.Errorf("cron: new job %s: no Starter", o.Task)
	case o.History == nil:
		return nil, fmt.Errorf("cron: new job %s: no History", o.Task)
	}
	if err := o.Spec.Validate(); err != nil {
		return nil, fmt.Errorf("cron job %s: %w", o.Task, err)
	}
	if o.Clock == nil {
		o.Clock = RealClock()
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	j := &Job{
		task:    o.Task,
		starter: o.Starter,
		hist:    o.History,
		clock:   o.Clock,
		rnd:     o.Rand,
		log:     o.Log.With("task", o.Task),
		onEvent: o.OnEvent,
		cmds:    make(chan func(*loop)),
		spec:    o.Spec,
	}
	j.counts = map[Reason]uint64{}
	j.status = Status{Task: o.Task, Runs: map[Reason]uint64{}}
	j.status.setSpec(o.Spec)
	return j, nil
}

func (s *Status) setSpec(spec Spec) {
	s.Schedule = spec.Schedule.String()
	s.Timezone = spec.Schedule.Location().String()
	s.Suspended = spec.Suspend
}

// Run schedules the task until ctx ends, then returns nil. Cancelling ctx means glmd is stopping, not that the task
// must die: active runs keep going and are not waited for; a later Run records them as "unknown" (call Kill first
// to stop them). Run may be called again after it returned, not twice at once.
func (j *Job) Run(ctx context.Context) error {
	j.mu.Lock()
	if j.alive != nil {
		j.mu.Unlock()
		return fmt.Errorf("cron: job %s: Run is already running", j.task)
	}
	alive := make(chan struct{})
	j.alive = alive
	spec := j.spec
	j.mu.Unlock()

	l := newLoop(ctx, j, spec)
	defer func() {
		j.mu.Lock()
		close(alive)
		j.alive = nil
		j.status.Next, j.status.NextStart = time.Time{}, time.Time{}
		j.mu.Unlock()
	}()
	l.start()
	for {
		l.wake()
		l.publish()
		l.releaseKills()
		select {
		case <-ctx.Done():
			l.shutdown()
			return nil
		case <-l.timerC():
			l.timer = nil
		case f := <-j.cmds:
			f(l)
		case ev := <-l.events:
			l.attemptEvent(ev)
		}
	}
}

// do runs f on the loop and waits for it; ErrNotRunning when Run is not running. It returns the channel that
// closes when that Run ends.
func (j *Job) do(ctx context.Context, f func(*loop)) (alive <-chan struct{}, err error) {
	j.mu.Lock()
	a := j.alive
	j.mu.Unlock()
	if a == nil {
		return nil, fmt.Errorf("%w (task %s)", ErrNotRunning, j.task)
	}
	done := make(chan struct{})
	select {
	case j.cmds <- func(l *loop) { f(l); l.publish(); close(done) }:
	case <-a:
		return nil, fmt.Errorf("%w (task %s)", ErrNotRunning, j.task)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-done // the loop runs f before it takes anything else
	return a, nil
}

// RunNow starts a manual run at once, also while suspended, under the concurrency policy: with Forbid and a run
// active it fails with ErrRunActive; with Replace the active runs are stopped and the new one starts when they have
// ended. It returns once the run is accepted; whether the start itself worked shows in the history and events.
func (j *Job) RunNow(ctx context.Context) (Run, error) {
	var r Run
	var lerr error
	_, err := j.do(ctx, func(l *loop) {
		now := l.now()
		r, lerr = l.launch(TriggerManual, now, now)
		l.save()
	})
	if err != nil {
		return Run{}, fmt.Errorf("run %s now: %w", j.task, err)
	}
	if lerr != nil {
		return Run{}, fmt.Errorf("run %s now: %w", j.task, lerr)
	}
	return r, nil
}

// SetSpec applies a reloaded spec. A changed schedule or zone, or the end of a suspension, recomputes the next
// fire time from now (fire times passed meanwhile are not caught up); Suspend drops the next fire time. Active
// runs are left alone: they keep the timeout they started with, and pending retries still happen.
func (j *Job) SetSpec(spec Spec) error {
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("cron job %s: %w", j.task, err)
	}
	_, err := j.do(context.Background(), func(l *loop) { l.setSpec(spec) })
	if errors.Is(err, ErrNotRunning) {
		j.mu.Lock()
		j.spec = spec
		j.status.setSpec(spec)
		j.mu.Unlock()
		return nil
	}
	return err
}

// Kill stops every active run of the task: running attempts get Handle.Stop and are recorded as stopped (message:
// reason), pending retries and waiting runs are dropped. It returns once those runs have ended and are recorded, or
// with ctx's error. Scheduling goes on; to remove a task, Kill it, then cancel Run's context. Without Run running
// there is nothing it can stop: ErrNotRunning.
func (j *Job) Kill(ctx context.Context, reason string) error {
	var wait chan struct{}
	alive, err := j.do(ctx, func(l *loop) { wait = l.kill(reason) })
	if err != nil {
		return fmt.Errorf("kill cron runs of %s: %w", j.task, err)
	}
	select {
	case <-wait:
		return nil
	case <-alive:
		select {
		case <-wait:
			return nil
		default:
		}
		return fmt.Errorf("kill cron runs of %s: %w before they ended", j.task, ErrNotRunning)
	case <-ctx.Done():
		return fmt.Errorf("kill cron runs of %s: %w", j.task, ctx.Err())
	}
}

// Status returns a snapshot; the slices and map are copies.
func (j *Job) Status() Status {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.status
	s.Active = slices.Clone(s.Active)
	s.Runs = maps.Clone(s.Runs)
	return s
}
