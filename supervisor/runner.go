package supervisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/open-autoglm/glmd/internal/resources"
)

// leftoverPoll bounds how often a stopping instance checks whether the
// processes its worker left behind are gone: the kernel sends no event for
// a process that is not our child.
const (
	leftoverPollMin = time.Millisecond
	leftoverPollMax = 50 * time.Millisecond
)

// Spec is what a Runner runs: the command of one instance and the policies
// around it.
type Spec struct {
	Command     Command
	Restart     RestartPolicy
	StopSignal  syscall.Signal
	StopTimeout time.Duration
	Resources   resources.Limits // the instance's cgroup limits; OOMScoreAdj goes to the process
	// Health probes each process the runner starts; nil: an instance is
	// ready once its process runs.
	Health Health
	// Devices gives each start its GPUs; nil: the instance needs none.
	Devices Devices
}

// Event reports one state change of an instance.
type Event struct {
	Time     time.Time
	Task     string
	Instance int
	State    State
	Prev     State
	PID      int
	Exit     *Exit // set when the change is due to the process ending
	Message  string
}

// Status is a snapshot of an instance.
type Status struct {
	Task      string
	Instance  int
	State     State
	Since     time.Time // when State began
	PID       int       // 0 when no process runs
	StartedAt time.Time // when the current process started; zero when none
	Ready     bool      // running and, with health checks, passing them
	WasReady  bool      // the current process has been ready at least once (false: still starting up)
	Restarts  int       // starts after the first
	LastExit  Exit
	Exits     map[string]int // ends by Exit.Reason
	Devices   []string       // what Devices granted the current or last start (GPU UUIDs)
	Message   string
	NextStart time.Time // in backoff: when the next start is due
}

// Options are a Runner's collaborators.
type Options struct {
	Launcher Launcher
	Log      *slog.Logger
	// Notify is called on the runner's goroutine for every state change; it
	// must not block.
	Notify func(Event)
	// Rand supplies the backoff jitter; nil seeds one at random.
	Rand *rand.Rand
	// Cgroups, when set, gives every start a cgroup ("task@N") with the
	// spec's limits; nil runs workers without.
	Cgroups Cgroups
}

// intent says what an instance does once the stop in progress completes.
type intent uint8

const (
	intentNone      intent = iota // the worker ended by itself: apply the restart policy
	intentStop                    // stopped on request: stay stopped
	intentRestart                 // stopped for a restart: start again at once
	intentUnhealthy               // stopped because its health checks failed: apply the restart policy
)

type command struct {
	kind   string // "start", "stop", "restart", "update"
	spec   Spec
	reason string // restart: Exit.Reason of the process it stops; "" = ReasonStopped
	why    string // restart: the message of the start that follows
	reply  chan error
}

// Runner supervises one task instance: it starts the worker, watches it,
// restarts it per policy with backoff, and stops it with escalation. All
// state is owned by the goroutine in Run; other methods send it commands.
type Runner struct {
	cmds    chan command
	done    chan struct{} // closed when Run returns
	log     *slog.Logger
	launch  Launcher
	notify  func(Event)
	backoff *Backoff
	cgroups Cgroups
	group   atomic.Pointer[groupRef] // the open cgroup; read by Stats from other goroutines

	mu     sync.Mutex // guards status
	status Status

	// Owned by Run.
	spec      Spec
	state     State
	proc      Process
	procDone  <-chan struct{}
	timer     *time.Timer
	timerC    <-chan time.Time
	intent    intent
	exit      Exit // how the last run ended, kept while its leftovers are stopped
	killAt    time.Time
	killed    bool
	poll      time.Duration
	started   time.Time
	everRan   bool
	stopWait  []chan error
	startWait []chan error
	// healthCh delivers the verdicts of the running process's probes;
	// healthStop ends them. Both nil without health checks or process.
	healthCh   <-chan Verdict
	healthStop context.CancelFunc
	unhealthy  string // why the probes asked for the restart in progress
	// grant is what Devices gave the current start; held from Acquire to
	// Release. wakeC is Devices.Wake while the instance waits for them.
	grant         *Grant
	wakeC         <-chan struct{}
	restartReason string // Exit.Reason of a restart in progress with a cause ("gpu_unhealthy")
	restartWhy    string
}

