package agent

import (
	"github.com/open-autoglm/glmd/internal/metrics"
	"github.com/open-autoglm/glmd/internal/tasklog"
	"github.com/open-autoglm/glmd/supervisor"
)

var _ metrics.Source = (*Agent)(nil)

// Instances is the metrics view of every instance, read at scrape time.
func (a *Agent) Instances() []metrics.Instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []metrics.Instance
	for _, t := range a.tasks {
		for _, in := range t.instances {
			st := in.runner.Status()
			m := metrics.Instance{
				Task: t.spec.Name, Instance: in.index, State: st.State.String(),
				Ready: st.Ready, Restarts: st.Restarts, Exits: st.Exits, Probes: probeMetrics(in.monitor),
			}
			if st.State == supervisor.StateRunning {
				m.StartedAt = st.StartedAt
			}
			if rs, ok := in.runner.Stats(); ok {
				m.Resources = &rs
			}
			ls := in.logs.Stats()
			m.Logs = []metrics.LogStream{logStream(tasklog.Stdout, ls.Stdout)}
			if !t.spec.Logs.MergeStderr {
				m.Logs = append(m.Logs, logStream(tasklog.Stderr, ls.Stderr))
			}
			out = append(out, m)
		}
	}
	return out
}

func logStream(s tasklog.Stream, st tasklog.StreamStats) metrics.LogStream {
	return metrics.LogStream{Stream: s.String(), Bytes: st.Bytes, Rotations: st.Rotations,
		DroppedBytes: st.DroppedBytes, DroppedLines: st.DroppedLines}
}

// AgentState is the metrics view of the agent itself.
func (a *Agent) AgentState() metrics.Agent {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := metrics.Agent{Reloads: map[string]int{}, Tasks: len(a.tasks)}
	for k, v := range a.reloads {
		m.Reloads[k] = v
	}
	for _, f := range a.invalidFiles() {
		errs := a.invalid[f]
		m.InvalidFiles = append(m.InvalidFiles, metrics.InvalidFile{File: f, Task: errs[0].Task, Message: joinErrors(errs)})
	}
	return m
}
