package supervisor

import (
	"context"
	"errors"

	"github.com/open-autoglm/glmd/internal/resources"
)

// ErrWait is what Devices.Acquire returns (wrapped, with the reason) when
// what the instance needs is not free now: the instance stays pending with
// the reason as its message and tries again when Devices.Wake fires.
var ErrWait = errors.New("supervisor: waiting for devices")

// Devices hands an instance the devices it needs, its GPUs, around its
// runs. The agent implements it over the GPU pool; the supervisor needs
// no more.
type Devices interface {
	// Acquire is called before every start, restarts included, on the
	// runner's goroutine: it must not block. It returns what the worker
	// gets, the same devices as before when they are still fit. An error
	// wrapping ErrWait keeps the instance pending; ErrPermanent fails it;
	// any other error is a start failure, retried with backoff.
	Acquire(ctx context.Context) (Grant, error)
	// Release is called once the instance has ended for good (stopped,
	// exited, failed) and its processes are gone. It is idempotent.
	Release()
	// Wake receives when an Acquire that had to wait may succeed now.
	Wake() <-chan struct{}
}

// Grant is what Devices.Acquire gave an instance.
type Grant struct {
	Env []string // KEY=VALUE added to the worker's environment (CUDA_VISIBLE_DEVICES...)
	// CpusetCPUs and CpusetMems pin the instance's cgroup, unless the task
	// sets its own cpuset; "" = no pinning.
	CpusetCPUs, CpusetMems string
	IDs                    []string // the devices, for status (GPU UUIDs)
	// DenyDevices are device files the instance's cgroup refuses (the
	// other GPUs, with isolate_devices).
	DenyDevices []resources.CharDevice
	Note        string // a remark for the start message, e.g. stray memory on a GPU
}