// NewRunner returns a Runner for spec in state pending; call Run, then Start.
func NewRunner(spec Spec, o Options) *Runner {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("task", spec.Command.Task, "instance", spec.Command.Instance)
	rnd := o.Rand
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	notify := o.Notify
	if notify == nil {
		notify = func(Event) {}
	}
	now := time.Now()
	return &Runner{
		cmds:    make(chan command),
		done:    make(chan struct{}),
		log:     log,
		launch:  o.Launcher,
		notify:  notify,
		backoff: NewBackoff(rnd),
		cgroups: o.Cgroups,
		spec:    spec,
		state:   StatePending,
		status: Status{
			Task: spec.Command.Task, Instance: spec.Command.Instance,
			State: StatePending, Since: now, Exits: map[string]int{},
		},
	}
}

// Run supervises the instance until ctx ends. Cancelling ctx means the
// agent is going away: Run returns and leaves the worker running, so that
// a later agent could adopt it; call Stop first to end the worker.
func (r *Runner) Run(ctx context.Context) error {
	defer close(r.done)
	defer r.stopTimer()
	defer r.stopHealth() // the probes belong to this agent, the worker may outlive it
	for {
		select {
		case <-ctx.Done():
			r.replyAll(&r.stopWait, ctx.Err())
			r.replyAll(&r.startWait, ctx.Err())
			return nil
		case c := <-r.cmds:
			r.handle(c)
		case <-r.procDone:
			r.procDone = nil
			r.onExit()
		case <-r.timerC:
			r.timerC = nil
			r.onTimer()
		case <-r.wakeC:
			r.wakeC = nil
			if r.state == StatePending {
				r.start("")
			}
		case v, ok := <-r.healthCh:
			if !ok {
				r.healthCh = nil
				continue
			}
			r.onVerdict(v)
		}
	}
}

// Start starts the instance if it is not running, clearing failed and
// the backoff. It does not wait.
func (r *Runner) Start(ctx context.Context) error {
	return r.send(ctx, command{kind: "start"}, false)
}

// Stop stops the instance (stop signal, grace, SIGKILL of every process it
// started) and returns once it is stopped. It stays stopped until Start. An
// instance that already ended (exited, failed, stopped) keeps its state.
func (r *Runner) Stop(ctx context.Context) error {
	return r.send(ctx, command{kind: "stop"}, true)
}

// Restart stops the instance if it runs, starts it again and returns once
// the new process runs, or with the error that kept it from running.
func (r *Runner) Restart(ctx context.Context) error {
	return r.send(ctx, command{kind: "restart"}, true)
}

// RestartFor is Restart for a cause outside the worker, such as a GPU gone
// bad: the process it stops ends with Exit.Reason reason, and why is the
// message of the start that follows.
func (r *Runner) RestartFor(ctx context.Context, reason, why string) error {
	return r.send(ctx, command{kind: "restart", reason: reason, why: why}, true)
}

// Update replaces the spec. Restart and stop settings and the cgroup
// limits apply at once; the command at the next start. An error says the
// limits could not be applied to the running group (the kernel may refuse
// a memory limit below what the group uses): restart to apply them.
func (r *Runner) Update(ctx context.Context, spec Spec) error {
	return r.send(ctx, command{kind: "update", spec: spec}, true)
}

// Stats reads what the instance's cgroup used; false when it has none.
func (r *Runner) Stats() (resources.Stats, bool) {
	ref := r.group.Load()
	if ref == nil {
		return resources.Stats{}, false
	}
	st, err := ref.g.Stats()
	if err != nil {
		return resources.Stats{}, false
	}
	return st, true
}

// groupRef boxes a Group for atomic.Pointer.
type groupRef struct{ g Group }

