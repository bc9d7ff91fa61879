package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/supervisor"
)

// dependencyLoop starts tasks once what they depend on is up: a service
// dependency when all its instances run and are ready (pass their
// readiness checks), a job dependency when all its instances exited with
// success. It wakes on every state change and readiness flip.
func (a *Agent) dependencyLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
			a.startReady(ctx)
		}
	}
}

func (a *Agent) startReady(ctx context.Context) {
	var start []*instance
	a.mu.Lock()
	for _, t := range a.tasks {
		if t.startAsked || len(t.instances) == 0 {
			continue
		}
		if waiting := a.waitingFor(t); len(waiting) > 0 {
			continue
		}
		t.startAsked = true
		for _, in := range t.instances {
			if !in.held && in.blocked == "" {
				start = append(start, in)
			}
		}
	}
	a.mu.Unlock()
	for _, in := range start {
		in.runner.Start(ctx)
	}
}

// waitingFor lists t's dependencies that are not up yet, with why. Call
// with a.mu held.
func (a *Agent) waitingFor(t *task) []string {
	var out []string
	for _, name := range t.spec.DependsOn {
		d := a.tasks[name]
		switch {
		case d == nil:
			out = append(out, name+" (not loaded)")
		case d.spec.Kind == config.KindCron:
			// A scheduled task is up whenever it is loaded: its runs come
			// and go on their own.
		case len(d.instances) == 0:
			out = append(out, name+" (disabled)")
		default:
			for _, in := range d.instances {
				st := in.runner.Status()
				switch {
				case d.spec.Kind == config.KindJob && st.State != supervisor.StateExited:
					out = append(out, fmt.Sprintf("%s (%s is %s)", name, instanceName(name, in.index), st.State))
				case d.spec.Kind != config.KindJob && st.State != supervisor.StateRunning:
					out = append(out, fmt.Sprintf("%s (%s is %s)", name, instanceName(name, in.index), st.State))
				case d.spec.Kind != config.KindJob && !st.Ready:
					out = append(out, fmt.Sprintf("%s (%s is not ready)", name, instanceName(name, in.index)))
				default:
					continue
				}
				break
			}
		}
	}
	return out
}

// stopLevels orders tasks for stopping: those nothing depends on first,
// then what they depended on; a level stops in parallel.
func stopLevels(tasks map[string]*task) [][]*task {
	depth := map[string]int{}
	var visit func(name string, seen map[string]bool) int
	visit = func(name string, seen map[string]bool) int {
		if d, ok := depth[name]; ok {
			return d
		}
		t := tasks[name]
		if t == nil || seen[name] { // cycles are refused by config; be safe
			return 0
		}
		seen[name] = true
		d := 0
		for _, dep := range t.spec.DependsOn {
			d = max(d, visit(dep, seen)+1)
		}
		depth[name] = d
		return d
	}
	maxDepth := 0
	for name := range tasks {
		maxDepth = max(maxDepth, visit(name, map[string]bool{}))
	}
	levels := make([][]*task, maxDepth+1)
	names := make([]string, 0, len(tasks))
	for n := range tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d := depth[n]
		levels[maxDepth-d] = append(levels[maxDepth-d], tasks[n])
	}
	return levels
}

func waitingMessage(waiting []string) string {
	return "waiting for " + strings.Join(waiting, ", ")
}
