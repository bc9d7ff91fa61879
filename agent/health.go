package agent

import (
	"context"
	"fmt"
	"reflect"

	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/health"
	"github.com/open-autoglm/glmd/internal/metrics"
	"github.com/open-autoglm/glmd/supervisor"
)

// probeOutput bounds what an exec probe's output the agent keeps.
const probeOutput = 4 << 10

// commandRunner is what exec probes need of the launcher: the OS launcher
// runs a command to completion through the agent's reaper.
type commandRunner interface {
	Run(ctx context.Context, c *supervisor.Command, maxOutput int) (supervisor.Exit, []byte, error)
}

// monitorFor returns the health monitor of in for its rendered checks:
// the one it has when they did not change, so that an unrelated in-place
// change (log retention, a limit) does not make a ready instance start its
// checks over. nil when the task has no checks.
func (a *Agent) monitorFor(in *instance, checks []config.HealthCheck, cmd supervisor.Command) (*health.Monitor, error) {
	if len(checks) == 0 {
		in.monitor, in.checks = nil, nil
		return nil, nil
	}
	if in.monitor != nil && reflect.DeepEqual(in.checks, checks) {
		return in.monitor, nil
	}
	m, err := health.NewMonitor(healthChecks(checks), health.Deps{
		Transport: a.probeTransport,
		Log:       a.log.With("task", cmd.Task, "instance", cmd.Instance),
		Exec: func(ctx context.Context, argv []string) (int, []byte, error) {
			run, ok := a.launcher.(commandRunner)
			if !ok {
				return 0, nil, fmt.Errorf("exec probes need the OS launcher")
			}
			c := cmd
			c.Argv, c.Stdout, c.Stderr, c.Cgroup = argv, nil, nil, nil
			e, out, err := run.Run(ctx, &c, probeOutput)
			return e.Code, out, err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("health checks of %s: %w", instanceName(cmd.Task, cmd.Instance), err)
	}
	in.monitor, in.checks = m, checks
	return m, nil
}

// healthChecks turns the task file's rendered checks into the health
// package's.
func healthChecks(hs []config.HealthCheck) []health.Check {
	out := make([]health.Check, len(hs))
	for i, h := range hs {
		c := health.Check{
			Role: string(h.Role), Type: string(h.Type),
			Interval: h.Interval, Timeout: h.Timeout, InitialDelay: h.InitialDelay,
			FailureThreshold: h.FailureThreshold, SuccessThreshold: h.SuccessThreshold,
			StartPeriod: h.StartPeriod,
		}
		switch h.Type {
		case config.ProbeHTTP:
			c.HTTP = &health.HTTPCheck{Method: h.Method, URL: h.URL, Headers: h.Headers, Body: h.Body,
				StatusMin: h.Status.Min, StatusMax: h.Status.Max, BodyContains: h.BodyContains}
		case config.ProbeTCP:
			c.TCP = &health.TCPCheck{Address: h.Address}
		case config.ProbeGRPC:
			c.GRPC = &health.GRPCCheck{Address: h.Address, Service: h.Service}
		case config.ProbeExec:
			c.Exec = &health.ExecCheck{Argv: h.Command}
		}
		out[i] = c
	}
	return out
}

// probeMetrics is the metrics view of an instance's checks.
func probeMetrics(m *health.Monitor) []metrics.Probe {
	if m == nil {
		return nil
	}
	stats := m.Stats()
	out := make([]metrics.Probe, len(stats))
	for i, s := range stats {
		out[i] = metrics.Probe{Role: s.Role, Results: s.Results, ConsecutiveFailures: s.ConsecutiveFailures,
			LatencyBuckets: s.Latency.Buckets, LatencyCount: s.Latency.Count, LatencySum: s.Latency.Sum}
	}
	return out
}
