package cron

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// maxSleep bounds each wait of the loop, so that a wall clock stepped by NTP or a host that slept is noticed within
// a minute: timers count monotonic time, fire times are wall-clock instants.
const maxSleep = time.Minute

// missCap bounds how many missed fire times are counted one by one (an every-second schedule after days of
// downtime); beyond it the record says "more than".
const missCap = 10000

// The states of an active run.
const (
	stateRunning  = "running"
	stateRetrying = "retrying"
	stateWaiting  = "waiting"
)

// run is an active run, owned by the loop.
type run struct {
	Run              // the current (or next) attempt
	state   string   // stateRunning, stateRetrying, stateWaiting
	waitFor []uint64 // stateWaiting: IDs of the replaced runs still ending
	retryAt time.Time

	// The current attempt, in stateRunning.
	handle   Handle // nil until StartRun returned
	started  time.Time
	deadline time.Time     // zero without timeout
	timeout  time.Duration // the Spec.Timeout it started with
	logs     Logs
	// The first stop asked for: Handle.Stop's reason, the Reason to record and its message.
	stopReason string
	stopKind   Reason
	stopMsg    string
}

// attemptEvent is what an attempt's goroutine reports: the handle once started, then the end (a start error, a
// result, or Done closed without one).
type attemptEvent struct {
	r       *run
	attempt int
	handle  Handle
	err     error
	result  Result
	ended   bool
}

// killWait is a Kill waiting for the runs it stopped.
type killWait struct {
	ids  []uint64
	done chan struct{}
}

// loop is the state of one Run call, touched only by its goroutine (the attempt goroutines only send events).
type loop struct {
	j    *Job
	ctx  context.Context
	spec Spec // with defaults
	th   TaskHistory

	next    time.Time // next fire time; zero when suspended or none
	fireAt  time.Time // next plus jitter
	catchUp bool      // next was already due when Run started

	runs  []*run // active, by ID
	kills []killWait

	timer   Timer
	timerAt time.Time

	events chan attemptEvent
	quit   chan struct{}
	wg     sync.WaitGroup

	saveFailing bool
}

func newLoop(ctx context.Context, j *Job, spec Spec) *loop {
	return &loop{
		j:      j,
		ctx:    ctx,
		spec:   spec.withDefaults(),
		events: make(chan attemptEvent),
		quit:   make(chan struct{}),
	}
}

func (l *loop) now() time.Time { return l.j.clock.Now() }

// scheduleKey names the schedule in the history, so that a schedule changed while glmd was down is not caught up.
func scheduleKey(s Schedule) string { return s.String() + " " + s.Location().String() }

// start loads the history and finds the first fire time: the one after the last handled, when the history has one
// for this schedule (a fire time already due is then a catch-up), else the one after now.
func (l *loop) start() {
	now := l.now()
	th, err := l.j.hist.Read(l.j.task)
	if err != nil {
		l.j.log.Error("cron history unreadable, starting a new one", "err", err)
		l.j.hist.setAside(l.j.task)
		th = TaskHistory{}
	}
	th.Task = l.j.task
	if th.NextID == 0 {
		th.NextID = 1
	}
	for i := range th.Runs {
		if th.Runs[i].Active() {
			th.Runs[i].Reason = ReasonUnknown
			th.Runs[i].Message = "glmd stopped while this run was active; its end was not seen"
		}
	}
	l.th = th
	key := scheduleKey(l.spec.Schedule)
	switch {
	case l.spec.Suspend:
		l.th.LastScheduled = now
	case !th.LastScheduled.IsZero() && th.Schedule == key && !th.LastScheduled.After(now):
		l.next = l.spec.Schedule.Next(th.LastScheduled)
		l.catchUp = !l.next.IsZero() && !l.next.After(now)
		l.fireAt = l.next
		if !l.catchUp {
			l.fireAt = l.next.Add(l.jitter())
		}
	default:
		// Never ran, another schedule, or a last fire time in the future (the clock was set back): start afresh.
		l.setNext(now)
	}
	l.th.Schedule = key
	l.save()
}

