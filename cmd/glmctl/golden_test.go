package main

import (
	"fmt"
	"testing"

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
