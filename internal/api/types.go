// Package api is glmd's control API: HTTP and JSON over the Unix socket
// (/run/glmd/glmd.sock), the Server the agent runs behind a Backend, and the
// Client that glmctl uses. The JSON shapes in this file are a contract:
// `glmctl status --json` prints InstanceStatus values as they are, and
// scripts read them. Add fields; never rename or remove one.
package api

import "time"

// Exit says how an instance's process last ended.
type Exit struct {
	Code   int    `json:"code"`   // exit code; 0 when killed by a signal
	Signal string `json:"signal"` // "SIGKILL" and the like, "" when it exited
	// Reason is exited, signal, oom_killed, unhealthy or stopped; "" when
	// the instance never ended.
	Reason string `json:"reason"`
}

// InstanceStatus is one row of GET /v1/status: one instance of a task, or
// (Instance -1, State "invalid") a task whose file has errors.
type InstanceStatus struct {
	Task     string `json:"task"`
	Instance int    `json:"instance"` // -1 for a task-level row (state "invalid")
	// State is pending, starting, running, stopping, stopped, backoff,
	// exited, failed or invalid.
	State     string         `json:"state"`
	PID       int            `json:"pid"` // 0 when no process runs
	Restarts  int            `json:"restarts"`
	Ready     bool           `json:"ready"`
	LastExit  Exit           `json:"last_exit"` // always an object
	GPUs      []string       `json:"gpus"`      // UUIDs; always an array, never null
	Message   string         `json:"message"`
	Kind      string         `json:"kind,omitempty"`
	File      string         `json:"file,omitempty"`
	Since     time.Time      `json:"since"`                // when the current state began
	StartedAt *time.Time     `json:"started_at,omitempty"` // when the current process started
	Ports     map[string]int `json:"ports,omitempty"`
	NextStart *time.Time     `json:"next_start,omitempty"` // in backoff: when the next attempt is due
	// NextRun is when a scheduled task (kind cron) runs next; absent when
	// it is suspended or its schedule never fires again.
	NextRun *time.Time `json:"next_run,omitempty"`
	// Cgroup is the instance's cgroup ("task@N") while it has one.
	Cgroup string `json:"cgroup,omitempty"`
	// Resources is what the instance's cgroup used; only with
	// StatusOptions.Resources, and only while the instance has a cgroup.
	Resources *Usage `json:"resources,omitempty"`
}

// StatusOptions select what GET /v1/status returns.
type StatusOptions struct {
	// Resources adds each instance's cgroup usage (reads a few files per
	// instance, so it is asked for, not always sent).
	Resources bool
}

// Usage is an instance's resource use, read from its cgroup, with the
// limits it has (0: none).
type Usage struct {
	CPUSeconds          float64 `json:"cpu_seconds"`           // CPU time used
	CPUThrottledSeconds float64 `json:"cpu_throttled_seconds"` // time the CPU limit held it back
	MemoryBytes         uint64  `json:"memory_bytes"`
	MemoryPeakBytes     uint64  `json:"memory_peak_bytes"`
	Pids                uint64  `json:"pids"` // processes and threads
	IOReadBytes         uint64  `json:"io_read_bytes"`
	IOWriteBytes        uint64  `json:"io_write_bytes"`
	OOMKills            uint64  `json:"oom_kills"`
	CPUs                float64 `json:"cpus_limit,omitempty"`
	MemoryMax           int64   `json:"memory_max,omitempty"`
	PidsMax             int64   `json:"pids_max,omitempty"`
}

// Event is one line of GET /v1/events: a state change of an instance, a
// config error, a reload, an agent message or a log notice.
type Event struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Type     string    `json:"type"` // state, config, reload, agent, log
	Task     string    `json:"task,omitempty"`
	Instance int       `json:"instance"` // -1 when the event is about a whole task or the agent
	State    string    `json:"state,omitempty"`
	Message  string    `json:"message"`
	Exit     *Exit     `json:"exit,omitempty"`
}

// Plan is what a reload changes (or, with dry_run, would change).
type Plan struct {
	Changes []Change `json:"changes"` // never null
	Errors  []string `json:"errors"`  // one line per file error; never null
}

// Change is one task a reload adds, removes, restarts, updates in place or
// reports as invalid.
type Change struct {
	Task    string   `json:"task"`
	File    string   `json:"file,omitempty"`
	Action  string   `json:"action"`            // add, remove, restart, in-place, invalid
	Reasons []string `json:"reasons,omitempty"` // e.g. "command changed", "instances 2 -> 4"
}

// Change actions, as in Change.Action.
const (
	ActionAdd     = "add"
	ActionRemove  = "remove"
	ActionRestart = "restart"
	ActionInPlace = "in-place"
	ActionInvalid = "invalid"
)

// AgentInfo describes the running agent (GET /v1/info).
type AgentInfo struct {
	Version   string    `json:"version"`
	Node      string    `json:"node"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	ConfDir   string    `json:"conf_dir"`
	Dev       bool      `json:"dev"`
	// Cgroups is how workers are confined: "v2", "v1+unified", "v1", or
	// "off" when cgroups cannot be used.
	Cgroups string `json:"cgroups,omitempty"`
	// Discovery says why the agent cannot reach Consul now; "" when it can
	// or when Consul is not used. Local supervision goes on regardless.
	Discovery string `json:"discovery_degraded,omitempty"`
}

// LogRequest selects what GET /v1/logs/{task}/{instance} returns.
type LogRequest struct {
	Task     string
	Instance int
	Stream   string // stdout or stderr
	Lines    int    // how many lines of the tail to send first; 0 = none
	Follow   bool   // then send new data until the request ends
}

// Log streams, as in LogRequest.Stream.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// DefaultLogLines is the tail length when a log request names none.
const DefaultLogLines = 100
