package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/api/apitest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// TestMain fails the package when a command leaves a goroutine behind.
func TestMain(m *testing.M) {
	// glmctl prints wall times in the local zone; the golden files are UTC.
	time.Local = time.UTC
	goleak.VerifyTestMain(m)
}

// t0 is the tests' "now": UPTIME and backoff delays count from it.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func fixNow(t *testing.T) {
	old := now
	now = func() time.Time { return t0 }
	t.Cleanup(func() { now = old })
}

// syncBuffer is a bytes.Buffer that a running command writes while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is what one glmctl run printed and returned.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

// glmctl runs glmctl in-process against sock ("" for no --socket flag).
func glmctl(t *testing.T, sock string, args ...string) result {
	t.Helper()
	full := args
	if sock != "" {
		full = append([]string{"--socket", sock}, args...)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), full, &stdout, &stderr)
	return result{args: args, stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// render is the golden form of a result.
func (r result) render() string {
	return "$ glmctl " + strings.Join(r.args, " ") + "\n" +
		"exit " + strconv.Itoa(r.code) + "\n" +
		"-- stdout --\n" + r.stdout +
		"-- stderr --\n" + r.stderr
}

// checkGolden compares got with testdata/name.golden, or rewrites it
// under -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/glmctl -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./cmd/glmctl -update rewrites it)\n--- got ---\n%s--- want ---\n%s", path, got, want)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

// fleet is a status with one of each state, for the golden tables.
func fleet() []api.InstanceStatus {
	return []api.InstanceStatus{
		{Task: "glm-serve", Instance: 1, State: "running", PID: 1240, Restarts: 1, Ready: false,
			LastExit: api.Exit{Code: 1, Reason: "exited"}, GPUs: []string{"GPU-1f2e"},
			Message: "readiness: GET http://127.0.0.1:8001/health: 503", Kind: "service", File: "glm-serve.toml",
			Since: t0.Add(-2 * time.Hour), StartedAt: ptr(t0.Add(-2*time.Hour - 5*time.Minute)), Ports: map[string]int{"http": 8001}},
		{Task: "glm-serve", Instance: 0, State: "running", PID: 1234, Ready: true, GPUs: []string{"GPU-0a1b"},
			Kind: "service", File: "glm-serve.toml", Since: t0.Add(-76 * time.Hour),
			StartedAt: ptr(t0.Add(-76*time.Hour - 30*time.Minute)), Ports: map[string]int{"http": 8000}},
		{Task: "glm-serve", Instance: 2, State: "backoff", Restarts: 3,
			LastExit: api.Exit{Signal: "SIGKILL", Reason: "signal"}, GPUs: []string{},
			Message: "killed by SIGKILL", Kind: "service", File: "glm-serve.toml", Since: t0.Add(-2 * time.Second),
			NextStart: ptr(t0.Add(8 * time.Second))},
		{Task: "batch", Instance: 0, State: "exited", LastExit: api.Exit{Code: 0, Reason: "exited"},
			Message: "completed", Kind: "job", File: "batch.toml", Since: t0.Add(-time.Minute)},
		{Task: "embed", Instance: 0, State: "failed", Restarts: 5, LastExit: api.Exit{Signal: "SIGKILL", Reason: "oom_killed"},
			Message: "too many restarts (5 in 10m0s); glmctl start embed to try again", Kind: "service", File: "embed.toml",
			Since: t0.Add(-time.Hour)},
		{Task: "export", Instance: 1, State: "starting", PID: 2001, Kind: "service", File: "export.toml",
			Since: t0.Add(-12 * time.Second), StartedAt: ptr(t0.Add(-12 * time.Second))},
		{Task: "export", Instance: 0, State: "stopped", LastExit: api.Exit{Signal: "SIGTERM", Reason: "stopped"},
			Message: "stopped by glmctl", Kind: "service", File: "export.toml", Since: t0.Add(-time.Minute)},
		{Task: "bad-task", Instance: -1, State: "invalid", File: "bad-task.toml",
			Message: "resources.memory_max: invalid size \"20GG\": want a number with an optional unit\n(512M, 20G, 1T); the task keeps running its last good version",
			Since:   t0},
		{Task: "probe", Instance: 0, State: "pending", Kind: "service", File: "probe.toml", Since: t0},
		{Task: "worker", Instance: 0, State: "stopping", PID: 3000, LastExit: api.Exit{Reason: "unhealthy"},
			Message: "liveness failed 3 times", Kind: "service", File: "worker.toml", Since: t0,
			StartedAt: ptr(t0.Add(-4*time.Minute - 10*time.Second))},
	}
}

// withUsage gives the running instances of rows cgroup usage.
func withUsage(rows []api.InstanceStatus) []api.InstanceStatus {
	for i := range rows {
		switch {
		case rows[i].Task == "glm-serve" && rows[i].State == "running":
			rows[i].Cgroup = "glm-serve@" + fmt.Sprint(rows[i].Instance)
			rows[i].Resources = &api.Usage{CPUSeconds: 12345.6, CPUThrottledSeconds: 3.25, MemoryBytes: 40 << 30,
				MemoryPeakBytes: 47<<30 + 512<<20, Pids: 213, IOReadBytes: 18 << 30, IOWriteBytes: 1536,
				CPUs: 8, MemoryMax: 64 << 30, PidsMax: 4096}
		case rows[i].Task == "worker":
			rows[i].Resources = &api.Usage{CPUSeconds: 0.4, MemoryBytes: 900, OOMKills: 2}
		}
	}
	return rows
}

func someEvents() []api.Event {
	return []api.Event{
		{Time: t0.Add(-time.Minute), Type: "agent", Instance: -1, Message: "glmd 1.2.3 started on gpu-01"},
		{Time: t0.Add(-50 * time.Second), Type: "state", Task: "glm-serve", Instance: 0, State: "running", Message: "started pid 1234"},
		{Time: t0.Add(-40 * time.Second), Type: "state", Task: "glm-serve", Instance: 1, State: "exited",
			Message: "worker exited", Exit: &api.Exit{Code: 1, Reason: "exited"}},
		{Time: t0.Add(-39 * time.Second), Type: "state", Task: "embed", Instance: 0, State: "backoff",
			Message: "killed by the kernel", Exit: &api.Exit{Signal: "SIGKILL", Reason: "oom_killed"}},
		{Time: t0.Add(-30 * time.Second), Type: "config", Task: "bad-task", Instance: -1,
			Message: "bad-task.toml:7:12: resources.memory_max: invalid size \"20GG\""},
		{Time: t0.Add(-30 * time.Second).In(time.FixedZone("CET", 3600)), Type: "reload", Instance: -1, Message: "2 changes, 1 error"},
	}
}

func somePlan() api.Plan {
	return api.Plan{
		Changes: []api.Change{
			{Task: "glm-serve", File: "glm-serve.toml", Action: api.ActionRestart, Reasons: []string{"command changed", "instances 2 -> 4"}},
			{Task: "new-task", File: "new-task.toml", Action: api.ActionAdd},
			{Task: "old", Action: api.ActionRemove},
			{Task: "embed", File: "embed.toml", Action: api.ActionInPlace, Reasons: []string{"resources.memory_max changed"}},
			{Task: "bad-task", File: "bad-task.toml", Action: api.ActionInvalid},
		},
		Errors: []string{"bad-task.toml:7:12: resources.memory_max: invalid size \"20GG\""},
	}
}

// TestDeps keeps glmctl a thin client: none of the agent's heavy
// dependencies, none of its packages.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, bad := range []string{
		"github.com/hashicorp/consul/api", "github.com/NVIDIA/go-nvml", "github.com/containerd/cgroups",
		"github.com/open-autoglm/glmd/agent", "github.com/open-autoglm/glmd/supervisor",
	} {
		if bytes.Contains(out, []byte(bad+"\n")) || bytes.Contains(out, []byte(bad+"/")) {
			t.Errorf("glmctl links %s", bad)
		}
	}
}

// serve starts a fake agent and returns it and its socket.
func serve(t *testing.T) (*apitest.Backend, string) {
	b := apitest.NewBackend()
	return b, apitest.Serve(t, b)
}
