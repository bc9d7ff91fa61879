package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/gpu"
	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/supervisor"
)

// instanceGPUs is one instance's seat at the GPU pool: the runner asks it
// for GPUs before each start (supervisor.Devices) and gives them back when
// the instance ends for good. One lives as long as its instance, across
// spec updates, so that what it holds is always released.
type instanceGPUs struct {
	a     *Agent
	owner gpu.Owner
	wake  chan struct{} // cap 1

	mu      sync.Mutex // guards the fields below
	req     gpu.Request
	format  string
	pin     bool
	isolate bool
}

var _ supervisor.Devices = (*instanceGPUs)(nil)

// newInstanceGPUs returns the seat of instance i of t, or nil when t asks
// for no GPU.
func (a *Agent) newInstanceGPUs(t *config.Task, i int) *instanceGPUs {
	if t.GPU.Count == 0 && len(t.GPU.IDs) == 0 {
		return nil
	}
	d := &instanceGPUs{a: a, owner: gpu.Owner{Task: t.Name, Instance: i}, wake: make(chan struct{}, 1)}
	d.set(t)
	return d
}

// set takes the [gpu] table of a new version of the task; the next
// Acquire applies it.
func (d *instanceGPUs) set(t *config.Task) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.req = gpu.Request{Count: t.GPU.Count, IDs: t.GPU.IDs, MinMemory: t.GPU.MinMemory, Model: t.GPU.Model, Shared: t.GPU.Shared}
	d.format = t.GPU.VisibleDevicesFormat
	// Pinning and isolation need a cgroup (cgroupVerdict refuses
	// isolate_devices without one).
	d.pin = t.GPU.NUMAPin && d.a.cgroups != nil
	d.isolate = t.GPU.IsolateDevices && d.a.cgroups != nil
}

// Acquire allocates (or keeps) the instance's GPUs. It never blocks: the
// pool decides from what it knows; NVML is read off this path.
func (d *instanceGPUs) Acquire(context.Context) (supervisor.Grant, error) {
	d.mu.Lock()
	req, format, pin, isolate := d.req, d.format, d.pin, d.isolate
	d.mu.Unlock()
	g, err := d.a.gpus.Allocate(d.owner, req)
	if err != nil {
		d.a.waitGPUs(d, true)
		var short *gpu.ShortError
		if errors.As(err, &short) && short.Permanent() {
			return supervisor.Grant{}, fmt.Errorf("%s: %w", err, supervisor.ErrPermanent)
		}
		return supervisor.Grant{}, fmt.Errorf("%s: %w", err, supervisor.ErrWait)
	}
	d.a.waitGPUs(d, false)
	out := supervisor.Grant{Env: g.Env(format), IDs: g.UUIDs(), Note: d.a.strayNote(g)}
	if isolate {
		out.DenyDevices = d.a.otherGPUs(g)
	}
	if pin && g.CPUs != "" && g.Mems != "" {
		// Pin to what both the GPUs and the agent's own cpuset allow; if
		// nothing is left (a host whose agent is confined elsewhere), the
		// instance runs unpinned rather than not at all.
		cpus, mems := allowedCPUs()
		out.CpusetCPUs, out.CpusetMems = gpu.IntersectList(g.CPUs, cpus), gpu.IntersectList(g.Mems, mems)
		if out.CpusetCPUs == "" || out.CpusetMems == "" {
			out.CpusetCPUs, out.CpusetMems = "", ""
		}
	}
	return out, nil
}

// Release gives the GPUs back and lets waiting instances try again.
func (d *instanceGPUs) Release() {
	held := d.a.heldBy(d.owner)
	if len(held) == 0 {
		return
	}
	d.a.gpus.Release(d.owner)
	d.a.checkStrays(held)
	d.a.wakeGPUWaiters()
}

// Wake receives when GPUs were released or came back healthy.
func (d *instanceGPUs) Wake() <-chan struct{} { return d.wake }

// waitGPUs adds d to (or removes it from) the instances waiting for GPUs.
func (a *Agent) waitGPUs(d *instanceGPUs, waiting bool) {
	a.gpuMu.Lock()
	defer a.gpuMu.Unlock()
	if waiting {
		a.gpuWaiters[d] = struct{}{}
	} else {
		delete(a.gpuWaiters, d)
	}
}

