package config

import "time"

// Defaults of a task file, shared with docs/tasks.md. The restart defaults
// follow systemd for the first retry (100 ms) and Kubernetes for the cap
// (5 min) and for services never giving up; see docs/tasks.md for why.
const (
	DefaultRestartDelay     = 100 * time.Millisecond
	DefaultRestartMaxDelay  = 5 * time.Minute
	DefaultRestartMinUptime = time.Minute
	DefaultServiceLimit     = 0 // never give up
	DefaultServiceWindow    = 10 * time.Minute
	DefaultJobLimit         = 3
	DefaultJobWindow        = 24 * time.Hour
	DefaultStopTimeout      = 30 * time.Second
	DefaultLogMaxSize       = 50 << 20
	DefaultLogMaxFiles      = 5
)

// applyDefaults fills every key the file did not set (or set to a bad
// value, which is already reported) with its default; some defaults depend
// on the kind.
func (f *taskFile) applyDefaults() {
	t := &f.t
	set := func(key string) bool { return f.given[key] }

	if !set("name") {
		t.Name = f.stem
	}
	if !set("kind") {
		t.Kind = KindService
	}
	if !set("umask") {
		t.Umask = InheritUmask
	}
	if !set("instances") {
		t.Instances = 1
	}
	if !set("enabled") {
		t.Enabled = true
	}
	if !set("port") {
		t.Port = NoPort
	}

	job := t.Kind == KindJob || t.Kind == KindCron
	r := &t.Restart
	if !set("restart.policy") {
		r.Policy = RestartAlways
		if job {
			r.Policy = RestartOnFailure
		}
	}
	if !set("restart.success_codes") {
		r.SuccessCodes = []int{0}
	}
	if !set("restart.delay") {
		r.Delay = DefaultRestartDelay
	}
	if !set("restart.max_delay") {
		r.MaxDelay = DefaultRestartMaxDelay
	}
	if !set("restart.min_uptime") {
		r.MinUptime = DefaultRestartMinUptime
	}
	if !set("restart.limit") {
		r.Limit = DefaultServiceLimit
		if job {
			r.Limit = DefaultJobLimit
		}
	}
	if !set("restart.window") {
		r.Window = DefaultServiceWindow
		if job {
			r.Window = DefaultJobWindow
		}
	}

	if !set("stop.signal") {
		t.Stop.Signal = defaultStopSignal
	}
	if !set("stop.timeout") {
		t.Stop.Timeout = DefaultStopTimeout
	}

	if !set("logs.max_size") {
		t.Logs.MaxSize = DefaultLogMaxSize
	}
	if !set("logs.max_files") {
		t.Logs.MaxFiles = DefaultLogMaxFiles
	}

	// An empty table or list means the same as none; keep one form, so that
	// Hash and Compare see no difference between the two.
	if len(t.Env) == 0 {
		t.Env = nil
	}
	if len(t.Ports) == 0 {
		t.Ports = nil
	}
	if len(t.EnvFiles) == 0 {
		t.EnvFiles = nil
	}
	if len(t.DependsOn) == 0 {
		t.DependsOn = nil
	}
	if len(t.Resources.IO) == 0 {
		t.Resources.IO = nil
	}
	f.defaultHealth()
	f.defaultGPU()
	f.defaultService()
	f.defaultCron()
}
