// Package config decodes, defaults and validates glmd's agent config
// (glmd.toml) and its task files (conf.d/*.toml). Decoding, defaults and
// validation are separate steps; a file that fails any of them yields
// *FileError values, never a partial task.
package config

import (
	"strconv"
	"syscall"
	"time"

	"github.com/open-autoglm/glmd/internal/resources"
)

// Kind says how a task's process is expected to end.
type Kind string

// Task kinds. A service runs forever; a job runs to completion; a cron
// task runs to completion on a schedule.
const (
	KindService Kind = "service"
	KindJob     Kind = "job"
	KindCron    Kind = "cron"
)

// RestartPolicy says when an instance that ended is started again.
type RestartPolicy string

// Restart policies, as in the task file's [restart] policy.
const (
	RestartAlways    RestartPolicy = "always"
	RestartOnFailure RestartPolicy = "on-failure"
	RestartNever     RestartPolicy = "never"
)

// NoPort marks a task (or a named port) that declares no port.
const NoPort = -1

// InheritUmask marks a task that keeps the agent's umask.
const InheritUmask = -1

// Task is one task file after decoding, defaults and validation. It is a
// plain value: the agent renders it per instance (Render) and compares
// versions of it on reload (Compare).
type Task struct {
	Name    string // unique among the loaded tasks; defaults to the file name without ".toml"
	File    string // the file's name inside conf_dir, e.g. "glm-serve.toml"
	Kind    Kind
	Command []string // argv templates; with Shell, one element run by /bin/sh -c
	Shell   bool
	Workdir string // template; "" = the user's home, or / when it has none
	User    string // "" = the agent's user
	Group   string // "" = the user's primary group
	Umask   int    // InheritUmask or 0..0777

	Env      map[string]string // values are templates
	EnvFiles []EnvFile
	// EnvFileVars holds what each env file said when the task file was
	// loaded, by rendered path, so that what runs is what was validated and a
	// changed env file is a changed spec on the next reload.
	EnvFileVars map[string]map[string]string

	Instances int
	DependsOn []string
	Enabled   bool
	Port      int            // base port: instance i gets Port+i; 0 = the agent picks a free one; NoPort
	Ports     map[string]int // named ports with the same rule, as {{.Ports.name}}

	Restart Restart
	Stop    Stop
	Logs    Logs
	// Resources is the [resources] table. Each IO entry's Major and Minor
	// are those of the device as it was when the file was loaded (the
	// whole disk for a partition); a renumbered device is a changed spec.
	Resources resources.Limits
	// Health holds the [[health]] checks in file order, at most one per
	// role; none means the instance is ready once it runs.
	Health []HealthCheck
	// GPU is the [gpu] table; the zero value asks for no GPU.
	GPU GPU
	// Service is the [service] table: how instances appear in Consul; nil
	// without one.
	Service *Service
	// Cron holds the keys of kind = "cron"; zero for other kinds.
	Cron Cron
}

// EnvFile is one entry of env_file.
type EnvFile struct {
	Path     string // template, rendered per instance
	Optional bool   // written with a leading "-": a missing file is no error
}

// Restart is the [restart] table.
type Restart struct {
	Policy       RestartPolicy
	SuccessCodes []int         // exit codes that count as success; default [0]
	Delay        time.Duration // first restart after a run of at least MinUptime
	MaxDelay     time.Duration // cap of the exponential backoff
	MinUptime    time.Duration // a run this long resets the backoff
	Limit        int           // more restarts than this within Window: failed; 0 = never give up
	Window       time.Duration
}

// Stop is the [stop] table.
type Stop struct {
	Signal  syscall.Signal
	Timeout time.Duration // grace between Signal and SIGKILL of everything the instance started
}

// Logs is the [logs] table.
type Logs struct {
	MaxSize     int64         // bytes; a log file is rotated when it reaches this
	MaxFiles    int           // rotated files kept per stream
	MaxAge      time.Duration // rotated files older than this are removed; 0 = by count only
	RotateEvery time.Duration // rotate at least this often; 0 = by size only
	Compress    bool          // gzip rotated files, off the write path
	MergeStderr bool          // stderr into the stdout log
}

// Vars are the values task templates see, as {{.Name}}, {{.Instance}},
// {{.Node}}, {{.Port}} and {{.Ports.name}}.
type Vars struct {
	Name     string
	Instance int
	Node     string
	Port     int
	Ports    map[string]int
}

// Instance is one instance of a task with every template rendered.
type Instance struct {
	Argv    []string
	Env     []string // KEY=VALUE: GLMD_* variables, then env files, then env (later wins), sorted by key
	Workdir string
	Health  []HealthCheck    // the task's checks with URL, headers, body, address and command rendered
	Service *ServiceInstance // the [service] table rendered; nil without one
}

// HealthRole says what the outcome of a health check decides.
type HealthRole string

// Health check roles, as in Kubernetes. Startup gates the other two and
// gives a slow starter its start_period; liveness failures restart the
// instance (reason "unhealthy"); readiness says whether it may get work.
const (
	RoleStartup   HealthRole = "startup"
	RoleLiveness  HealthRole = "liveness"
	RoleReadiness HealthRole = "readiness"
)

// ProbeType says how a health check probes an instance.
type ProbeType string

// Probe types: an HTTP request, a TCP connect, a command (exit 0 is
// healthy) and the standard grpc.health.v1 Check call.
const (
	ProbeHTTP ProbeType = "http"
	ProbeTCP  ProbeType = "tcp"
	ProbeExec ProbeType = "exec"
	ProbeGRPC ProbeType = "grpc"
)

// HealthCheck is one [[health]] entry. In a Task, URL, the Headers
// values, Body, Address and Command are templates; in an Instance they are
// rendered. The fields of other probe types are zero.
type HealthCheck struct {
	Role HealthRole
	Type ProbeType

	// http
	URL          string            // template; http:// or https://
	Method       string            // upper case; default "GET"
	Headers      map[string]string // values are templates; nil = none
	Body         string            // template; "" = no body
	Status       StatusRange       // the status codes that pass; default 200-399
	BodyContains string            // "" = the body is not checked

	// tcp and grpc
	Address string // template; host:port
	Service string // grpc: the service name asked about; "" = the whole server

	// exec
	Command []string // argv templates; run as the task's user, without a shell

	Interval         time.Duration // from the end of one probe to the start of the next
	Timeout          time.Duration // at most Interval, so probes never overlap
	InitialDelay     time.Duration // from the process start to the first probe
	FailureThreshold int           // failures in a row that make the check fail
	SuccessThreshold int           // successes in a row that make it pass; 1 for startup and liveness
	// StartPeriod (startup only): failures within this time of the process
	// start do not count, so a server loading its weights is not restarted.
	StartPeriod time.Duration
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

// Contains says whether code is in r.
func (r StatusRange) Contains(code int) bool { return code >= r.Min && code <= r.Max }

// String formats r as the task file writes it: "200-399", or "200".
func (r StatusRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return strconv.Itoa(r.Min) + "-" + strconv.Itoa(r.Max)
}