// Status returns a snapshot of the instance.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Exits = make(map[string]int, len(r.status.Exits))
	for k, v := range r.status.Exits {
		s.Exits[k] = v
	}
	return s
}

// Done is closed when Run has returned.
func (r *Runner) Done() <-chan struct{} { return r.done }

var errNotRunning = errors.New("supervisor: runner is not running")

func (r *Runner) send(ctx context.Context, c command, wait bool) error {
	c.reply = make(chan error, 1)
	select {
	case r.cmds <- c:
	case <-r.done:
		return errNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	if !wait {
		return nil
	}
	select {
	case err := <-c.reply:
		return err
	case <-r.done:
		return errNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runner) handle(c command) {
	switch c.kind {
	case "update":
		healthChanged := r.spec.Health != c.spec.Health
		r.spec = c.spec
		if healthChanged && r.state == StateRunning {
			// New checks apply to the running process: probe afresh.
			r.watchHealth()
		}
		var err error
		if ref := r.group.Load(); ref != nil {
			if err = ref.g.Update(r.limits()); err != nil {
				err = fmt.Errorf("cgroup %s: %w", ref.g.Name(), err)
			}
		}
		c.reply <- err
	case "start":
		switch r.state {
		case StateRunning, StateStarting:
		case StateStopping:
			r.intent = intentRestart
		default:
			r.backoff.Reset()
			r.start("")
		}
	case "stop":
		switch r.state {
		case StateRunning:
			r.intent = intentStop
			r.stopWait = append(r.stopWait, c.reply)
			r.beginStop()
		case StateStopping:
			r.intent = intentStop
			r.stopWait = append(r.stopWait, c.reply)
			r.replyAll(&r.startWait, ErrStopped)
		case StateExited, StateFailed, StateStopped:
			// Nothing runs and nothing is due: keep the state, which says
			// how the instance ended.
			c.reply <- nil
		default:
			r.stopTimer()
			r.wakeC = nil
			r.closeGroup()
			r.setState(StateStopped, "stopped on request", nil)
			c.reply <- nil
		}
	case "restart":
		r.startWait = append(r.startWait, c.reply)
		r.backoff.Reset()
		why := c.why
		if why == "" {
			why = "restarted on request"
		}
		switch r.state {
		case StateRunning:
			r.intent = intentRestart
			r.restartReason, r.restartWhy = c.reason, why
			r.beginStop()
		case StateStopping:
			r.intent = intentRestart
			r.restartReason, r.restartWhy = c.reason, why
		default:
			r.start(why)
		}
	}
}

// limits are the spec's cgroup limits with the cpuset of the grant, where
// the task sets none of its own.
func (r *Runner) limits() resources.Limits {
	l := r.spec.Resources
	if g := r.grant; g != nil && l.CpusetCPUs == "" && l.CpusetMems == "" {
		l.CpusetCPUs, l.CpusetMems = g.CpusetCPUs, g.CpusetMems
	}
	if g := r.grant; g != nil && len(g.DenyDevices) > 0 {
		l.DenyDevices = append(slices.Clip(l.DenyDevices), g.DenyDevices...)
	}
	return l
}

// acquire asks Devices for the start about to happen. It returns false
// when the start cannot go on (the state is set).
func (r *Runner) acquire(cmd *Command) bool {
	d := r.spec.Devices
	if d == nil {
		return true
	}
	g, err := d.Acquire(context.Background())
	if err != nil {
		r.grant = nil
		r.mu.Lock()
		r.status.Devices = nil
		r.mu.Unlock()
	}
	switch {
	case errors.Is(err, ErrWait):
		r.wakeC = d.Wake()
		r.setState(StatePending, err.Error(), nil)
		r.replyAll(&r.startWait, err)
		return false
	case errors.Is(err, ErrPermanent):
		r.closeGroup()
		r.setState(StateFailed, err.Error(), nil)
		r.replyAll(&r.startWait, err)
		return false
	case err != nil:
		now := time.Now()
		r.scheduleRestart(now, now, err.Error(), nil)
		r.replyAll(&r.startWait, err)
		return false
	}
	r.grant = &g
	r.mu.Lock()
	r.status.Devices = g.IDs
	r.mu.Unlock()
	cmd.Env = append(slices.Clone(cmd.Env), g.Env...)
	return true
}

// start launches the worker. why is the event message; "" picks one.
func (r *Runner) start(why string) {
	r.stopTimer()
	r.setState(StateStarting, why, nil)
	cmd := r.spec.Command
	cmd.OOMScoreAdj = r.spec.Resources.OOMScoreAdj
	if !r.acquire(&cmd) {
		return
	}
	var err error
	if r.cgroups != nil {
		cmd.Cgroup, err = r.openGroup()
	}
	var p Process
	if err == nil {
		p, err = r.launch.Launch(context.Background(), &cmd)
	}
	now := time.Now()
	if err != nil {
		r.log.Warn("start failed", "err", err)
		if errors.Is(err, ErrPermanent) {
			r.closeGroup()
			r.setState(StateFailed, err.Error(), nil)
			r.replyAll(&r.startWait, err)
			return
		}
		r.scheduleRestart(now, now, fmt.Sprintf("start failed: %v", err), nil)
		r.replyAll(&r.startWait, err)
		return
	}
	if r.everRan {
		r.mu.Lock()
		r.status.Restarts++
		r.mu.Unlock()
	}
	r.everRan = true
	r.proc, r.procDone, r.started = p, p.Done(), now
	r.intent, r.killed = intentNone, false
	r.mu.Lock()
	r.status.PID, r.status.StartedAt, r.status.NextStart, r.status.WasReady = p.PID(), now, time.Time{}, false
	r.mu.Unlock()
	r.log.Info("worker started", "pid", p.PID())
	r.watchHealth()
	msg := fmt.Sprintf("started pid %d", p.PID())
	if r.grant != nil && r.grant.Note != "" {
		msg += "; " + r.grant.Note
	}
	r.setState(StateRunning, msg, nil)
	r.replyAll(&r.startWait, nil)
}

// watchHealth starts probing the running process (anew, if it was being
// probed). Without checks it is ready at once.
func (r *Runner) watchHealth() {
	r.stopHealth()
	if r.spec.Health == nil {
		r.setReady(true)
		return
	}
	r.setReady(false)
	ctx, cancel := context.WithCancel(context.Background())
	r.healthStop = cancel
	r.healthCh = r.spec.Health.Watch(ctx, r.proc.PID())
}

// stopHealth ends the probes of the current process; verdicts still on
// their way are dropped.
func (r *Runner) stopHealth() {
	if r.healthStop != nil {
		r.healthStop()
		r.healthStop = nil
	}
	r.healthCh = nil
	r.setReady(false)
}

func (r *Runner) setReady(ready bool) {
	r.mu.Lock()
	r.status.Ready = ready
	r.status.WasReady = r.status.WasReady || ready
	r.mu.Unlock()
}

// onVerdict applies what the probes concluded about the running process.
func (r *Runner) onVerdict(v Verdict) {
	if r.state != StateRunning {
		return
	}
	if v.Unhealthy {
		r.log.Warn("unhealthy: stopping the worker to restart it", "pid", r.proc.PID(), "why", v.Message)
		r.intent = intentUnhealthy
		r.unhealthy = v.Message
		r.stopHealth()
		r.setState(StateStopping, v.Message, nil)
		r.signal(r.spec.StopSignal)
		r.killAt = time.Now().Add(r.spec.StopTimeout)
		r.poll = leftoverPollMin
		r.armTimer(r.spec.StopTimeout)
		return
	}
	r.mu.Lock()
	changed := r.status.Ready != v.Ready
	r.status.Ready = v.Ready
	r.status.WasReady = r.status.WasReady || v.Ready
	r.mu.Unlock()
	if changed {
		msg := "ready"
		if !v.Ready {
			msg = "not ready"
		}
		if v.Message != "" {
			msg += ": " + v.Message
		}
		r.setState(StateRunning, msg, nil)
	}
}

// beginStop sends the stop signal to every process of the instance and
// arms the escalation to SIGKILL.
func (r *Runner) beginStop() {
	r.stopHealth()
	r.setState(StateStopping, "stopping", nil)
	r.signal(r.spec.StopSignal)
	r.killAt = time.Now().Add(r.spec.StopTimeout)
	r.poll = leftoverPollMin
	r.armTimer(r.spec.StopTimeout)
}

func (r *Runner) signal(sig syscall.Signal) {
	if err := r.proc.Signal(sig); err != nil {
		r.log.Warn("signal failed", "signal", signalName(sig), "err", err)
	}
}

// onExit handles the end of the main process.
func (r *Runner) onExit() {
	r.stopHealth()
	e := r.proc.Exit()
	switch r.intent {
	case intentNone:
	case intentUnhealthy:
		if e.Reason != ReasonOOMKilled {
			e.Reason = ReasonUnhealthy
		}
	case intentRestart:
		e.Reason = cmp.Or(r.restartReason, ReasonStopped)
	default:
		e.Reason = ReasonStopped
	}
	r.exit = e
	r.mu.Lock()
	r.status.LastExit = e
	r.status.Exits[e.Reason]++
	r.status.PID = 0
	r.mu.Unlock()
	r.log.Info("worker ended", "pid", r.proc.PID(), "exit", e.String())
	left := r.proc.Remaining()
	if len(left) == 0 {
		r.ended()
		return
	}
	if r.state == StateRunning {
		// Whatever the worker left behind (helpers, a daemon it forked)
		// holds ports, files or GPU memory the next start needs.
		r.setState(StateStopping, fmt.Sprintf("worker ended; stopping %d processes it left", len(left)), &e)
		r.signal(r.spec.StopSignal)
		r.killAt = time.Now().Add(r.spec.StopTimeout)
	}
	if r.killed {
		r.signal(syscall.SIGKILL)
	} else {
		r.signal(r.spec.StopSignal) // children re-parented at its exit
	}
	r.poll = leftoverPollMin
	r.armTimer(r.poll)
}

// onTimer serves the backoff and the stop escalation.
func (r *Runner) onTimer() {
	switch r.state {
	case StateBackoff:
		r.start("")
	case StateStopping:
		mainAlive := r.procDone != nil
		if !mainAlive && len(r.proc.Remaining()) == 0 {
			r.ended()
			return
		}
		switch {
		case !r.killed && !time.Now().Before(r.killAt):
			r.killed = true
			left := r.proc.Remaining()
			r.log.Warn("stop timeout: killing", "timeout", r.spec.StopTimeout, "processes", len(left))
			r.setMessage(fmt.Sprintf("stop timeout (%s): sent SIGKILL to %d processes", r.spec.StopTimeout, len(left)))
			r.signal(syscall.SIGKILL)
		case r.killed:
			// Again: a process may have forked since the last round.
			r.signal(syscall.SIGKILL)
		default:
			// Reaches only processes found since the last round, such as a
			// child re-parented to us while the group was signalled.
			r.signal(r.spec.StopSignal)
		}
		if mainAlive && !r.killed {
			// The reaper tells us when the main process ends; until then
			// only the deadline matters.
			r.armTimer(time.Until(r.killAt))
			return
		}
		r.poll = min(2*r.poll, leftoverPollMax)
		next := r.poll
		if !r.killed {
			next = min(next, max(time.Until(r.killAt), 0))
		}
		r.armTimer(next)
	}
}

// openGroup opens (creates, or updates the limits of) the instance's cgroup.
func (r *Runner) openGroup() (Group, error) {
	name := fmt.Sprintf("%s@%d", r.spec.Command.Task, r.spec.Command.Instance)
	g, err := r.cgroups.Open(context.Background(), name, r.limits())
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", name, err)
	}
	r.group.Store(&groupRef{g: g})
	return g, nil
}

// closeGroup deletes the instance's cgroup and releases its devices once
// it has ended for good; a restart reuses both.
func (r *Runner) closeGroup() {
	r.grant = nil
	if r.spec.Devices != nil {
		r.spec.Devices.Release()
		r.mu.Lock()
		r.status.Devices = nil
		r.mu.Unlock()
	}
	ref := r.group.Swap(nil)
	if ref == nil {
		return
	}
	if err := ref.g.Delete(); err != nil {
		r.log.Warn("delete cgroup", "cgroup", ref.g.Name(), "err", err)
	}
}

// ended runs once the main process and everything it left are gone.
func (r *Runner) ended() {
	r.stopTimer()
	e := r.exit
	switch r.intent {
	case intentStop:
		r.closeGroup()
		r.setState(StateStopped, "stopped on request", &e)
		r.replyAll(&r.stopWait, nil)
		return
	case intentRestart:
		r.replyAll(&r.stopWait, nil)
		why := cmp.Or(r.restartWhy, "restarted on request")
		r.restartReason, r.restartWhy = "", ""
		r.start(why)
		return
	}
	now := time.Now()
	p := r.spec.Restart
	why := ""
	if r.intent == intentUnhealthy {
		why = r.unhealthy
	}
	if !p.Wants(e) {
		r.closeGroup()
		if e.Success(p.SuccessCodes) {
			r.setState(StateExited, "finished", &e)
		} else {
			r.setState(StateFailed, fmt.Sprintf("ended with %s; restart policy %q does not restart it", e, p.Policy), &e)
		}
		return
	}
	r.scheduleRestart(r.started, now, why, &e)
}

// scheduleRestart applies the backoff to a run from started to now.
func (r *Runner) scheduleRestart(started, now time.Time, why string, exit *Exit) {
	p := r.spec.Restart
	delay, giveUp := r.backoff.Next(p, started, now)
	if why != "" {
		why += "; "
	}
	if giveUp {
		r.closeGroup()
		r.setState(StateFailed, fmt.Sprintf("%sgave up: more than %d restarts within %s (glmctl start to try again)", why, p.Limit, p.Window), exit)
		return
	}
	if delay <= 0 {
		r.start(why + "restarting")
		return
	}
	r.mu.Lock()
	r.status.NextStart = now.Add(delay)
	r.mu.Unlock()
	r.setState(StateBackoff, fmt.Sprintf("%srestarting in %s", why, delay.Round(time.Millisecond)), exit)
	r.armTimer(delay)
}

func (r *Runner) setState(s State, msg string, exit *Exit) {
	prev := r.state
	if prev != s {
		if err := checkTransition(prev, s); err != nil {
			// A bug, not an operator's problem: log it loudly, keep going.
			r.log.Error("state machine", "err", err)
		}
	}
	r.state = s
	now := time.Now()
	r.mu.Lock()
	r.status.State, r.status.Message = s, msg
	if prev != s {
		r.status.Since = now
	}
	if s != StateRunning && s != StateStopping {
		r.status.StartedAt = time.Time{}
	}
	if s != StateBackoff {
		r.status.NextStart = time.Time{}
	}
	pid := r.status.PID
	r.mu.Unlock()
	r.notify(Event{
		Time: now, Task: r.spec.Command.Task, Instance: r.spec.Command.Instance,
		State: s, Prev: prev, PID: pid, Exit: exit, Message: msg,
	})
}

func (r *Runner) setMessage(msg string) {
	r.mu.Lock()
	r.status.Message = msg
	r.mu.Unlock()
}

func (r *Runner) armTimer(d time.Duration) {
	if r.timer == nil {
		r.timer = time.NewTimer(d)
	} else {
		r.timer.Reset(d)
	}
	r.timerC = r.timer.C
}

func (r *Runner) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timerC = nil
}

func (r *Runner) replyAll(waiters *[]chan error, err error) {
	for _, w := range *waiters {
		w <- err
	}
	*waiters = nil
}