// setNext sets the next fire time after t, with a fresh jitter.
func (l *loop) setNext(t time.Time) {
	l.catchUp = false
	l.next = l.spec.Schedule.Next(t)
	l.fireAt = time.Time{}
	if !l.next.IsZero() {
		l.fireAt = l.next.Add(l.jitter())
	}
}

func (l *loop) jitter() time.Duration {
	if l.spec.Jitter <= 0 {
		return 0
	}
	return time.Duration(l.j.rnd.Int64N(int64(l.spec.Jitter)))
}

// shutdown ends the loop because glmd stops: attempt goroutines stop watching (their runs keep going), and the
// history keeps them as active.
func (l *loop) shutdown() {
	if l.timer != nil {
		l.timer.Stop()
	}
	close(l.quit)
	l.wg.Wait()
	if l.spec.Suspend {
		l.th.LastScheduled = l.now()
	}
	l.save()
}

// timerC returns the channel of the loop's timer after arming it for the earliest thing due: the fire time, a
// retry, a timeout; at most maxSleep ahead. nil (never ready) when nothing is due.
func (l *loop) timerC() <-chan time.Time {
	var at time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	earlier(l.fireAt)
	for _, r := range l.runs {
		switch {
		case r.state == stateRetrying:
			earlier(r.retryAt)
		case r.state == stateRunning && r.stopReason == "":
			earlier(r.deadline)
		}
	}
	if l.timer != nil && at.Equal(l.timerAt) {
		return l.timer.C()
	}
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if at.IsZero() {
		return nil
	}
	l.timerAt = at
	l.timer = l.j.clock.NewTimer(min(at.Sub(l.now()), maxSleep))
	return l.timer.C()
}

// wake does what is due: retries, timeouts, the fire time.
func (l *loop) wake() {
	now := l.now()
	for _, r := range l.runs {
		switch {
		case r.state == stateRetrying && !now.Before(r.retryAt):
			l.startAttempt(r, r.Attempt+1, TriggerRetry, now)
		case r.state == stateRunning && r.stopReason == "" && !r.deadline.IsZero() && !now.Before(r.deadline):
			l.stop(r, ReasonTimeout, "timeout", fmt.Sprintf("ran longer than its timeout of %s", r.timeout))
		}
	}
	if !l.next.IsZero() && !now.Before(l.fireAt) {
		l.fire(now)
	}
}

