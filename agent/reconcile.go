package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/confwatch"
	"github.com/open-autoglm/glmd/supervisor"
)

// change is one task's line of a reload plan.
type change struct {
	api.Change
	cur  *task        // nil when added
	spec *config.Task // nil when removed or kept invalid
	diff config.Diff
}

// reconcile loads snap, plans the changes against what runs and, unless
// dryRun, applies them. One reconcile runs at a time.
func (a *Agent) reconcile(snap confwatch.Snapshot, dryRun bool) api.Plan {
	a.reconcileMu.Lock()
	defer a.reconcileMu.Unlock()
	plan := api.Plan{Changes: []api.Change{}, Errors: []string{}}
	if snap.Err != nil {
		// A missing conf_dir is far more likely a mistake or a deployment
		// in progress than a wish to stop every worker: keep what runs.
		msg := fmt.Sprintf("conf_dir %s: %v; keeping what runs", a.cfg.ConfDir, snap.Err)
		plan.Errors = append(plan.Errors, msg)
		if !dryRun {
			a.mu.Lock()
			isNew := a.dirErr == nil || a.dirErr.Error() != snap.Err.Error()
			a.dirErr = snap.Err
			a.reloads["error"]++
			a.mu.Unlock()
			if isNew {
				a.log.Error("reading conf_dir", "dir", a.cfg.ConfDir, "err", snap.Err)
				a.publish(api.Event{Type: "config", Instance: -1, Message: msg})
			}
		}
		return plan
	}
	valid, errs := a.loader.Load(snap.FS)
	bad := map[string][]*config.FileError{}
	for _, e := range errs {
		bad[e.File] = append(bad[e.File], e)
		plan.Errors = append(plan.Errors, displayError(a.cfg.ConfDir, e))
	}
	a.mu.Lock()
	changes := a.diff(valid, bad)
	a.mu.Unlock()
	for _, c := range changes {
		plan.Changes = append(plan.Changes, c.Change)
	}
	if dryRun {
		return plan
	}
	a.apply(changes, bad)
	return plan
}

// displayError names the file with the conf_dir's base name, as operators
// know it ("conf.d/x.toml:3:1: ...").
func displayError(confDir string, e *config.FileError) string {
	return strings.TrimSuffix(confDirBase(confDir), "/") + "/" + e.Error()
}

func confDirBase(dir string) string {
	dir = strings.TrimRight(dir, "/")
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		return dir[i+1:]
	}
	return dir
}

