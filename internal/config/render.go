package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Render returns instance v.Instance of t with every template executed:
// argv (with Shell: /bin/sh -c and the one command string), the working
// directory and the environment. The environment holds, later wins:
// GLMD_TASK, GLMD_INSTANCE, GLMD_NODE, GLMD_PORT (when the task has a
// port) and GLMD_PORT_<NAME> for each named port, then the variables of
// the env files in the order listed (as read at load time), then env.
// PATH, HOME, USER and LOGNAME are the launcher's to add. The health
// checks get their URL, header values, body, address and command
// rendered. v.Name is ignored: a task is always rendered under its own name.
func (t *Task) Render(v Vars) (Instance, error) {
	v.Name = t.Name
	for name := range t.Ports {
		if _, ok := v.Ports[name]; !ok {
			return Instance{}, fmt.Errorf("task %s: no port assigned for ports.%s", t.Name, name)
		}
	}
	var inst Instance

	for i, arg := range t.Command {
		out, err := render(fmt.Sprintf("command[%d]", i), arg, v)
		if err != nil {
			return Instance{}, fmt.Errorf("task %s: command[%d]: %w", t.Name, i, err)
		}
		inst.Argv = append(inst.Argv, out)
	}
	if t.Shell {
		inst.Argv = append([]string{"/bin/sh", "-c"}, inst.Argv...)
	}

	wd, err := render("workdir", t.Workdir, v)
	if err != nil {
		return Instance{}, fmt.Errorf("task %s: workdir: %w", t.Name, err)
	}
	inst.Workdir = wd

	env := map[string]string{
		"GLMD_TASK":     t.Name,
		"GLMD_INSTANCE": strconv.Itoa(v.Instance),
		"GLMD_NODE":     v.Node,
	}
	if t.Port != NoPort {
		env["GLMD_PORT"] = strconv.Itoa(v.Port)
	}
	for name := range t.Ports {
		env["GLMD_PORT_"+strings.ToUpper(name)] = strconv.Itoa(v.Ports[name])
	}
	for i, ef := range t.EnvFiles {
		p, err := render(fmt.Sprintf("env_file[%d]", i), ef.Path, v)
		if err != nil {
			return Instance{}, fmt.Errorf("task %s: env_file[%d]: %w", t.Name, i, err)
		}
		vars, ok := t.EnvFileVars[p]
		if !ok {
			if ef.Optional {
				continue
			}
			return Instance{}, fmt.Errorf("task %s: env file %s was not read when the task file was loaded (reload to read it)", t.Name, p)
		}
		for k, val := range vars {
			env[k] = val
		}
	}
	for k, tmpl := range t.Env {
		out, err := render("env."+k, tmpl, v)
		if err != nil {
			return Instance{}, fmt.Errorf("task %s: env.%s: %w", t.Name, k, err)
		}
		env[k] = out
	}

	for i, c := range t.Health {
		rc, err := renderHealth(c, i, v)
		if err != nil {
			return Instance{}, fmt.Errorf("task %s: %w", t.Name, err)
		}
		inst.Health = append(inst.Health, rc)
	}

	if t.Service != nil {
		svc, err := renderService(t.Service, v)
		if err != nil {
			return Instance{}, fmt.Errorf("task %s: %w", t.Name, err)
		}
		inst.Service = svc
	}

	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	inst.Env = make([]string, len(keys))
	for i, k := range keys {
		inst.Env[i] = k + "=" + env[k]
	}
	return inst, nil
}
