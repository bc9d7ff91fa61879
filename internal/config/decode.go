package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// taskKeys is the schema of a task file.
var taskKeys = &keySet{
	keys: map[string]*keySet{
		"name": nil, "kind": nil, "command": nil, "shell": nil, "workdir": nil,
		"user": nil, "group": nil, "umask": nil, "env": {free: true}, "env_file": nil,
		"instances": nil, "depends_on": nil, "enabled": nil, "port": nil, "ports": {free: true},
		"restart": {keys: map[string]*keySet{
			"policy": nil, "success_codes": nil, "delay": nil, "max_delay": nil,
			"min_uptime": nil, "limit": nil, "window": nil,
		}},
		"stop": {keys: map[string]*keySet{"signal": nil, "timeout": nil}},
		"logs": {keys: map[string]*keySet{
			"max_size": nil, "max_files": nil, "max_age": nil, "rotate_every": nil,
			"compress": nil, "merge_stderr": nil,
		}},
		"resources": resourceKeys,
		"health":    healthKeys,
		"gpu":       gpuKeys,
		"service":   serviceKeys,
		// kind = "cron"
		"schedule": nil, "timezone": nil, "concurrency": nil, "starting_deadline": nil,
		"jitter": nil, "timeout": nil, "suspend": nil, "history": nil, "scope": nil,
		"retry": {keys: map[string]*keySet{"attempts": nil, "delay": nil, "max_delay": nil}},
	},
	alias: map[string]string{"tz": "timezone", "cron": "schedule", "concurrencypolicy": "concurrency"},
}

// taskFile is one task file going through decode, defaults and validate.
type taskFile struct {
	*document
	stem string
	t    Task
	// commandString: command was written as one string (only valid with shell).
	commandString bool
	envRefs       []envRef     // the env files to read, from planEnvFiles
	notes         []*FileError // remarks of this load, for LoadOptions.Note
}

// decode converts the raw TOML values into t, recording a problem for every
// key that is unknown or holds a value of the wrong type or form. Range and
// cross-field checks are validate's.
func (f *taskFile) decode() {
	f.checkKeys(taskKeys)
	t := &f.t

	if s, ok := f.str("name"); ok {
		t.Name = s
	}
	if s, ok := f.str("kind"); ok {
		switch k := Kind(s); k {
		case KindService, KindJob, KindCron:
			t.Kind = k
		default:
			hint := ""
			if best := closest(s, []string{"service", "job", "cron"}); best != "" {
				hint = fmt.Sprintf("did you mean %q? ", best)
			}
			f.errorf("kind", "%q is not a task kind (%suse \"service\", \"job\" or \"cron\")", s, hint)
		}
	}
	f.decodeCommand()
	if b, ok := f.boolean("shell"); ok {
		t.Shell = b
	}
	if s, ok := f.str("workdir"); ok {
		t.Workdir = s
	}
	if s, ok := f.str("user"); ok {
		t.User = s
	}
	if s, ok := f.str("group"); ok {
		t.Group = s
	}
	f.decodeUmask()
	f.decodeEnv()
	if list, ok := f.strs("env_file"); ok {
		for _, p := range list {
			ef := EnvFile{Path: p}
			if rest, optional := strings.CutPrefix(p, "-"); optional {
				ef = EnvFile{Path: rest, Optional: true}
			}
			t.EnvFiles = append(t.EnvFiles, ef)
		}
	}
	if n, ok := f.integer("instances"); ok {
		t.Instances = n
	}
	if list, ok := f.strs("depends_on"); ok {
		t.DependsOn = list
	}
	if b, ok := f.boolean("enabled"); ok {
		t.Enabled = b
	}
	if n, ok := f.integer("port"); ok {
		t.Port = n
	}
	if m, ok := f.table("ports"); ok {
		t.Ports = map[string]int{}
		for _, name := range sortedKeys(m) {
			if n, ok := f.integer("ports", name); ok {
				t.Ports[name] = n
			}
		}
	}

	if _, ok := f.table("restart"); ok {
		r := &t.Restart
		if s, ok := f.str("restart", "policy"); ok {
			switch p := RestartPolicy(s); p {
			case RestartAlways, RestartOnFailure, RestartNever:
				r.Policy = p
			default:
				hint := ""
				if best := closest(s, []string{"always", "on-failure", "never"}); best != "" {
					hint = fmt.Sprintf("did you mean %q? ", best)
				}
				f.errorf("restart.policy", "%q is not a restart policy (%suse \"always\", \"on-failure\" or \"never\")", s, hint)
			}
		}
		if list, ok := f.ints("restart", "success_codes"); ok {
			r.SuccessCodes = list
		}
		if d, ok := f.duration("restart", "delay"); ok {
			r.Delay = d
		}
		if d, ok := f.duration("restart", "max_delay"); ok {
			r.MaxDelay = d
		}
		if d, ok := f.duration("restart", "min_uptime"); ok {
			r.MinUptime = d
		}
		if n, ok := f.integer("restart", "limit"); ok {
			r.Limit = n
		}
		if d, ok := f.duration("restart", "window"); ok {
			r.Window = d
		}
	}
	if _, ok := f.table("stop"); ok {
		if s, ok := f.str("stop", "signal"); ok {
			sig, err := ParseSignal(s)
			if err != nil {
				f.errorAt("stop.signal", "stop.signal", err)
			} else {
				t.Stop.Signal = sig
			}
		}
		if d, ok := f.duration("stop", "timeout"); ok {
			t.Stop.Timeout = d
		}
	}
	if _, ok := f.table("logs"); ok {
		l := &t.Logs
		if n, ok := f.size("logs", "max_size"); ok {
			l.MaxSize = n
		}
		if n, ok := f.integer("logs", "max_files"); ok {
			l.MaxFiles = n
		}
		if d, ok := f.duration("logs", "max_age"); ok {
			l.MaxAge = d
		}
		if d, ok := f.duration("logs", "rotate_every"); ok {
			l.RotateEvery = d
		}
		if b, ok := f.boolean("logs", "compress"); ok {
			l.Compress = b
		}
		if b, ok := f.boolean("logs", "merge_stderr"); ok {
			l.MergeStderr = b
		}
	}
	f.decodeResources()
	f.decodeHealth()
	f.decodeGPU()
	f.decodeService()
	f.decodeCron()
}

