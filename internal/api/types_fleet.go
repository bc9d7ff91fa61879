package api

import "time"

// GPUStatus is one row of GET /v1/gpus: one GPU of the node and who holds it.
type GPUStatus struct {
	Index       int     `json:"index"`
	UUID        string  `json:"uuid"`
	Name        string  `json:"name"`
	PCIBusID    string  `json:"pci_bus_id,omitempty"`
	MemoryTotal int64   `json:"memory_total_bytes"`
	MemoryUsed  int64   `json:"memory_used_bytes"`   // -1 when unknown
	Utilization float64 `json:"utilization"`         // 0..1; -1 when unknown
	Temperature float64 `json:"temperature_celsius"` // -1 when unknown
	PowerWatts  float64 `json:"power_watts"`         // -1 when unknown
	NUMANode    int     `json:"numa_node"`           // -1 when unknown
	// Health is healthy, restart_app, reset_pending, unhealthy, lost or
	// unknown; Reason says why when it is not healthy ("xid 79: ...").
	Health string `json:"health"`
	Reason string `json:"reason,omitempty"`
	MIG    bool   `json:"mig,omitempty"` // MIG mode is on: not handed out whole
	// Holders are the instances that hold the GPU, as "task:N"; always an
	// array.
	Holders []string `json:"holders"`
	// Strays are compute processes on the GPU that no instance of glmd
	// owns, with the GPU memory they hold.
	Strays []GPUProcess `json:"strays,omitempty"`
}

// GPUProcess is a process NVML lists on a GPU.
type GPUProcess struct {
	PID         int   `json:"pid"`
	MemoryBytes int64 `json:"memory_bytes"` // -1 when unknown
}

// LeaderInfo is GET /v1/leader: who holds the fleet's scheduler role.
type LeaderInfo struct {
	// Mode is "consul" (elected through Consul) or "standalone" (no Consul:
	// this agent is its own scheduler).
	Mode      string     `json:"mode"`
	Holder    string     `json:"holder"` // node name; "" when nobody holds the role
	Address   string     `json:"address,omitempty"`
	Since     *time.Time `json:"since,omitempty"`
	Token     uint64     `json:"token"` // the fencing token of the holder's term
	Self      bool       `json:"self"`  // this agent holds the role and acts on it
	Suspended bool       `json:"suspended,omitempty"`
	// Degraded says why discovery cannot reach Consul now ("" when fine);
	// local supervision goes on regardless.
	Degraded string `json:"degraded,omitempty"`
}

// CronRun is one row of GET /v1/runs/{task}: one attempt of a run of a
// scheduled task, or one fire time that did not run (skipped, missed).
type CronRun struct {
	ID        uint64     `json:"id"`
	Attempt   int        `json:"attempt,omitempty"`
	Trigger   string     `json:"trigger"` // schedule, catch-up, manual, retry
	Scheduled *time.Time `json:"scheduled,omitempty"`
	Start     *time.Time `json:"start,omitempty"`
	End       *time.Time `json:"end,omitempty"`
	ExitCode  int        `json:"exit_code"` // -1 when there is none
	Signal    string     `json:"signal,omitempty"`
	// Result is success, failed, timeout, replaced, stopped, skipped,
	// missed or unknown; "" while the run is active.
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
	Stdout  string `json:"stdout,omitempty"` // the log files of the attempt
	Stderr  string `json:"stderr,omitempty"`
	Missed  int    `json:"missed,omitempty"` // fire times a missed row stands for
}
