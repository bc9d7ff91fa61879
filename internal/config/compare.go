package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
)

// Hash is a stable digest (hex SHA-256) of t's whole effective spec,
// defaults and env file contents included, File excluded: equal hashes
// mean nothing to do on reload.
func (t *Task) Hash() string {
	c := *t
	c.File = ""
	// encoding/json writes map keys sorted, so the digest does not depend
	// on map order.
	b, err := json.Marshal(&c)
	if err != nil {
		panic("config: marshal task for hash: " + err.Error()) // plain values only; cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Diff lists the keys that differ between two versions of a task, dotted
// as in the file ("command", "logs.max_size"), sorted.
type Diff struct {
	Restart []string // changes that need the instances restarted
	InPlace []string // changes the agent applies to running instances
}

// Changed says whether anything differs.
func (d Diff) Changed() bool { return len(d.Restart) > 0 || len(d.InPlace) > 0 }

// field is one comparable key of a task and whether changing it restarts
// the instances (docs/tasks.md has the same table).
type field struct {
	key     string
	restart bool
	get     func(*Task) any
}

var fields = []field{
	{"name", true, func(t *Task) any { return t.Name }},
	{"kind", true, func(t *Task) any { return t.Kind }},
	{"command", true, func(t *Task) any { return t.Command }},
	{"shell", true, func(t *Task) any { return t.Shell }},
	{"workdir", true, func(t *Task) any { return t.Workdir }},
	{"user", true, func(t *Task) any { return t.User }},
	{"group", true, func(t *Task) any { return t.Group }},
	{"umask", true, func(t *Task) any { return t.Umask }},
	{"env", true, func(t *Task) any { return t.Env }},
	{"env_file", true, func(t *Task) any { return t.EnvFiles }},
	{"env_file", true, func(t *Task) any { return t.EnvFileVars }}, // content changed
	{"port", true, func(t *Task) any { return t.Port }},
	{"ports", true, func(t *Task) any { return t.Ports }},
	{"logs.merge_stderr", true, func(t *Task) any { return t.Logs.MergeStderr }},

	{"instances", false, func(t *Task) any { return t.Instances }},
	{"enabled", false, func(t *Task) any { return t.Enabled }},
	{"depends_on", false, func(t *Task) any { return t.DependsOn }},
	{"restart.policy", false, func(t *Task) any { return t.Restart.Policy }},
	{"restart.success_codes", false, func(t *Task) any { return t.Restart.SuccessCodes }},
	{"restart.delay", false, func(t *Task) any { return t.Restart.Delay }},
	{"restart.max_delay", false, func(t *Task) any { return t.Restart.MaxDelay }},
	{"restart.min_uptime", false, func(t *Task) any { return t.Restart.MinUptime }},
	{"restart.limit", false, func(t *Task) any { return t.Restart.Limit }},
	{"restart.window", false, func(t *Task) any { return t.Restart.Window }},
	{"stop.signal", false, func(t *Task) any { return t.Stop.Signal }},
	{"stop.timeout", false, func(t *Task) any { return t.Stop.Timeout }},
	{"logs.max_size", false, func(t *Task) any { return t.Logs.MaxSize }},
	{"logs.max_files", false, func(t *Task) any { return t.Logs.MaxFiles }},
	{"logs.max_age", false, func(t *Task) any { return t.Logs.MaxAge }},
	{"logs.rotate_every", false, func(t *Task) any { return t.Logs.RotateEvery }},
	{"logs.compress", false, func(t *Task) any { return t.Logs.Compress }},

	// The agent updates the cgroups of the running instances (and restarts
	// them only when that fails).
	{"resources.cpus", false, func(t *Task) any { return t.Resources.CPUs }},
	{"resources.cpu_weight", false, func(t *Task) any { return t.Resources.CPUWeight }},
	{"resources.cpuset_cpus", false, func(t *Task) any { return t.Resources.CpusetCPUs }},
	{"resources.cpuset_mems", false, func(t *Task) any { return t.Resources.CpusetMems }},
	{"resources.memory_max", false, func(t *Task) any { return t.Resources.MemoryMax }},
	{"resources.memory_high", false, func(t *Task) any { return t.Resources.MemoryHigh }},
	{"resources.memory_swap_max", false, func(t *Task) any { return t.Resources.MemorySwapMax }},
	{"resources.memory_swap_max", false, func(t *Task) any { return t.Resources.MemorySwapOff }},
	{"resources.pids_max", false, func(t *Task) any { return t.Resources.PidsMax }},
	{"resources.io_weight", false, func(t *Task) any { return t.Resources.IOWeight }},
	{"resources.io", false, func(t *Task) any { return t.Resources.IO }},
	// Not a key: the agent fills it per instance from isolate_devices.
	{"resources.deny_devices", false, func(t *Task) any { return t.Resources.DenyDevices }},
	// The kernel reads oom_score_adj of a process, set when it starts.
	{"resources.oom_score_adj", true, func(t *Task) any { return t.Resources.OOMScoreAdj }},

	// The agent restarts the probes, not the worker: a check says how the
	// worker is watched, not how it is started.
	{"health", false, func(t *Task) any { return t.Health }},

	// GPUs are chosen and pinned when an instance starts.
	{"gpu", true, func(t *Task) any { return t.GPU }},
	// The agent re-registers the instances in Consul.
	{"service", false, func(t *Task) any { return t.Service }},
	// The scheduler picks up a new schedule at once; a run in progress is
	// left alone.
	{"schedule", false, func(t *Task) any { return t.Cron.Schedule }},
	{"timezone", false, func(t *Task) any { return t.Cron.Timezone }},
	{"concurrency", false, func(t *Task) any { return t.Cron.Concurrency }},
	{"starting_deadline", false, func(t *Task) any { return t.Cron.StartingDeadline }},
	{"jitter", false, func(t *Task) any { return t.Cron.Jitter }},
	{"timeout", false, func(t *Task) any { return t.Cron.Timeout }},
	{"retry", false, func(t *Task) any { return t.Cron.Retry }},
	{"suspend", false, func(t *Task) any { return t.Cron.Suspend }},
	{"history", false, func(t *Task) any { return t.Cron.History }},
	{"scope", false, func(t *Task) any { return t.Cron.Scope }},
}

// Compare says which keys differ from old to new and whether each change
// needs a restart: what the process is started with (kind, command, shell,
// workdir, user, group, umask, env, env files, ports, merge_stderr,
// resources.oom_score_adj) does; scaling, enabling, ordering, restart, stop
// and log rotation settings, the other resource limits (applied to the
// running instances' cgroups) and health checks (the probes are restarted)
// do not. A different name is a different task; the agent handles a rename as
// remove and add, Compare reports it as a restart.
func Compare(old, new *Task) Diff {
	var d Diff
	for _, f := range fields {
		if equalValues(f.get(old), f.get(new)) {
			continue
		}
		if f.restart {
			d.Restart = append(d.Restart, f.key)
		} else {
			d.InPlace = append(d.InPlace, f.key)
		}
	}
	sort.Strings(d.Restart)
	sort.Strings(d.InPlace)
	d.Restart = slices.Compact(d.Restart) // env_file has two rows
	d.InPlace = slices.Compact(d.InPlace) // so has resources.memory_swap_max
	return d
}

// equalValues compares like reflect.DeepEqual, with nil and empty maps and
// slices equal, as the task file cannot tell them apart.
func equalValues(a, b any) bool {
	return reflect.DeepEqual(normalize(reflect.ValueOf(a)), normalize(reflect.ValueOf(b)))
}

func normalize(v reflect.Value) any {
	if (v.Kind() == reflect.Map || v.Kind() == reflect.Slice) && v.Len() == 0 {
		return nil
	}
	return v.Interface()
}
