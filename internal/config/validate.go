package config

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Limits checked by validation.
const (
	MaxInstances = 4096
	maxPort      = 65535
)

var (
	taskNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	portNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	// userRE is loose on purpose: names are looked up when an instance
	// starts; this only keeps out what can never be a user or group name.
	userRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$`)
)

const taskNameRule = "1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"

// validate checks ranges and how keys fit together. Keys whose value was
// already reported bad carry their default here and are not checked again.
func (f *taskFile) validate(node string) {
	t := &f.t
	given := func(key string) bool { return f.given[key] }

	if !taskNameRE.MatchString(t.Name) {
		if given("name") {
			f.errorf("name", "%q is not a valid task name (%s)", t.Name, taskNameRule)
		} else if f.ok("name") {
			f.errorAt("name", "name", fmt.Errorf("the file name gives the task name %q, which is not valid (%s): rename the file or set name", t.Name, taskNameRule))
		}
	}
	f.validateCommand()
	for _, k := range []string{"user", "group"} {
		v := t.User
		if k == "group" {
			v = t.Group
		}
		if given(k) && !userRE.MatchString(v) {
			f.errorf(k, "%q is not a valid %s name", v, k)
		}
	}
	for _, name := range sortedKeys(t.Env) {
		if !envNameRE.MatchString(name) {
			f.errorf(toml.Key{"env", name}.String(), "%q is not a valid variable name (letters, digits and _, not starting with a digit)", name)
		}
	}
	for i, ef := range t.EnvFiles {
		if ef.Path == "" {
			f.errorAt("env_file", fmt.Sprintf("env_file[%d]", i), fmt.Errorf("empty path"))
		}
	}
	if given("instances") && (t.Instances < 1 || t.Instances > MaxInstances) {
		f.errorf("instances", "%d is out of range (1 to %d)", t.Instances, MaxInstances)
	}
	f.validateDependsOn()
	f.validatePorts()
	f.validateRestart()
	if given("stop.timeout") && t.Stop.Timeout < 0 {
		f.errorf("stop.timeout", "must not be negative")
	}
	f.validateLogs()
	f.validateResources()
	f.validateHealth()
	f.validateGPU()
	f.validateCron()
	f.validateTemplates(node)
}

func (f *taskFile) validateCommand() {
	t := &f.t
	if !f.given["command"] {
		if f.ok("command") {
			f.errorf("command", `missing: the program to run and its arguments, e.g. command = ["python3", "-m", "server"]`)
		}
		return
	}
	switch {
	case f.commandString && !t.Shell && f.ok("shell"):
		f.errorf("command", "a string runs through a shell only with shell = true; without a shell write an array (try command = %s)", tomlArray(strings.Fields(t.Command[0])))
	case !f.commandString && t.Shell && f.ok("shell"):
		f.errorf("command", "with shell = true, write the command as one string for /bin/sh -c (try command = %q)", strings.Join(t.Command, " "))
	case len(t.Command) == 0:
		f.errorf("command", "must not be empty")
	case t.Command[0] == "":
		f.errorf("command", "the program (first element) must not be empty")
	}
}

func tomlArray(list []string) string {
	quoted := make([]string, len(list))
	for i, s := range list {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

func (f *taskFile) validateDependsOn() {
	t := &f.t
	seen := map[string]bool{}
	for _, dep := range t.DependsOn {
		switch {
		case !taskNameRE.MatchString(dep):
			f.errorf("depends_on", "%q is not a valid task name (%s)", dep, taskNameRule)
		case dep == t.Name:
			f.errorf("depends_on", "task %q depends on itself", dep)
		case seen[dep]:
			f.errorf("depends_on", "%q is listed twice", dep)
		}
		seen[dep] = true
	}
}

// validatePorts checks each port and that the ranges of fixed ports (one
// port per instance) do not overlap.
func (f *taskFile) validatePorts() {
	t := &f.t
	type portRange struct {
		key         string
		first, last int
	}
	var ranges []portRange
	check := func(key string, p int) {
		if p < 0 || p > maxPort {
			f.errorf(key, "%d is out of range (1 to %d, or 0 to let glmd pick a free port per instance)", p, maxPort)
			return
		}
		if p == 0 {
			return
		}
		last := p + t.Instances - 1
		if last > maxPort {
			f.errorf(key, "%d + %d instances runs past port %d (instance i gets port %d + i)", p, t.Instances, maxPort, p)
			return
		}
		ranges = append(ranges, portRange{key, p, last})
	}
	if f.given["port"] {
		check("port", t.Port)
	}
	for _, name := range sortedKeys(t.Ports) {
		key := toml.Key{"ports", name}.String()
		if !portNameRE.MatchString(name) {
			f.errorf(key, "%q is not a valid port name (lower-case letters, digits and _, starting with a letter)", name)
			continue
		}
		check(key, t.Ports[name])
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i].first < ranges[j].first })
	for i := 1; i < len(ranges); i++ {
		a, b := ranges[i-1], ranges[i]
		if b.first <= a.last {
			f.errorf(b.key, "uses ports %s (one per instance), overlapping %s of %s", portSpan(b.first, b.last), portSpan(a.first, a.last), a.key)
		}
	}
}

func portSpan(first, last int) string {
	if first == last {
		return fmt.Sprint(first)
	}
	return fmt.Sprintf("%d-%d", first, last)
}

func (f *taskFile) validateRestart() {
	r := &f.t.Restart
	given := func(key string) bool { return f.given[key] }
	if given("restart.success_codes") {
		if len(r.SuccessCodes) == 0 {
			f.errorf("restart.success_codes", "must list at least one exit code (the default is [0])")
		}
		for _, c := range r.SuccessCodes {
			if c < 0 || c > 255 {
				f.errorf("restart.success_codes", "%d is not an exit code (0 to 255)", c)
			}
		}
	}
	if given("restart.delay") && r.Delay <= 0 {
		f.errorf("restart.delay", "must be positive (the default is %q)", DefaultRestartDelay.String())
	}
	for _, key := range []string{"restart.max_delay", "restart.min_uptime", "restart.window"} {
		var d time.Duration
		switch key {
		case "restart.max_delay":
			d = r.MaxDelay
		case "restart.min_uptime":
			d = r.MinUptime
		case "restart.window":
			d = r.Window
		}
		if given(key) && d < 0 {
			f.errorf(key, "must not be negative")
		}
	}
	if f.ok("restart.delay") && f.ok("restart.max_delay") && r.Delay > 0 && r.MaxDelay >= 0 && r.Delay > r.MaxDelay {
		key := "restart.max_delay"
		if given("restart.delay") && !given("restart.max_delay") {
			key = "restart.delay"
		}
		f.errorf(key, "delay %s is longer than max_delay %s", shortDuration(r.Delay), shortDuration(r.MaxDelay))
	}
	if given("restart.limit") && r.Limit < 0 {
		f.errorf("restart.limit", "must not be negative (0 = never give up)")
	}
	if f.ok("restart.limit") && f.ok("restart.window") && r.Limit > 0 && r.Window == 0 {
		f.errorf("restart.window", "must be positive when limit is set (limit counts restarts within window)")
	}
}

func (f *taskFile) validateLogs() {
	l := &f.t.Logs
	given := func(key string) bool { return f.given[key] }
	if given("logs.max_size") && l.MaxSize < 4096 {
		f.errorf("logs.max_size", "%d bytes is too small (at least 4KiB)", l.MaxSize)
	}
	if given("logs.max_files") && l.MaxFiles < 1 {
		f.errorf("logs.max_files", "must be at least 1 (the number of rotated files kept per stream)")
	}
	if given("logs.max_age") && l.MaxAge < 0 {
		f.errorf("logs.max_age", "must not be negative (0 = keep files by count only)")
	}
	if given("logs.rotate_every") && l.RotateEvery != 0 && l.RotateEvery < time.Minute {
		f.errorf("logs.rotate_every", "%s is too short (0 = by size only, else at least 1m)", shortDuration(l.RotateEvery))
	}
}

// sampleVars are the values templates are rendered with during validation.
// A port whose value was bad still counts as declared, so that its uses in
// templates are not reported as well.
func (f *taskFile) sampleVars(node string) Vars {
	t := &f.t
	v := Vars{Name: t.Name, Node: node, Port: NoPort, Ports: map[string]int{}}
	if t.Port != NoPort || !f.ok("port") {
		v.Port = max(t.Port, 0)
	}
	if m, ok := f.lookup("ports"); ok {
		if m, ok := m.(map[string]any); ok {
			for name := range m {
				v.Ports[name] = max(t.Ports[name], 0)
			}
		}
	}
	return v
}

// validateTemplates parses every templated value, checks what it refers
// to, and renders it with sample values.
func (f *taskFile) validateTemplates(node string) {
	t := &f.t
	vars := f.sampleVars(node)
	renderCheck := func(posKey, key, text string, allowPorts bool) (string, bool) {
		return f.renderCheck(vars, posKey, key, text, allowPorts)
	}
	if f.ok("command") {
		for i, arg := range t.Command {
			key := fmt.Sprintf("command[%d]", i)
			if f.commandString {
				key = "command"
			}
			out, ok := renderCheck("command", key, arg, true)
			if ok && i == 0 && out == "" && arg != "" {
				f.errorAt("command", key, fmt.Errorf("the program renders to an empty string"))
			}
		}
	}
	for _, name := range sortedKeys(t.Env) {
		key := toml.Key{"env", name}.String()
		renderCheck(key, key, t.Env[name], true)
	}
	if f.given["workdir"] && t.Workdir != "" {
		if out, ok := renderCheck("workdir", "workdir", t.Workdir, true); ok && !path.IsAbs(out) {
			f.errorf("workdir", "%q is not an absolute path", out)
		}
	}
	for i, ef := range t.EnvFiles {
		key := fmt.Sprintf("env_file[%d]", i)
		if ef.Path == "" {
			continue
		}
		if out, ok := renderCheck("env_file", key, ef.Path, false); ok && !path.IsAbs(out) {
			f.errorAt("env_file", key, fmt.Errorf("%q is not an absolute path", out))
		}
	}
	f.validateHealthTemplates(vars)
	f.validateService(vars)
}

// renderCheck checks the template text of key and renders it with vars,
// reporting a problem at posKey.
func (f *taskFile) renderCheck(vars Vars, posKey, key, text string, allowPorts bool) (string, bool) {
	tmpl, err := checkTemplate(key, text, vars.Port != NoPort, vars.Ports, allowPorts)
	if err == nil {
		var out string
		out, err = renderTemplate(tmpl, vars)
		if err == nil && strings.ContainsRune(out, 0) {
			err = fmt.Errorf("contains a NUL byte")
		}
		if err == nil {
			return out, true
		}
	}
	f.errorAt(posKey, key, err)
	return "", false
}
