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