// diff plans the changes from what runs to valid. A task whose file is
// invalid now keeps its last good version. Call with a.mu held.
func (a *Agent) diff(valid []*config.Task, bad map[string][]*config.FileError) []change {
	want := make(map[string]*config.Task, len(valid))
	for _, t := range valid {
		want[t.Name] = t
	}
	names := make([]string, 0, len(a.tasks)+len(want))
	for n := range a.tasks {
		names = append(names, n)
	}
	for n := range want {
		if a.tasks[n] == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []change
	kept := map[string]bool{}
	for _, name := range names {
		cur, spec := a.tasks[name], want[name]
		switch {
		case cur == nil:
			out = append(out, change{Change: api.Change{Task: name, File: spec.File, Action: api.ActionAdd}, spec: spec})
		case spec == nil:
			if _, broken := bad[cur.spec.File]; broken {
				kept[cur.spec.File] = true
				out = append(out, change{Change: api.Change{Task: name, File: cur.spec.File, Action: api.ActionInvalid,
					Reasons: []string{"file has errors: the last good version keeps running"}}, cur: cur})
				continue
			}
			out = append(out, change{Change: api.Change{Task: name, File: cur.spec.File, Action: api.ActionRemove}, cur: cur})
		default:
			d := config.Compare(cur.spec, spec)
			c := change{Change: api.Change{Task: name, File: spec.File}, cur: cur, spec: spec, diff: d}
			switch {
			case len(d.Restart) > 0:
				c.Action = api.ActionRestart
			case len(d.InPlace) > 0 || cur.spec.File != spec.File || cur.invalid != "":
				c.Action = api.ActionInPlace
			default:
				continue
			}
			c.Reasons = reasons(cur.spec, spec, d)
			out = append(out, c)
		}
	}
	files := make([]string, 0, len(bad))
	for f := range bad {
		if !kept[f] {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	for _, f := range files {
		out = append(out, change{Change: api.Change{Task: bad[f][0].Task, File: f, Action: api.ActionInvalid,
			Reasons: []string{"file has errors: not started"}}})
	}
	return out
}

// reasons says in words what changed.
func reasons(old, new *config.Task, d config.Diff) []string {
	var out []string
	for _, k := range d.Restart {
		out = append(out, k+" changed")
	}
	for _, k := range d.InPlace {
		switch k {
		case "instances":
			out = append(out, fmt.Sprintf("instances %d -> %d", old.Instances, new.Instances))
		case "enabled":
			out = append(out, fmt.Sprintf("enabled %t -> %t", old.Enabled, new.Enabled))
		default:
			out = append(out, k+" changed")
		}
	}
	if old.File != new.File {
		out = append(out, fmt.Sprintf("moved from %s to %s", old.File, new.File))
	}
	if len(out) == 0 {
		out = append(out, "file is valid again")
	}
	return out
}

// apply carries out a plan: removals first (their ports and names may be
// taken by what is added), then additions and updates; restarts roll out in
// the background, one instance at a time.
func (a *Agent) apply(changes []change, bad map[string][]*config.FileError) {
	a.noteInvalid(bad)
	ctx := a.runCtx
	var wg sync.WaitGroup
	for _, c := range changes {
		if c.Action != api.ActionRemove {
			continue
		}
		a.mu.Lock()
		delete(a.tasks, c.Task)
		a.mu.Unlock()
		a.cancelRollout(c.cur)
		for _, in := range c.cur.instances {
			wg.Go(func() { a.retire(ctx, in) })
		}
		if ct := c.cur.cron; ct != nil {
			wg.Go(func() { ct.stop(ctx, "task removed") })
		}
	}
	wg.Wait()
	counts := map[string]int{}
	for _, c := range changes {
		counts[c.Action]++
		switch c.Action {
		case api.ActionAdd:
			a.addTask(c.spec)
		case api.ActionInPlace, api.ActionRestart:
			a.updateTask(ctx, c)
		case api.ActionInvalid:
			if c.cur != nil {
				a.mu.Lock()
				c.cur.invalid = joinErrors(bad[c.cur.spec.File])
				a.mu.Unlock()
			}
		}
		if c.Action != api.ActionInvalid {
			a.log.Info("task "+c.Action, "task", c.Task, "file", c.File, "why", strings.Join(c.Reasons, "; "))
		}
	}
	result := "ok"
	if len(bad) > 0 {
		result = "invalid"
	}
	a.mu.Lock()
	a.reloads[result]++
	a.dirErr = nil
	a.mu.Unlock()
	if len(changes) > 0 {
		var parts []string
		for _, k := range []string{api.ActionAdd, api.ActionRemove, api.ActionRestart, api.ActionInPlace, api.ActionInvalid} {
			if counts[k] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
			}
		}
		a.publish(api.Event{Type: "reload", Instance: -1, Message: "reload: " + strings.Join(parts, ", ")})
	}
	a.poke()
}

// noteInvalid records which files are invalid and reports each new or
// changed problem, and each file that became valid again, once.
func (a *Agent) noteInvalid(bad map[string][]*config.FileError) {
	a.mu.Lock()
	old := a.invalid
	a.invalid = bad
	a.mu.Unlock()
	for f, errs := range bad {
		msg := joinErrors(errs)
		if joinErrors(old[f]) == msg {
			continue
		}
		for _, e := range errs {
			a.log.Error("invalid task file", "file", f, "task", e.Task, "err", displayError(a.cfg.ConfDir, e))
		}
		a.publish(api.Event{Type: "config", Task: errs[0].Task, Instance: -1, State: "invalid", Message: msg})
	}
	for f, errs := range old {
		if _, still := bad[f]; !still {
			a.publish(api.Event{Type: "config", Task: errs[0].Task, Instance: -1, Message: f + ": valid again"})
		}
	}
}

func joinErrors(errs []*config.FileError) string {
	s := make([]string, len(errs))
	for i, e := range errs {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// addTask creates a new task's instances; the dependency loop starts them.
func (a *Agent) addTask(spec *config.Task) {
	t := &task{spec: spec, hash: spec.Hash()}
	t.cron, t.instances = a.populate(spec)
	a.mu.Lock()
	a.tasks[spec.Name] = t
	a.mu.Unlock()
}

// populate starts what an enabled task runs: the scheduling loop of a
// scheduled task, else its instances (pending until started).
func (a *Agent) populate(spec *config.Task) (*cronTask, []*instance) {
	switch {
	case !spec.Enabled:
		return nil, nil
	case spec.Kind == config.KindCron:
		return a.newCron(spec), nil
	}
	return nil, a.newInstances(spec, 0, spec.Instances)
}

// newInstances creates instances from..to-1 of spec; one that cannot be
// created is reported and left out.
func (a *Agent) newInstances(spec *config.Task, from, to int) []*instance {
	var out []*instance
	for i := from; i < to; i++ {
		in, err := a.newInstance(spec, i)
		if err != nil {
			a.log.Error("create instance", "task", spec.Name, "instance", i, "err", err)
			a.publish(api.Event{Type: "agent", Task: spec.Name, Instance: i, State: "failed", Message: err.Error()})
			continue
		}
		out = append(out, in)
	}
	return out
}

// updateTask applies an in-place or restart change: enable/disable,
// scaling, settings that apply to running workers, then a rollout for
// every instance whose process must change.
func (a *Agent) updateTask(ctx context.Context, c change) {
	t, spec := c.cur, c.spec
	if spec.Kind == config.KindCron || t.spec.Kind == config.KindCron {
		a.updateCron(ctx, t, spec)
		return
	}
	a.cancelRollout(t)
	a.mu.Lock()
	old := t.spec
	oldHash := t.hash
	t.spec, t.hash, t.invalid = spec, spec.Hash(), ""
	current := append([]*instance(nil), t.instances...)
	a.mu.Unlock()

	var keep, drop []*instance
	have := map[int]bool{}
	for _, in := range current {
		if spec.Enabled && in.index < spec.Instances {
			keep = append(keep, in)
			have[in.index] = true
		} else {
			drop = append(drop, in)
		}
	}
	var wg sync.WaitGroup
	for _, in := range drop {
		wg.Go(func() { a.retire(ctx, in) })
	}
	wg.Wait()
	var added []*instance
	for i := range spec.Instances {
		if spec.Enabled && !have[i] {
			added = append(added, a.newInstances(spec, i, i+1)...)
		}
	}

	restart := len(c.diff.Restart) > 0
	lagging := false
	blocked, note := a.cgroupVerdict(spec)
	var unblocked []*instance
	for _, in := range keep {
		in.logs.Update(logOptions(spec, a.log))
		a.mu.Lock()
		if in.blocked != "" && blocked == "" && !in.held {
			unblocked = append(unblocked, in)
		}
		in.blocked, in.note = blocked, note
		a.mu.Unlock()
		a.mu.Lock()
		behind := in.hash != oldHash // a halted rollout left it on an older version
		a.mu.Unlock()
		if restart || behind {
			lagging = true
			continue // the rollout gives it the new spec
		}
		rs, err := a.runnerSpec(spec, in)
		if err != nil {
			a.log.Error("update instance", "task", spec.Name, "instance", in.index, "err", err)
			continue
		}
		if err := in.runner.Update(ctx, rs); err != nil {
			// The kernel refused the new limits for the running group
			// (e.g. memory below what it uses): a restart applies them.
			a.log.Warn("new limits need a restart", "task", spec.Name, "instance", in.index, "err", err)
			a.publish(api.Event{Type: "config", Task: spec.Name, Instance: in.index,
				Message: fmt.Sprintf("could not apply the new limits in place: %v; restarting", err)})
			lagging = true
			continue
		}
		a.mu.Lock()
		in.spec, in.hash = spec, spec.Hash()
		a.mu.Unlock()
	}

	all := append(keep, added...)
	slices.SortFunc(all, func(x, y *instance) int { return x.index - y.index })
	a.mu.Lock()
	t.instances = all
	if !spec.Enabled || old.Enabled != spec.Enabled {
		t.startAsked = false
	}
	startNew := t.startAsked
	a.mu.Unlock()
	if startNew {
		for _, in := range slices.Concat(added, unblocked) {
			in.runner.Start(ctx)
		}
	}
	if lagging {
		a.startRollout(t)
	}
}

// cancelRollout stops t's rollout, if any, and waits for it to return.
func (a *Agent) cancelRollout(t *task) {
	a.mu.Lock()
	cancel, end := t.rollout, t.rolloutEnd
	t.rollout, t.rolloutEnd = nil, nil
	a.mu.Unlock()
	if cancel != nil {
		cancel()
		<-end
	}
}

// startRollout gives every instance of t whose spec is older than t's the
// new spec, one at a time: the next one restarts once the previous runs.
func (a *Agent) startRollout(t *task) {
	ctx, cancel := context.WithCancel(a.runCtx)
	end := make(chan struct{})
	a.mu.Lock()
	t.rollout, t.rolloutEnd = cancel, end
	a.mu.Unlock()
	a.wg.Go(func() {
		defer close(end)
		for {
			a.mu.Lock()
			spec, hash := t.spec, t.hash
			var next *instance
			for _, in := range t.instances {
				if in.hash != hash {
					next = in
					break
				}
			}
			a.mu.Unlock()
			if next == nil || ctx.Err() != nil {
				return
			}
			if err := a.rolloutInstance(ctx, spec, next); err != nil {
				if ctx.Err() == nil {
					msg := fmt.Sprintf("rollout halted at instance %d: %v; instances not yet restarted keep the previous version (fix the task file, or glmctl restart %s)", next.index, err, spec.Name)
					a.log.Error("rollout halted", "task", spec.Name, "instance", next.index, "err", err)
					a.publish(api.Event{Type: "config", Task: spec.Name, Instance: next.index, Message: msg})
				}
				return
			}
		}
	})
}

// errNotReady says a restarted instance did not become ready.
var errNotReady = errors.New("did not become ready")

// rolloutInstance moves in to spec: new ports or logs when those changed,
// then a restart if it was active or had failed (the change may be the
// fix). A stopped, held, pending or finished instance only takes the spec
// for its next start.
func (a *Agent) rolloutInstance(ctx context.Context, spec *config.Task, in *instance) error {
	a.mu.Lock()
	old := in.spec
	held := in.held
	a.mu.Unlock()
	state := in.runner.Status().State
	active := !held && (state == supervisor.StateFailed || !state.Ended() && state != supervisor.StatePending)
	reopenLogs := old.Logs.MergeStderr != spec.Logs.MergeStderr
	if reopenLogs && active {
		// The pipes change: the old worker must be gone before its logs close.
		a.stopInstance(ctx, in)
	}
	if reopenLogs {
		in.close(a.log)
		logs, err := a.openLogs(spec, in.index)
		if err != nil {
			return err
		}
		a.mu.Lock()
		in.logs = logs
		a.mu.Unlock()
	}
	if !samePorts(old, spec) {
		ports, err := pickPorts(spec, in.index)
		if err != nil {
			return err
		}
		a.mu.Lock()
		in.ports = ports
		a.mu.Unlock()
	}
	rs, err := a.runnerSpec(spec, in)
	if err != nil {
		return err
	}
	// A refused limit update does not matter when the restart below
	// creates the group afresh.
	if err := in.runner.Update(ctx, rs); err != nil && !active {
		return err
	}
	a.mu.Lock()
	in.spec, in.hash = spec, spec.Hash()
	a.mu.Unlock()
	if !active {
		return nil
	}
	if err := in.runner.Restart(ctx); err != nil {
		return err
	}
	return waitReady(ctx, in.runner)
}

// waitReady waits until r runs and passes its readiness checks (at once
// without checks); it fails when r leaves running instead. A model server
// may take minutes to become ready: the wait has no limit of its own, a
// newer reload cancels it.
func waitReady(ctx context.Context, r *supervisor.Runner) error {
	for poll := 10 * time.Millisecond; ; poll = min(2*poll, 500*time.Millisecond) {
		st := r.Status()
		switch {
		case st.State == supervisor.StateRunning && st.Ready:
			return nil
		case st.State != supervisor.StateRunning && st.State != supervisor.StateStarting:
			return fmt.Errorf("%w (state %s: %s)", errNotReady, st.State, st.Message)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}
