package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/api/apitest"
)

// TestGolden runs glmctl against a fake agent and compares what it prints
// and returns with testdata/<name>.golden.
func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(b *apitest.Backend)
		socket string // instead of the fake agent's
		args   []string
	}{
		{"status_table", func(b *apitest.Backend) { b.SetStatus(fleet()) }, "", []string{"status"}},
		{"status_table_filtered", func(b *apitest.Backend) { b.SetStatus(fleet()) }, "", []string{"status", "export", "nope", "batch"}},
		{"status_empty", nil, "", []string{"status"}},
		{"status_discovery_degraded", func(b *apitest.Backend) {
			b.SetStatus(fleet()[:2])
			b.SetInfo(api.AgentInfo{Node: "gpu-01", Discovery: "consul at 127.0.0.1:8500: connection refused"})
		}, "", []string{"status"}},
		{"status_resources", func(b *apitest.Backend) { b.SetStatus(withUsage(fleet())) }, "", []string{"status", "--resources"}},
		{"status_json", func(b *apitest.Backend) { b.SetStatus(fleet()[:3]) }, "", []string{"status", "--json"}},
		{"status_json_empty", nil, "", []string{"status", "--json"}},
		{"events", func(b *apitest.Backend) {
			for _, ev := range someEvents() {
				b.Publish(ev)
			}
		}, "", []string{"events"}},
		{"events_json", func(b *apitest.Backend) {
			for _, ev := range someEvents()[:3] {
				b.Publish(ev)
			}
		}, "", []string{"events", "--json"}},
		{"reload_dry_run", func(b *apitest.Backend) { b.SetPlan(somePlan()) }, "", []string{"reload", "--dry-run"}},
		{"reload_no_changes", nil, "", []string{"reload"}},
		{"stop_instances", nil, "", []string{"stop", "glm-serve:1", "batch"}},
		{"stop_not_found", func(b *apitest.Backend) {
			b.SetError("stop", fmt.Errorf("no task named %q: %w", "nope", api.ErrNotFound))
		}, "", []string{"stop", "nope"}},
		{"logs_rotate", nil, "", []string{"logs", "--rotate", "glm-serve"}},
		{"runs", func(b *apitest.Backend) { b.SetRuns("export", someRuns()) }, "", []string{"runs", "export"}},
		{"runs_none", nil, "", []string{"runs", "export"}},
		{"run", func(b *apitest.Backend) { b.SetRuns("export", someRuns()) }, "", []string{"run", "export"}},
		{"run_active", func(b *apitest.Backend) {
			b.SetError("run", fmt.Errorf("run export now: cron: a run is active: %w (concurrency = \"forbid\"; glmctl stop export ends it)", api.ErrConflict))
		}, "", []string{"run", "export"}},
		{"gpus", func(b *apitest.Backend) { b.SetGPUs(someGPUs()) }, "", []string{"gpus"}},
		{"gpus_json", func(b *apitest.Backend) { b.SetGPUs(someGPUs()[:1]) }, "", []string{"gpus", "--json"}},
		{"gpus_none", nil, "", []string{"gpus"}},
		{"leader", func(b *apitest.Backend) {
			b.SetLeader(api.LeaderInfo{Mode: "consul", Holder: "gpu-07", Address: "10.0.0.7", Since: ptr(t0.Add(-3 * time.Hour)), Token: 4711})
		}, "", []string{"leader"}},
		{"leader_standalone", func(b *apitest.Backend) {
			b.SetLeader(api.LeaderInfo{Mode: "standalone", Holder: "gpu-01", Self: true})
		}, "", []string{"leader"}},
		{"leader_degraded", func(b *apitest.Backend) {
			b.SetLeader(api.LeaderInfo{Mode: "consul", Degraded: "consul at 127.0.0.1:8500: connection refused"})
		}, "", []string{"leader", "--json"}},
		{"unreachable", nil, "/nonexistent/glmd.sock", []string{"status"}},
		{"usage_unknown_command", nil, "", []string{"stauts"}},
		{"usage_unknown_flag", nil, "", []string{"status", "--yaml"}},
		{"usage_missing_task", nil, "", []string{"restart"}},
		{"usage_bad_instance", nil, "", []string{"stop", "glm-serve:one"}},
		{"usage_logs_rotate_follow", nil, "", []string{"logs", "--rotate", "-f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fixNow(t)
			b, sock := serve(t)
			if tt.setup != nil {
				tt.setup(b)
			}
			if tt.socket != "" {
				sock = tt.socket
			}
			checkGolden(t, tt.name, glmctl(t, sock, tt.args...).render())
		})
	}
}

func someGPUs() []api.GPUStatus {
	return []api.GPUStatus{
		{Index: 0, UUID: "GPU-0a1b", Name: "NVIDIA H100 80GB HBM3", PCIBusID: "00000000:18:00.0", MemoryTotal: 80 << 30,
			MemoryUsed: 71 << 30, Utilization: 0.93, Temperature: 61, PowerWatts: 512, NUMANode: 0, Health: "healthy",
			Holders: []string{"glm-serve:0"}},
		{Index: 1, UUID: "GPU-1f2e", Name: "NVIDIA H100 80GB HBM3", MemoryTotal: 80 << 30, MemoryUsed: 2 << 30,
			Utilization: 0, Temperature: 35, PowerWatts: 70, NUMANode: 0, Health: "healthy",
			Strays: []api.GPUProcess{{PID: 4242, MemoryBytes: 2 << 30}}},
		{Index: 2, UUID: "GPU-2c3d", Name: "NVIDIA H100 80GB HBM3", MemoryTotal: 80 << 30, MemoryUsed: -1,
			Utilization: -1, Temperature: -1, PowerWatts: -1, NUMANode: 1, Health: "lost", Reason: "xid 79: fallen off the bus, reboot required"},
	}
}

func someRuns() []api.CronRun {
	day := func(d int, h int) *time.Time {
		return ptr(t0.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour))
	}
	return []api.CronRun{
		{ID: 1, Attempt: 1, Trigger: "schedule", Scheduled: day(-3, 0), Start: day(-3, 0), End: ptr(day(-3, 0).Add(4 * time.Minute)),
			ExitCode: 0, Result: "success", Stdout: "/var/log/glmd/export/runs/1-1.stdout.log"},
		{ID: 2, Trigger: "schedule", Scheduled: day(-2, 0), ExitCode: -1, Result: "missed", Missed: 2},
		{ID: 3, Attempt: 1, Trigger: "catch-up", Scheduled: day(-1, 0), Start: day(-1, 1), End: ptr(day(-1, 1).Add(time.Hour)),
			ExitCode: 137, Signal: "SIGKILL", Result: "timeout", Stdout: "/var/log/glmd/export/runs/3-1.stdout.log"},
		{ID: 3, Attempt: 2, Trigger: "retry", Scheduled: day(-1, 0), Start: day(-1, 2), End: ptr(day(-1, 2).Add(2 * time.Minute)),
			ExitCode: 1, Result: "failed", Stdout: "/var/log/glmd/export/runs/3-2.stdout.log"},
		{ID: 4, Attempt: 1, Trigger: "manual", Scheduled: ptr(t0.Add(-time.Minute)), Start: ptr(t0.Add(-time.Minute)), ExitCode: -1,
			Stdout: "/var/log/glmd/export/runs/4-1.stdout.log"},
	}
}