// wakeGPUWaiters tells every waiting instance to try again.
func (a *Agent) wakeGPUWaiters() {
	a.gpuMu.Lock()
	defer a.gpuMu.Unlock()
	for d := range a.gpuWaiters {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// onGPUEvent turns what the pool saw into glmd events, and restarts every
// instance that holds a GPU that went bad: a tensor-parallel group dies
// together, its communicator is broken.
func (a *Agent) onGPUEvent(e gpu.Event) {
	a.publish(api.Event{Type: "gpu", Instance: -1, Message: e.Message})
	switch e.Kind {
	case gpu.KindUnhealthy, gpu.KindLost:
		for _, o := range e.Owners {
			a.restartForGPU(o, e)
		}
	case gpu.KindHealthy:
		a.wakeGPUWaiters()
	}
}

// restartForGPU restarts owner's instance on other GPUs, off the pool's
// goroutine; it stays pending when there are none.
func (a *Agent) restartForGPU(o gpu.Owner, e gpu.Event) {
	in := a.instanceOf(o)
	if in == nil {
		return
	}
	why := fmt.Sprintf("restarted: GPU %d (%s) %s", e.Index, e.UUID, e.Kind)
	a.wg.Go(func() {
		if err := in.runner.RestartFor(a.runCtx, "gpu_unhealthy", why); err != nil && !errors.Is(err, supervisor.ErrWait) {
			a.log.Warn("restart after GPU failure", "task", o.Task, "instance", o.Instance, "gpu", e.UUID, "err", err)
		}
	})
}

// setupGPUs opens the GPU inventory [gpu] provider names and the pool
// over it. Without GPUs (provider "none", or "auto" on a host without
// NVML) the pool is empty and tasks that ask for GPUs fail clearly.
func (a *Agent) setupGPUs() error {
	inv := a.deps.GPUs
	if inv == nil {
		static := make([]gpu.Device, len(a.cfg.GPU.Devices))
		for i, d := range a.cfg.GPU.Devices {
			static[i] = gpu.Device{Index: d.Index, UUID: d.UUID, Name: d.Name, Memory: d.Memory, NUMANode: d.NUMANode, CPUs: d.CPUs, Minor: d.Minor}
		}
		var err error
		inv, err = gpu.Open(a.cfg.GPU.Provider, static, a.log)
		if err != nil {
			return fmt.Errorf("[gpu] provider = %q: %w", a.cfg.GPU.Provider, err)
		}
	}
	h := a.cfg.GPU.Health
	pool, err := gpu.NewPool(inv, gpu.PoolOptions{
		StateFile:    filepath.Join(a.cfg.StateDir, "gpus.json"),
		Log:          a.log,
		Overrides:    gpu.Overrides{IgnoreXIDs: h.IgnoreXIDs, FatalXIDs: h.FatalXIDs},
		PollInterval: h.PollInterval,
		ResetCommand: h.ResetCommand,
		OnEvent:      a.onGPUEvent,
	})
	if err != nil {
		inv.Close()
		return fmt.Errorf("gpu inventory: %w", err)
	}
	a.gpus, a.gpuInv = pool, inv
	a.hasGPUs = len(pool.Status()) > 0
	if st := pool.Status(); len(st) > 0 {
		a.log.Info("gpus", "count", len(st), "model", st[0].Device.Name)
	}
	return nil
}

func (a *Agent) closeGPUs() {
	if err := a.gpuInv.Close(); err != nil {
		a.log.Warn("close gpu inventory", "err", err)
	}
}

// GPUs lists the node's GPUs for the control API.
func (a *Agent) GPUs(context.Context) []api.GPUStatus {
	if a.gpus == nil {
		return nil
	}
	st := a.gpus.Status()
	out := make([]api.GPUStatus, len(st))
	for i, s := range st {
		g := api.GPUStatus{
			Index: s.Device.Index, UUID: s.Device.UUID, Name: s.Device.Name, PCIBusID: s.Device.PCIBusID,
			MemoryTotal: s.Device.Memory, MemoryUsed: -1, Utilization: -1, Temperature: -1, PowerWatts: -1,
			NUMANode: s.Device.NUMANode, Health: string(s.Health), Reason: s.Reason, MIG: s.Device.MIG,
			Holders: []string{},
		}
		if !s.SampledAt.IsZero() {
			g.MemoryUsed, g.Utilization, g.Temperature, g.PowerWatts = s.Sample.MemoryUsed, s.Sample.Utilization, s.Sample.Temperature, s.Sample.Power
		}
		for _, o := range s.Holders {
			g.Holders = append(g.Holders, o.String())
		}
		for _, p := range s.Strays {
			g.Strays = append(g.Strays, api.GPUProcess{PID: p.PID, MemoryBytes: p.Memory})
		}
		out[i] = g
	}
	return out
}

// heldBy returns the UUIDs owner holds now.
func (a *Agent) heldBy(owner gpu.Owner) []string {
	var out []string
	for _, s := range a.gpus.Status() {
		if slices.Contains(s.Holders, owner) {
			out = append(out, s.Device.UUID)
		}
	}
	return out
}

// strayNote says which of g's GPUs hold memory of a stray process, for
// the start message: the worker starts, but not silently.
func (a *Agent) strayNote(g gpu.Grant) string {
	uuids := g.UUIDs()
	var notes []string
	for _, s := range a.gpus.Status() {
		if !slices.Contains(uuids, s.Device.UUID) || len(s.Strays) == 0 {
			continue
		}
		var pids []string
		var mem int64
		for _, p := range s.Strays {
			pids = append(pids, strconv.Itoa(p.PID))
			mem += max(p.Memory, 0)
		}
		notes = append(notes, fmt.Sprintf("GPU %d holds %d MiB of stray processes (pid %s) that no glmd instance owns",
			s.Device.Index, mem>>20, strings.Join(pids, ",")))
	}
	return strings.Join(notes, "; ")
}

// hideGPUs keeps a task that asked for no GPU off the GPUs others hold:
// CUDA sees none (an empty CUDA_VISIBLE_DEVICES), nor does a container it
// starts. A task that sets CUDA_VISIBLE_DEVICES itself keeps its own.
func hideGPUs(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "CUDA_VISIBLE_DEVICES=") {
			return env
		}
	}
	out := append(slices.Clone(env), "CUDA_VISIBLE_DEVICES=", "NVIDIA_VISIBLE_DEVICES=void")
	slices.Sort(out)
	return out
}

// otherGPUs are the device files of every GPU of the host outside g, for
// isolate_devices. A GPU whose minor is unknown cannot be fenced off.
func (a *Agent) otherGPUs(g gpu.Grant) []resources.CharDevice {
	mine := g.UUIDs()
	var out []resources.CharDevice
	for _, s := range a.gpus.Status() {
		if s.Device.Minor >= 0 && !slices.Contains(mine, s.Device.UUID) {
			out = append(out, resources.CharDevice{Major: gpu.DeviceMajor, Minor: uint32(s.Device.Minor)})
		}
	}
	return out
}