// decodeCommand accepts an array of strings, or one string (for shell = true).
func (f *taskFile) decodeCommand() {
	v, ok := f.lookup("command")
	if !ok {
		return
	}
	if s, isStr := v.(string); isStr {
		f.t.Command = []string{s}
		f.commandString = true
		f.given["command"] = true
		return
	}
	if list, ok := f.strs("command"); ok {
		f.t.Command = list
	}
}

// decodeUmask accepts an octal string ("0027") or an integer (0o027).
func (f *taskFile) decodeUmask() {
	v, ok := f.lookup("umask")
	if !ok {
		return
	}
	switch v := v.(type) {
	case string:
		n, err := strconv.ParseUint(strings.TrimPrefix(v, "0o"), 8, 32)
		if err != nil || v == "" {
			f.errorf("umask", "%q is not an octal umask (try \"0027\")", v)
			return
		}
		if n > 0o777 {
			f.errorf("umask", "%q is out of range (0000 to 0777)", v)
			return
		}
		f.t.Umask = int(n)
	case int64:
		if v < 0 || v > 0o777 {
			f.errorf("umask", "%d is out of range (0 to 0o777; write umasks as strings such as \"0027\")", v)
			return
		}
		f.t.Umask = int(v)
	default:
		f.wrongType("umask", v, "an octal string such as \"0027\"")
		return
	}
	f.given["umask"] = true
}

func (f *taskFile) decodeEnv() {
	m, ok := f.table("env")
	if !ok {
		return
	}
	f.t.Env = map[string]string{}
	for _, name := range sortedKeys(m) {
		key := toml.Key{"env", name}.String()
		switch v := m[name].(type) {
		case string:
			f.t.Env[name] = v
		case int64, float64, bool:
			f.errorf(key, "must be a string, not %s (try \"%v\")", tomlType(v), v)
		default:
			f.wrongType(key, v, "a string")
		}
	}
}
