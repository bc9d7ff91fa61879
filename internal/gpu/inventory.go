package gpu

import (
	"context"
	"errors"
)

// Errors of the package.
var (
	// ErrNoNVML: the NVML library is missing, its Init failed, or the
	// binary was built without cgo. provider = "auto" reads it as "no GPUs".
	ErrNoNVML = errors.New("gpu: NVML is not available")
	// ErrNotSupported: the inventory cannot answer this (a static list has
	// no driver events, no samples, no processes).
	ErrNotSupported = errors.New("gpu: not supported by this inventory")
)

// Inventory is where the Pool learns what GPUs the host has and how they
// are doing: NVML, a static list from glmd.toml, or none. Calls may block
// on a lost GPU; the Pool makes them from its own goroutines with a
// timeout, never from the supervisor's path.
type Inventory interface {
	// Devices lists the GPUs, in index order, and the links between every
	// pair of them (absent pairs: unknown, scored as LevelSystem).
	Devices(ctx context.Context) ([]Device, map[Pair]Link, error)
	// Sample reads the changing facts of every GPU in one pass.
	Sample(ctx context.Context) ([]Sample, error)
	// Processes lists the compute processes on the GPU with this UUID.
	Processes(ctx context.Context, uuid string) ([]Process, error)
	// Watch sends driver events (XIDs, double-bit ECC, GPU lost) to events
	// until ctx ends, then returns nil; ErrNotSupported when the inventory
	// has no events. Other errors: the watch broke and may be retried.
	Watch(ctx context.Context, events chan<- XIDEvent) error
	// Close releases the inventory (NVML Shutdown).
	Close() error
}
