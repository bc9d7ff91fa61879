package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/gpu"
)

// strayCheckTimeout bounds one look at the processes of the GPUs.
const strayCheckTimeout = 30 * time.Second

// groupFinder says which instance group ("task@N") below glmd's parent
// holds a process; the cgroup manager implements it.
type groupFinder interface {
	GroupOf(pid int) (string, bool)
}

// checkStrays looks for processes on the GPUs that no live instance owns,
// in the background: NVML may be slow. It runs after an instance gave
// GPUs back and on every health poll.
func (a *Agent) checkStrays(uuids []string) {
	if len(uuids) == 0 || a.runCtx == nil {
		return
	}
	a.wg.Go(func() {
		ctx, cancel := context.WithTimeout(a.runCtx, strayCheckTimeout)
		defer cancel()
		for _, u := range uuids {
			a.checkStraysOn(ctx, u)
		}
	})
}

// checkStraysOn records the strays of one GPU. A stray inside glmd's own
// cgroups (a worker's process that outlived its instance) is killed; any
// other is reported, never touched: glmd ends only what it started.
func (a *Agent) checkStraysOn(ctx context.Context, uuid string) {
	procs, err := a.gpus.Processes(ctx, uuid)
	if err != nil {
		if !errors.Is(err, gpu.ErrNotSupported) && ctx.Err() == nil {
			a.log.Warn("list processes on gpu", "gpu", uuid, "err", err)
		}
		return
	}
	var holders []gpu.Owner
	for _, s := range a.gpus.Status() {
		if s.Device.UUID == uuid {
			holders = s.Holders
		}
	}
	var strays []gpu.Process
	for _, p := range procs {
		owner, inGroup := a.ownerOf(p.PID)
		if owner != nil && slices.Contains(holders, *owner) && a.instanceRuns(*owner) {
			continue
		}
		if inGroup {
			a.log.Warn("killing a stray process in glmd's cgroups that holds GPU memory", "gpu", uuid, "pid", p.PID, "owner", owner)
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				a.log.Warn("kill stray", "pid", p.PID, "err", err)
			}
			a.publish(api.Event{Type: "gpu", Instance: -1,
				Message: fmt.Sprintf("GPU %s: killed stray pid %d (in glmd's cgroup %s, no live instance) holding %d MiB", uuid, p.PID, owner, max(p.Memory, 0)>>20)})
		}
		strays = append(strays, p)
	}
	a.gpus.SetStrays(uuid, strays)
}

// ownerOf finds the instance a process belongs to: by its cgroup when
// cgroups are on (authoritative; inGroup is then true), else by the
// GLMD_TASK and GLMD_INSTANCE every worker inherits.
func (a *Agent) ownerOf(pid int) (owner *gpu.Owner, inGroup bool) {
	if f, ok := a.cgroups.(groupFinder); ok {
		if name, ok := f.GroupOf(pid); ok {
			task, idx, found := strings.Cut(name, "@")
			n, err := strconv.Atoi(idx)
			if found && err == nil {
				return &gpu.Owner{Task: task, Instance: n}, true
			}
			return nil, true
		}
	}
	if task, idx, ok := workerEnv(pid); ok {
		if n, err := strconv.Atoi(idx); err == nil {
			return &gpu.Owner{Task: task, Instance: n}, false
		}
	}
	return nil, false
}

// instanceRuns says whether owner's instance has a process now.
func (a *Agent) instanceRuns(o gpu.Owner) bool {
	in := a.instanceOf(o)
	return in != nil && in.runner.Status().PID != 0
}

// instanceOf finds the instance that owns GPUs as o, or nil.
func (a *Agent) instanceOf(o gpu.Owner) *instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t := a.tasks[o.Task]; t != nil && o.Instance >= 0 && o.Instance < len(t.instances) {
		return t.instances[o.Instance]
	}
	return nil
}

// strayLoop checks every GPU for strays at the health poll's pace, so
// that a foreign process holding GPU memory is noticed before a worker is
// given that GPU.
func (a *Agent) strayLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var all []string
		for _, s := range a.gpus.Status() {
			all = append(all, s.Device.UUID)
		}
		cctx, cancel := context.WithTimeout(ctx, strayCheckTimeout)
		for _, u := range all {
			a.checkStraysOn(cctx, u)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