// fire handles the fire times due at now, from l.next on. Usually there is one, on time. When the loop was late
// (glmd was down, the host slept, the clock jumped) there may be many: the latest starts if it is within the
// starting deadline (a catch-up), the others are recorded as one missed record.
func (l *loop) fire(now time.Time) {
	latest, count, capped := dueFires(l.spec.Schedule, l.next, now)
	late := now.Sub(latest)
	if count == 1 && !l.catchUp {
		late = now.Sub(l.fireAt) // the jitter was meant
	}
	trigger := TriggerSchedule
	if l.catchUp || count > 1 {
		trigger = TriggerCatchUp
	}
	runIt := late <= l.spec.StartingDeadline
	if missed := count - btoi(runIt); missed > 0 {
		l.recordMissed(l.next, missed, capped, now)
	}
	l.th.LastScheduled = latest
	l.setNext(latest)
	if runIt {
		if _, err := l.launch(trigger, latest, now); err != nil {
			l.j.log.Error("cron run not started", "err", err) // not reachable: only manual runs fail here
		}
	}
	l.save()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// dueFires counts the fire times from first (due) to now and returns the latest; capped when there were more than
// missCap and the count stopped there.
func dueFires(s Schedule, first, now time.Time) (latest time.Time, count int, capped bool) {
	latest, count = first, 1
	for ; count < missCap; count++ {
		n := s.Next(latest)
		if n.IsZero() || n.After(now) {
			return latest, count, false
		}
		latest = n
	}
	// Too many to walk: look back from now in doubling windows for a fire time, then walk the few after it.
	for w := time.Second; now.Add(-w).After(latest); w *= 2 {
		if n := s.Next(now.Add(-w)); !n.IsZero() && !n.After(now) {
			latest = n
			break
		}
	}
	for n := s.Next(latest); !n.IsZero() && !n.After(now); n = s.Next(latest) {
		latest = n
	}
	return latest, count, true
}

// launch starts a run under the concurrency policy; under Forbid with a run active, a scheduled run is recorded as
// skipped and a manual one fails with ErrRunActive.
func (l *loop) launch(trigger Trigger, scheduled, now time.Time) (Run, error) {
	var waitFor []uint64
	switch l.spec.Concurrency {
	case Forbid:
		if len(l.runs) > 0 {
			a := l.runs[0]
			if trigger == TriggerManual {
				return Run{}, fmt.Errorf("%w (run %d, %s, %s)", ErrRunActive, a.ID, a.state, describeSince(a, now))
			}
			l.recordSkipped(trigger, scheduled, now, a)
			return Run{}, nil
		}
	case Replace:
		id := l.th.NextID // the ID the new run gets, for the messages
		for _, r := range slices.Clone(l.runs) {
			switch r.state {
			case stateWaiting:
				waitFor = append(waitFor, r.waitFor...)
				l.finishUnstarted(r, ReasonReplaced, fmt.Sprintf("replaced by run %d before it started", id), now)
			case stateRetrying:
				l.dropRetry(r, fmt.Sprintf("replaced by run %d", id))
			case stateRunning:
				waitFor = append(waitFor, r.ID)
				l.stop(r, ReasonReplaced, "replaced", fmt.Sprintf("replaced by run %d", id))
			}
		}
	}
	r := &run{Run: Run{Task: l.j.task, ID: l.newID(), Attempt: 1, Trigger: trigger, Scheduled: scheduled}}
	l.runs = append(l.runs, r)
	if len(waitFor) > 0 {
		r.state, r.waitFor = stateWaiting, waitFor
		l.j.log.Info("cron run waits for the runs it replaces", "run", r.ID, "replaced", waitFor)
		return r.Run, nil
	}
	l.startAttempt(r, 1, trigger, now)
	return r.Run, nil
}

func describeSince(r *run, now time.Time) string {
	switch r.state {
	case stateRunning:
		return "for " + now.Sub(r.started).Round(time.Second).String()
	case stateRetrying:
		return "next attempt at " + r.retryAt.Format(time.RFC3339)
	}
	return "waiting for the runs it replaces"
}

func (l *loop) newID() uint64 {
	id := l.th.NextID
	l.th.NextID++
	return id
}

// startAttempt records the attempt and starts it on its own goroutine.
func (l *loop) startAttempt(r *run, attempt int, trigger Trigger, now time.Time) {
	r.Attempt, r.Trigger = attempt, trigger
	r.state, r.waitFor, r.retryAt = stateRunning, nil, time.Time{}
	r.handle, r.logs, r.started, r.deadline = nil, Logs{}, now, time.Time{}
	r.stopReason, r.stopKind, r.stopMsg = "", "", ""
	if r.timeout = l.spec.Timeout; r.timeout > 0 {
		r.deadline = now.Add(r.timeout)
	}
	l.th.Runs = append(l.th.Runs, Record{
		ID: r.ID, Attempt: attempt, Trigger: trigger, Scheduled: r.Scheduled, Start: now, ExitCode: -1,
	})
	l.save()
	run := r.Run
	l.wg.Go(func() { l.watch(r, run) })
}

// watch starts one attempt and waits for its end, reporting both to the loop. When the loop quits (glmd stops) it
// returns at once and leaves the attempt running.
func (l *loop) watch(r *run, run Run) {
	h, err := l.j.starter.StartRun(l.ctx, run)
	if err != nil {
		l.send(attemptEvent{r: r, attempt: run.Attempt, err: err, ended: true})
		return
	}
	if !l.send(attemptEvent{r: r, attempt: run.Attempt, handle: h}) {
		return
	}
	select {
	case res, ok := <-h.Done():
		ev := attemptEvent{r: r, attempt: run.Attempt, result: res, ended: true}
		if !ok {
			ev.err = errors.New("the run ended without a result")
		}
		l.send(ev)
	case <-l.quit:
	}
}

func (l *loop) send(ev attemptEvent) bool {
	select {
	case l.events <- ev:
		return true
	case <-l.quit:
		return false
	}
}

// attemptEvent handles what an attempt goroutine reported.
func (l *loop) attemptEvent(ev attemptEvent) {
	r := ev.r
	if !slices.Contains(l.runs, r) || r.state != stateRunning || r.Attempt != ev.attempt {
		return // not reachable: an attempt reports only while its run waits for it
	}
	rec := l.record(r.ID, r.Attempt)
	if !ev.ended {
		r.handle, r.logs = ev.handle, ev.handle.Logs()
		rec.Logs = r.logs
		if r.stopReason != "" {
			r.handle.Stop(r.stopReason) // asked while it was starting
		}
		l.save()
		l.j.log.Info("cron run started", "run", r.ID, "attempt", r.Attempt, "trigger", r.Trigger)
		l.emit(Event{Kind: EventStarted, Record: *rec})
		return
	}
	now := l.now()
	rec.End = now
	rec.ExitCode, rec.Signal = ev.result.ExitCode, ev.result.Signal
	retry := false
	switch {
	case ev.err != nil && r.handle == nil:
		rec.Reason, rec.ExitCode = ReasonFailed, -1
		rec.Message = "start: " + ev.err.Error()
		retry = !errors.Is(ev.err, ErrPermanent)
	case r.stopKind != "":
		rec.Reason, rec.Message = r.stopKind, joinMsg(r.stopMsg, ev.result.Message)
	case ev.err != nil:
		rec.Reason, rec.Message, retry = ReasonFailed, ev.err.Error(), true
	case ev.result.success():
		rec.Reason, rec.Message = ReasonSuccess, ev.result.Message
		l.th.LastSuccess = now
	default:
		rec.Reason, retry = ReasonFailed, true
		rec.Message = joinMsg(describeExit(ev.result), ev.result.Message)
	}
	l.count(rec.Reason, 1)
	l.j.log.Info("cron run ended", "run", r.ID, "attempt", r.Attempt, "reason", rec.Reason,
		"exit_code", rec.ExitCode, "signal", rec.Signal, "duration", rec.Duration())
	ended := *rec
	if retry && r.stopKind == "" && r.Attempt <= l.spec.Retry.Attempts {
		r.state, r.handle = stateRetrying, nil
		r.retryAt = now.Add(l.spec.Retry.RetryDelay(r.Attempt, l.j.rnd))
		l.emit(Event{Kind: EventEnded, Record: ended})
		l.emit(Event{Kind: EventRetry, Record: ended, RetryAt: r.retryAt})
		l.save()
		return
	}
	l.emit(Event{Kind: EventEnded, Record: ended})
	l.remove(r, now)
	l.save()
}

func describeExit(res Result) string {
	if res.Signal != "" {
		return "killed by " + res.Signal
	}
	return fmt.Sprintf("exit code %d", res.ExitCode)
}

func joinMsg(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// record returns the history record of an attempt, adding it when trimming dropped it.
func (l *loop) record(id uint64, attempt int) *Record {
	for i := len(l.th.Runs) - 1; i >= 0; i-- {
		if l.th.Runs[i].ID == id && l.th.Runs[i].Attempt == attempt {
			return &l.th.Runs[i]
		}
	}
	l.th.Runs = append(l.th.Runs, Record{ID: id, Attempt: attempt, ExitCode: -1})
	return &l.th.Runs[len(l.th.Runs)-1]
}

// stop asks a running attempt to end; only the first request counts.
func (l *loop) stop(r *run, kind Reason, reason, msg string) {
	if r.stopReason != "" {
		return
	}
	r.stopReason, r.stopKind, r.stopMsg = reason, kind, msg
	l.j.log.Info("cron run stopping", "run", r.ID, "attempt", r.Attempt, "reason", reason)
	if r.handle != nil {
		r.handle.Stop(reason)
	}
}

// dropRetry ends a run that waits for a retry: its failed attempt stays the last word, with why no retry follows.
func (l *loop) dropRetry(r *run, why string) {
	rec := l.record(r.ID, r.Attempt)
	rec.Message = joinMsg(rec.Message, "retry dropped: "+why)
	l.remove(r, l.now())
}

// finishUnstarted records a waiting run that will never start.
func (l *loop) finishUnstarted(r *run, reason Reason, msg string, now time.Time) {
	rec := Record{ID: r.ID, Attempt: r.Attempt, Trigger: r.Trigger, Scheduled: r.Scheduled, End: now,
		ExitCode: -1, Reason: reason, Message: msg}
	l.th.Runs = append(l.th.Runs, rec)
	l.count(reason, 1)
	l.emit(Event{Kind: EventEnded, Record: rec})
	l.remove(r, now)
}

// remove drops a run that is over, starts the runs that waited for it, and releases the Kills waiting for it.
func (l *loop) remove(r *run, now time.Time) {
	l.runs = slices.DeleteFunc(l.runs, func(x *run) bool { return x == r })
	for _, w := range slices.Clone(l.runs) {
		if w.state != stateWaiting {
			continue
		}
		w.waitFor = slices.DeleteFunc(w.waitFor, func(id uint64) bool { return id == r.ID })
		if len(w.waitFor) == 0 {
			l.startAttempt(w, 1, w.Trigger, now)
		}
	}
	for i := range l.kills {
		l.kills[i].ids = slices.DeleteFunc(l.kills[i].ids, func(id uint64) bool { return id == r.ID })
	}
}

// releaseKills lets the Kills return whose runs are all over; the loop calls it once they are saved and published.
func (l *loop) releaseKills() {
	l.kills = slices.DeleteFunc(l.kills, func(k killWait) bool {
		if len(k.ids) == 0 {
			close(k.done)
			return true
		}
		return false
	})
}

// kill stops every active run; the returned channel closes when they are all over.
func (l *loop) kill(reason string) chan struct{} {
	k := killWait{done: make(chan struct{})}
	now := l.now()
	for _, r := range slices.Clone(l.runs) {
		switch r.state {
		case stateWaiting:
			l.finishUnstarted(r, ReasonStopped, "stopped before it started: "+reason, now)
		case stateRetrying:
			l.dropRetry(r, "stopped: "+reason)
		case stateRunning:
			k.ids = append(k.ids, r.ID)
			l.stop(r, ReasonStopped, reason, "stopped: "+reason)
		}
	}
	l.save()
	if len(k.ids) == 0 {
		close(k.done)
	} else {
		l.kills = append(l.kills, k)
	}
	return k.done
}

func (l *loop) recordSkipped(trigger Trigger, scheduled, now time.Time, active *run) {
	rec := Record{ID: l.newID(), Trigger: trigger, Scheduled: scheduled, End: now, ExitCode: -1, Reason: ReasonSkipped,
		Message: fmt.Sprintf("previous run still active (run %d, %s)", active.ID, describeSince(active, now))}
	l.th.Runs = append(l.th.Runs, rec)
	l.count(ReasonSkipped, 1)
	l.j.log.Info("cron run skipped", "run", rec.ID, "scheduled", scheduled, "active", active.ID)
	l.emit(Event{Kind: EventSkipped, Record: rec})
}

func (l *loop) recordMissed(first time.Time, n int, capped bool, now time.Time) {
	count := fmt.Sprint(n)
	if capped {
		count = "more than " + count
	}
	rec := Record{ID: l.newID(), Trigger: TriggerSchedule, Scheduled: first, End: now, ExitCode: -1,
		Reason: ReasonMissed, Missed: n,
		Message: fmt.Sprintf("%s fire time(s) from %s missed: more than starting_deadline (%s) late, because glmd was not running or the host was asleep",
			count, first.Format(time.RFC3339), l.spec.StartingDeadline)}
	l.th.Runs = append(l.th.Runs, rec)
	l.count(ReasonMissed, uint64(n))
	l.j.log.Warn("cron runs missed", "run", rec.ID, "missed", count, "first", first)
	l.emit(Event{Kind: EventMissed, Record: rec})
}

// count records ended attempts and fire times that did not run; publish
// shows them together with the rest of the state, so that a Status (and
// a scrape) never sees a run counted but not yet its record.
func (l *loop) count(r Reason, n uint64) {
	l.j.counts[r] += n
}

func (l *loop) emit(ev Event) {
	if l.j.onEvent == nil {
		return
	}
	ev.Task = l.j.task
	if ev.Time.IsZero() {
		ev.Time = l.now()
	}
	l.j.onEvent(ev)
}

// setSpec applies a reloaded spec (see Job.SetSpec).
func (l *loop) setSpec(spec Spec) {
	old := l.spec
	l.spec = spec.withDefaults()
	l.j.mu.Lock()
	l.j.spec = spec
	l.j.mu.Unlock()
	now := l.now()
	switch {
	case l.spec.Suspend:
		l.next, l.fireAt, l.catchUp = time.Time{}, time.Time{}, false
	case old.Suspend || !old.Schedule.Equal(l.spec.Schedule):
		// Fire times that passed while suspended, or belong to the old schedule, are not missed ones.
		l.th.LastScheduled = now
		l.th.Schedule = scheduleKey(l.spec.Schedule)
		l.setNext(now)
	case old.Jitter != l.spec.Jitter && !l.catchUp && !l.next.IsZero():
		l.fireAt = l.next.Add(l.jitter())
	}
	l.save()
}

// save writes the history, trimmed. A failing disk does not stop the job: the error is logged when it starts and
// when it is over.
func (l *loop) save() {
	l.th.Runs = trim(l.th.Runs, l.spec.History)
	err := l.j.hist.Write(l.th)
	switch {
	case err != nil && !l.saveFailing:
		l.j.log.Error("cron history not saved", "err", err)
	case err == nil && l.saveFailing:
		l.j.log.Info("cron history saved again")
	}
	l.saveFailing = err != nil
}

// publish copies the state into the Job's status.
func (l *loop) publish() {
	var active []ActiveRun
	for _, r := range l.runs {
		a := ActiveRun{Run: r.Run, State: r.state, Logs: r.logs}
		switch r.state {
		case stateRunning:
			a.Started = r.started
		case stateRetrying:
			a.RetryAt = r.retryAt
		}
		active = append(active, a)
	}
	var last Record
	for _, rec := range l.th.Runs {
		if !rec.Start.IsZero() && !rec.End.IsZero() && !rec.End.Before(last.End) {
			last = rec
		}
	}
	l.j.mu.Lock()
	defer l.j.mu.Unlock()
	s := &l.j.status
	s.setSpec(l.j.spec)
	s.Next, s.NextStart = l.next, l.fireAt
	s.Active = active
	s.Last, s.LastDuration = last, last.Duration()
	s.LastSuccess = l.th.LastSuccess
	s.Runs = maps.Clone(l.j.counts)
}
