package supervisor

import (
	"context"

	"github.com/open-autoglm/glmd/internal/resources"
)

// Cgroups gives each instance a cgroup. The cgroup package implements it
// over the host's cgroup v1 or v2 tree; the supervisor needs no more.
type Cgroups interface {
	// Open returns the group called name (the instance's, "task@N") with
	// these limits: it creates the group, or finds the existing one and
	// updates its limits.
	Open(ctx context.Context, name string, limits resources.Limits) (Group, error)
}

// Group is one instance's cgroup (on a hybrid host with its twin in the
// unified hierarchy).
type Group interface {
	// Name is the name Open was called with.
	Name() string
	// Start runs fork so that the new process is inside the group from its
	// first instruction. fork receives a cgroup2 directory fd to pass as
	// SysProcAttr.CgroupFD (UseCgroupFD), or -1 when there is none; on v1
	// the group places the calling thread so that the child inherits it.
	Start(fork func(cgroupFD int) (pid int, err error)) (pid int, err error)
	// Procs lists the processes in the group.
	Procs() ([]int, error)
	// Kill sends SIGKILL to every process in the group (freeze, kill,
	// thaw, until a round finds no one new) and returns without waiting for
	// them to be reaped. Not cgroup.kill: after it, the kernel kills every
	// later CLONE_INTO_CGROUP child of that group at birth (docs/cgroups.md).
	Kill() error
	// OOMKills is the group's cumulative count of OOM kills.
	OOMKills() (uint64, error)
	// Update changes the limits of the running group in place.
	Update(resources.Limits) error
	// Stats reads what the group used.
	Stats() (resources.Stats, error)
	// Delete removes the group; it fails while processes remain.
	Delete() error
}
