// Package gpu knows the host's GPUs and who holds them: an Inventory (NVML,
// a static list from glmd.toml, or none) says what is there, the Allocator
// hands whole GPUs to task instances (exclusive, topology and NUMA aware,
// remembered across restarts), and the Pool joins both with GPU health
// (XID events, a periodic poll) for the agent, `glmctl gpus` and metrics.
//
// Only nvml.go (linux && cgo) touches go-nvml; everything else is plain Go,
// tested without cgo.
package gpu

import (
	"fmt"
	"time"
)

// Device is what does not change while a GPU stays in the host.
type Device struct {
	Index    int    // NVML index (PCI bus order)
	UUID     string // "GPU-8b7c..."; everything is keyed on it
	Name     string // model, e.g. "NVIDIA H100 80GB HBM3"
	Memory   int64  // total bytes
	PCIBusID string // as NVML writes it: "00000000:18:00.0"
	NUMANode int    // -1 when unknown
	CPUs     string // the CPUs local to the GPU as a list ("0-55,112-167"); "" when unknown
	MIG      bool   // MIG mode is on: the GPU is not handed out whole
	Minor    int    // N of its device file /dev/nvidiaN (major 195); -1 when unknown
}

// DeviceMajor is the major number of the NVIDIA GPU device files
// (/dev/nvidia0 is 195:0; nvidiactl, 195:255, is shared by all).
const DeviceMajor = 195

// Level is how far apart two GPUs sit, as NVML's GpuTopologyLevel: lower
// is closer.
type Level int

// Topology levels, with NVML's values.
const (
	LevelInternal   Level = 0  // the same board (multi-GPU card)
	LevelSingle     Level = 10 // one PCIe switch (PIX)
	LevelMultiple   Level = 20 // several PCIe switches (PXB)
	LevelHostBridge Level = 30 // one host bridge (PHB)
	LevelNode       Level = 40 // one NUMA node (NODE)
	LevelSystem     Level = 50 // across NUMA nodes (SYS)
)

// Link is the path between two GPUs.
type Link struct {
	Level  Level
	NVLink int // NVLink lanes that connect the two directly
}

// Pair keys a Link by the two GPUs' UUIDs, the smaller first (see PairOf).
type Pair [2]string

// PairOf returns the Pair of a and b.
func PairOf(a, b string) Pair {
	if b < a {
		a, b = b, a
	}
	return Pair{a, b}
}

// Sample is what changes from moment to moment on one GPU. Fields NVML
// does not answer are -1.
type Sample struct {
	UUID           string
	MemoryUsed     int64   // bytes, including other processes' contexts
	Utilization    float64 // 0..1, share of time a kernel ran
	MemoryUtil     float64 // 0..1, memory bandwidth
	Temperature    float64 // degrees Celsius
	Power          float64 // watts
	Energy         float64 // joules since the driver loaded
	ECCUncorrected int64   // volatile uncorrected ECC errors
	RemapPending   bool    // row remapping waits for a reset
	RemapFailed    bool    // row remapping failed: the GPU must be replaced

	ECCCorrected          int64   // volatile corrected ECC errors
	RemappedCorrectable   int64   // rows remapped after correctable errors
	RemappedUncorrectable int64   // rows remapped after uncorrectable errors
	SMClock               float64 // hertz
	ClockEventReasons     int64   // bit mask of why clocks are held down (NVML clocks event reasons)
	PCIeReplays           int64   // PCIe replays since the driver loaded
	// RecoveryAction is what the driver says the GPU needs (NVML field
	// 230): 0 none, 1 GPU reset, 2 node reboot, 3 drain P2P, 4 drain and
	// reset; -1 where the driver cannot say.
	RecoveryAction int
}

// Process is a compute process NVML sees on a GPU.
type Process struct {
	PID    int   // in the host PID namespace
	Memory int64 // bytes of GPU memory it holds; -1 when unknown
}

// XIDEvent is one event from the driver: an XID error, an ECC error, or
// the GPU falling off the bus.
type XIDEvent struct {
	Time time.Time
	UUID string // "" when the driver could not say which GPU (then all are suspect)
	XID  int    // 0 for events that are not XIDs
	Kind EventKind
}

// EventKind says what kind of driver event an XIDEvent is.
type EventKind string

// Driver event kinds.
const (
	EventXID       EventKind = "xid"
	EventDoubleBit EventKind = "ecc_double_bit"
	EventLost      EventKind = "gpu_lost" // ERROR_GPU_IS_LOST: fallen off the bus
	EventWatchFail EventKind = "watch_failed"
)

// Owner is who holds a GPU: one instance of a task.
type Owner struct {
	Task     string
	Instance int
}

// String formats o as glmctl writes an instance: "task:N".
func (o Owner) String() string { return fmt.Sprintf("%s:%d", o.Task, o.Instance) }
