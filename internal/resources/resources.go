// Package resources holds the plain values that describe what an instance
// may use (Limits, the task file's [resources]) and what it used (Stats).
// The config loader fills Limits, the supervisor passes them on, and the
// cgroup package turns them into cgroup v1 or v2 files; keeping the types
// here lets the supervisor stay free of cgroup code.
package resources

import "time"

// Limits are an instance's resource limits. A zero field means "no limit"
// (or the kernel's default), so the zero Limits asks for nothing.
type Limits struct {
	CPUs       float64 // CPU time in cores per period, e.g. 2.5 (v2 cpu.max, v1 cfs quota)
	CPUWeight  int     // relative CPU share 1..10000, default 100 (v2 cpu.weight, v1 cpu.shares)
	CpusetCPUs string  // CPUs the instance may run on, "0-7,16"
	CpusetMems string  // NUMA memory nodes, "0"

	MemoryMax     int64 // bytes; the OOM killer acts at this limit
	MemoryHigh    int64 // bytes; reclaim and throttle above it (v2 only)
	MemorySwapMax int64 // bytes of swap; 0 = unset (see MemorySwapOff)
	MemorySwapOff bool  // memory_swap_max = 0 was given: no swap at all

	PidsMax int64 // processes and threads

	IOWeight int        // relative IO share 1..10000, default 100
	IO       []IODevice // per-device bandwidth and IOPS limits

	// DenyDevices are character devices the instance may not open, read,
	// write or create (the devices controller on v1, an eBPF device
	// program on v2): the GPUs other instances hold, with [gpu]
	// isolate_devices.
	DenyDevices []CharDevice

	// OOMScoreAdj is the worker's oom_score_adj (-1000..1000); nil keeps
	// the kernel's default of 0 rather than inheriting the agent's own
	// (which systemd sets to -1000 so that workers die before the agent).
	OOMScoreAdj *int
}

// IODevice limits IO on one block device, named by path and resolved to
// its major:minor when the task file is loaded.
type IODevice struct {
	Path         string
	Major, Minor uint32
	ReadBPS      uint64 // bytes per second; 0 = no limit
	WriteBPS     uint64
	ReadIOPS     uint64
	WriteIOPS    uint64
}

// IsZero reports whether the limits ask for nothing that needs a cgroup.
func (l Limits) IsZero() bool {
	return l.CPUs == 0 && l.CPUWeight == 0 && l.CpusetCPUs == "" && l.CpusetMems == "" &&
		l.MemoryMax == 0 && l.MemoryHigh == 0 && l.MemorySwapMax == 0 && !l.MemorySwapOff &&
		l.PidsMax == 0 && l.IOWeight == 0 && len(l.IO) == 0 && len(l.DenyDevices) == 0
}

// CharDevice is a character device by number, as in /dev/nvidia3 (195:3).
type CharDevice struct {
	Major, Minor uint32
}

// Stats is what an instance's cgroup counted, cumulative since the group
// was created unless said otherwise.
type Stats struct {
	CPU           time.Duration // CPU time used
	CPUThrottled  time.Duration // time the CPU limit held it back
	NrThrottled   uint64        // periods in which it was throttled
	MemoryCurrent uint64        // bytes in use now
	MemoryPeak    uint64        // most bytes in use at once (v1 max_usage, v2 memory.peak)
	Pids          uint64        // processes and threads now
	IOReadBytes   uint64
	IOWriteBytes  uint64
	OOMKills      uint64 // processes the OOM killer ended in this group
}
