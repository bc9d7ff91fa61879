package metrics

import (
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/open-autoglm/glmd/internal/resources"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var now = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// fakeSource is a Source whose state the test sets.
type fakeSource struct {
	mu        sync.Mutex
	instances []Instance
	agent     Agent
	panics    bool
}

func (f *fakeSource) Instances() []Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panics {
		panic("supervisor state is broken")
	}
	return slices.Clone(f.instances)
}

func (f *fakeSource) AgentState() Agent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.agent
}

func (f *fakeSource) set(instances ...Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances = instances
}

var _ Source = (*fakeSource)(nil)

func testRegistry(t *testing.T, src Source) *prometheus.Registry {
	t.Helper()
	return newRegistry(src, "1.2.3", "abc123", func() time.Time { return now }, slog.New(slog.NewTextHandler(t.Output(), nil)))
}

var (
	serve0 = Instance{
		Task: "glm-serve", Instance: 0, State: "running", Ready: true, Restarts: 2,
		Exits:     map[string]int{"signal": 1, "oom_killed": 1},
		StartedAt: now.Add(-90 * time.Second),
		Logs: []LogStream{
			{Stream: "stdout", Bytes: 1024, Rotations: 10},
			{Stream: "stderr", Bytes: 2048, Rotations: 5, DroppedBytes: 100, DroppedLines: 2},
		},
		Probes: []Probe{{Role: "liveness", Results: map[string]uint64{"success": 40, "timeout": 2}, ConsecutiveFailures: 1,
			LatencyBuckets: map[float64]uint64{0.001: 30, 0.01: 40, 1: 42}, LatencyCount: 42, LatencySum: 2.5}},
		Resources: &resources.Stats{CPU: 90 * time.Second, CPUThrottled: 1500 * time.Millisecond, NrThrottled: 15,
			MemoryCurrent: 1 << 30, MemoryPeak: 3 << 29, Pids: 12, IOReadBytes: 4096, IOWriteBytes: 8192, OOMKills: 1},
	}
	batch1 = Instance{
		Task: "batch", Instance: 1, State: "failed", Restarts: 5,
		Exits: map[string]int{"exited": 5},
	}
)

// Expected exposition of serve0 and batch1, by family.
const (
	stateHeader = `
# HELP glmd_instance_state Whether a task instance is in a state (1) or not (0); one series per state.
# TYPE glmd_instance_state gauge
`
	serve0State = `
glmd_instance_state{instance="0",state="backoff",task="glm-serve"} 0
glmd_instance_state{instance="0",state="exited",task="glm-serve"} 0
glmd_instance_state{instance="0",state="failed",task="glm-serve"} 0
glmd_instance_state{instance="0",state="pending",task="glm-serve"} 0
glmd_instance_state{instance="0",state="running",task="glm-serve"} 1
glmd_instance_state{instance="0",state="starting",task="glm-serve"} 0
glmd_instance_state{instance="0",state="stopped",task="glm-serve"} 0
glmd_instance_state{instance="0",state="stopping",task="glm-serve"} 0
`
	batch1State = `
glmd_instance_state{instance="1",state="backoff",task="batch"} 0
glmd_instance_state{instance="1",state="exited",task="batch"} 0
glmd_instance_state{instance="1",state="failed",task="batch"} 1
glmd_instance_state{instance="1",state="pending",task="batch"} 0
glmd_instance_state{instance="1",state="running",task="batch"} 0
glmd_instance_state{instance="1",state="starting",task="batch"} 0
glmd_instance_state{instance="1",state="stopped",task="batch"} 0
glmd_instance_state{instance="1",state="stopping",task="batch"} 0
`
	bothOther = `
# HELP glmd_instance_ready Whether a task instance passes its readiness checks (1) or not (0).
# TYPE glmd_instance_ready gauge
glmd_instance_ready{instance="0",task="glm-serve"} 1
glmd_instance_ready{instance="1",task="batch"} 0
# HELP glmd_instance_restarts_total Times glmd restarted a task instance.
# TYPE glmd_instance_restarts_total counter
glmd_instance_restarts_total{instance="0",task="glm-serve"} 2
glmd_instance_restarts_total{instance="1",task="batch"} 5
# HELP glmd_instance_exits_total Exits of a task instance's process, by reason (exited, signal, oom_killed, unhealthy, stopped).
# TYPE glmd_instance_exits_total counter
glmd_instance_exits_total{instance="0",reason="exited",task="glm-serve"} 0
glmd_instance_exits_total{instance="0",reason="oom_killed",task="glm-serve"} 1
glmd_instance_exits_total{instance="0",reason="signal",task="glm-serve"} 1
glmd_instance_exits_total{instance="0",reason="stopped",task="glm-serve"} 0
glmd_instance_exits_total{instance="0",reason="unhealthy",task="glm-serve"} 0
glmd_instance_exits_total{instance="1",reason="exited",task="batch"} 5
glmd_instance_exits_total{instance="1",reason="oom_killed",task="batch"} 0
glmd_instance_exits_total{instance="1",reason="signal",task="batch"} 0
glmd_instance_exits_total{instance="1",reason="stopped",task="batch"} 0
glmd_instance_exits_total{instance="1",reason="unhealthy",task="batch"} 0
# HELP glmd_instance_uptime_seconds Time since a task instance's process started; 0 when it has none.
# TYPE glmd_instance_uptime_seconds gauge
glmd_instance_uptime_seconds{instance="0",task="glm-serve"} 90
glmd_instance_uptime_seconds{instance="1",task="batch"} 0
`
	serve0Logs = `
# HELP glmd_log_bytes_total Bytes of a task instance's output written to its log file, by stream.
# TYPE glmd_log_bytes_total counter
glmd_log_bytes_total{instance="0",stream="stderr",task="glm-serve"} 2048
glmd_log_bytes_total{instance="0",stream="stdout",task="glm-serve"} 1024
# HELP glmd_log_dropped_bytes_total Bytes of a task instance's output lost because the log writer could not keep up or could not write (disk full).
# TYPE glmd_log_dropped_bytes_total counter
glmd_log_dropped_bytes_total{instance="0",stream="stderr",task="glm-serve"} 100
glmd_log_dropped_bytes_total{instance="0",stream="stdout",task="glm-serve"} 0
# HELP glmd_log_dropped_lines_total Lines of a task instance's output lost because the log writer could not keep up or could not write (disk full).
# TYPE glmd_log_dropped_lines_total counter
glmd_log_dropped_lines_total{instance="0",stream="stderr",task="glm-serve"} 2
glmd_log_dropped_lines_total{instance="0",stream="stdout",task="glm-serve"} 0
# HELP glmd_log_rotations_total Log files of a task instance rotated, by size, age or on request, by stream.
# TYPE glmd_log_rotations_total counter
glmd_log_rotations_total{instance="0",stream="stderr",task="glm-serve"} 5
glmd_log_rotations_total{instance="0",stream="stdout",task="glm-serve"} 10
`
)

var (
	instanceNames = []string{"glmd_instance_state", "glmd_instance_ready", "glmd_instance_restarts_total", "glmd_instance_exits_total", "glmd_instance_uptime_seconds"}
	logNames      = []string{"glmd_log_bytes_total", "glmd_log_rotations_total", "glmd_log_dropped_bytes_total", "glmd_log_dropped_lines_total"}
	agentNames    = []string{"glmd_reloads_total", "glmd_task_file_invalid", "glmd_tasks"}
	cgroupNames   = []string{"glmd_instance_cpu_seconds_total", "glmd_instance_cpu_throttled_seconds_total", "glmd_instance_memory_bytes",
		"glmd_instance_memory_peak_bytes", "glmd_instance_pids", "glmd_instance_io_read_bytes_total", "glmd_instance_io_write_bytes_total",
		"glmd_instance_oom_kills_total"}
	probeNames = []string{"glmd_probe_results_total", "glmd_probe_duration_seconds", "glmd_probe_consecutive_failures"}
	allNames   = slices.Concat(instanceNames, logNames, agentNames, cgroupNames, probeNames, []string{"glmd_build_info", "glmd_scrape_collector_success"})
)

func TestCollector_Exposition(t *testing.T) {
	tests := []struct {
		name  string
		src   *fakeSource
		names []string
		want  string
	}{
		{
			name:  "instances",
			src:   &fakeSource{instances: []Instance{serve0, batch1}},
			names: instanceNames,
			want:  stateHeader + strings.TrimPrefix(batch1State, "\n") + strings.TrimPrefix(serve0State, "\n") + bothOther,
		},
		{
			name:  "logs",
			src:   &fakeSource{instances: []Instance{serve0, batch1}},
			names: logNames,
			want:  serve0Logs,
		},
		{
			name:  "probes",
			src:   &fakeSource{instances: []Instance{serve0, batch1}},
			names: probeNames,
			want: `
# HELP glmd_probe_consecutive_failures Failures in a row of a task instance's health probe; 0 after a success.
# TYPE glmd_probe_consecutive_failures gauge
glmd_probe_consecutive_failures{instance="0",role="liveness",task="glm-serve"} 1
# HELP glmd_probe_duration_seconds How long a task instance's health probes took, by role.
# TYPE glmd_probe_duration_seconds histogram
glmd_probe_duration_seconds_bucket{instance="0",role="liveness",task="glm-serve",le="0.001"} 30
glmd_probe_duration_seconds_bucket{instance="0",role="liveness",task="glm-serve",le="0.01"} 40
glmd_probe_duration_seconds_bucket{instance="0",role="liveness",task="glm-serve",le="1"} 42
glmd_probe_duration_seconds_bucket{instance="0",role="liveness",task="glm-serve",le="+Inf"} 42
glmd_probe_duration_seconds_sum{instance="0",role="liveness",task="glm-serve"} 2.5
glmd_probe_duration_seconds_count{instance="0",role="liveness",task="glm-serve"} 42
# HELP glmd_probe_results_total Health probe results of a task instance, by role and outcome (success, failure, timeout, error).
# TYPE glmd_probe_results_total counter
glmd_probe_results_total{instance="0",outcome="error",role="liveness",task="glm-serve"} 0
glmd_probe_results_total{instance="0",outcome="failure",role="liveness",task="glm-serve"} 0
glmd_probe_results_total{instance="0",outcome="success",role="liveness",task="glm-serve"} 40
glmd_probe_results_total{instance="0",outcome="timeout",role="liveness",task="glm-serve"} 2
`,
		},
		{
			name:  "cgroups, only for instances that have one",
			src:   &fakeSource{instances: []Instance{serve0, batch1}},
			names: cgroupNames,
			want: `
# HELP glmd_instance_cpu_seconds_total CPU time a task instance's cgroup used.
# TYPE glmd_instance_cpu_seconds_total counter
glmd_instance_cpu_seconds_total{instance="0",task="glm-serve"} 90
# HELP glmd_instance_cpu_throttled_seconds_total Time the CPU limit held a task instance back.
# TYPE glmd_instance_cpu_throttled_seconds_total counter
glmd_instance_cpu_throttled_seconds_total{instance="0",task="glm-serve"} 1.5
# HELP glmd_instance_io_read_bytes_total Bytes a task instance's cgroup read from block devices.
# TYPE glmd_instance_io_read_bytes_total counter
glmd_instance_io_read_bytes_total{instance="0",task="glm-serve"} 4096
# HELP glmd_instance_io_write_bytes_total Bytes a task instance's cgroup wrote to block devices.
# TYPE glmd_instance_io_write_bytes_total counter
glmd_instance_io_write_bytes_total{instance="0",task="glm-serve"} 8192
# HELP glmd_instance_memory_bytes Memory a task instance's cgroup uses now.
# TYPE glmd_instance_memory_bytes gauge
glmd_instance_memory_bytes{instance="0",task="glm-serve"} 1.073741824e+09
# HELP glmd_instance_memory_peak_bytes Most memory a task instance's cgroup used at once.
# TYPE glmd_instance_memory_peak_bytes gauge
glmd_instance_memory_peak_bytes{instance="0",task="glm-serve"} 1.610612736e+09
# HELP glmd_instance_oom_kills_total Processes the kernel's OOM killer ended in a task instance's cgroup.
# TYPE glmd_instance_oom_kills_total counter
glmd_instance_oom_kills_total{instance="0",task="glm-serve"} 1
# HELP glmd_instance_pids Processes and threads in a task instance's cgroup.
# TYPE glmd_instance_pids gauge
glmd_instance_pids{instance="0",task="glm-serve"} 12
`,
		},
		{
			name: "unknown state and exit reason still show",
			src: &fakeSource{instances: []Instance{{
				Task: "odd", Instance: 0, State: "paused", Exits: map[string]int{"lost": 3},
			}}},
			names: []string{"glmd_instance_state", "glmd_instance_exits_total"},
			want: stateHeader + `
glmd_instance_state{instance="0",state="backoff",task="odd"} 0
glmd_instance_state{instance="0",state="exited",task="odd"} 0
glmd_instance_state{instance="0",state="failed",task="odd"} 0
glmd_instance_state{instance="0",state="paused",task="odd"} 1
glmd_instance_state{instance="0",state="pending",task="odd"} 0
glmd_instance_state{instance="0",state="running",task="odd"} 0
glmd_instance_state{instance="0",state="starting",task="odd"} 0
glmd_instance_state{instance="0",state="stopped",task="odd"} 0
glmd_instance_state{instance="0",state="stopping",task="odd"} 0
# HELP glmd_instance_exits_total Exits of a task instance's process, by reason (exited, signal, oom_killed, unhealthy, stopped).
# TYPE glmd_instance_exits_total counter
glmd_instance_exits_total{instance="0",reason="exited",task="odd"} 0
glmd_instance_exits_total{instance="0",reason="lost",task="odd"} 3
glmd_instance_exits_total{instance="0",reason="oom_killed",task="odd"} 0
glmd_instance_exits_total{instance="0",reason="signal",task="odd"} 0
glmd_instance_exits_total{instance="0",reason="stopped",task="odd"} 0
glmd_instance_exits_total{instance="0",reason="unhealthy",task="odd"} 0
`,
		},
		{
			name: "agent",
			src: &fakeSource{agent: Agent{
				Reloads: map[string]int{"ok": 3, "invalid": 1},
				InvalidFiles: []InvalidFile{
					{File: "bad.toml", Task: "bad", Message: "bad.toml:3:1: command: required"},
					{File: "broken.toml", Message: "broken.toml:1:5: expected '='"},
				},
				Tasks: 2,
			}},
			names: agentNames,
			want: `
# HELP glmd_reloads_total Reloads of conf_dir by result: ok, invalid (some task files refused), error (conf_dir unreadable).
# TYPE glmd_reloads_total counter
glmd_reloads_total{result="error"} 0
glmd_reloads_total{result="invalid"} 1
glmd_reloads_total{result="ok"} 3
# HELP glmd_task_file_invalid 1 for each task file the last reload refused; the task keeps its last good version. glmctl status names the error.
# TYPE glmd_task_file_invalid gauge
glmd_task_file_invalid{file="bad.toml",task="bad"} 1
glmd_task_file_invalid{file="broken.toml",task=""} 1
# HELP glmd_tasks Tasks loaded.
# TYPE glmd_tasks gauge
glmd_tasks 2
`,
		},
		{
			name:  "empty source",
			src:   &fakeSource{},
			names: allNames,
			want: `
# HELP glmd_build_info Always 1; the labels say which glmd build runs.
# TYPE glmd_build_info gauge
glmd_build_info{commit="abc123",goversion="` + runtime.Version() + `",version="1.2.3"} 1
# HELP glmd_reloads_total Reloads of conf_dir by result: ok, invalid (some task files refused), error (conf_dir unreadable).
# TYPE glmd_reloads_total counter
glmd_reloads_total{result="error"} 0
glmd_reloads_total{result="invalid"} 0
glmd_reloads_total{result="ok"} 0
# HELP glmd_scrape_collector_success Whether a glmd collector read its part of the state during this scrape (1) or failed (0).
# TYPE glmd_scrape_collector_success gauge
glmd_scrape_collector_success{collector="agent"} 1
glmd_scrape_collector_success{collector="cgroups"} 1
glmd_scrape_collector_success{collector="instances"} 1
glmd_scrape_collector_success{collector="probes"} 1
glmd_scrape_collector_success{collector="logs"} 1
# HELP glmd_tasks Tasks loaded.
# TYPE glmd_tasks gauge
glmd_tasks 0
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := testRegistry(t, tt.src)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tt.want), tt.names...); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestCollector_RemovedInstanceDisappears(t *testing.T) {
	src := &fakeSource{instances: []Instance{serve0, batch1}}
	reg := testRegistry(t, src)
	if n, err := testutil.GatherAndCount(reg, "glmd_instance_state"); err != nil || n != 16 {
		t.Fatalf("glmd_instance_state series = %d, %v; want 16 (two instances)", n, err)
	}

	src.set(batch1)
	want := stateHeader + batch1State
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "glmd_instance_state"); err != nil {
		t.Error(err)
	}
	for _, name := range slices.Concat(instanceNames, logNames, cgroupNames, probeNames) {
		if n := countWithLabel(t, reg, name, "task", "glm-serve"); n != 0 {
			t.Errorf("%s still has %d series of the removed glm-serve:0", name, n)
		}
	}
}

func TestCollector_ScrapeCollectorMetrics(t *testing.T) {
	tests := []struct {
		name        string
		src         *fakeSource
		wantSuccess map[string]float64
		wantPresent []string // families that must still be there
		wantAbsent  []string
	}{
		{
			name:        "all good",
			src:         &fakeSource{instances: []Instance{serve0}},
			wantSuccess: map[string]float64{"instances": 1, "logs": 1, "cgroups": 1, "probes": 1, "agent": 1},
			wantPresent: slices.Concat(instanceNames, logNames, cgroupNames, []string{"glmd_reloads_total", "glmd_tasks"}),
		},
		{
			name:        "a panicking source fails its collectors only",
			src:         &fakeSource{instances: []Instance{serve0}, panics: true},
			wantSuccess: map[string]float64{"instances": 0, "logs": 0, "cgroups": 0, "probes": 0, "agent": 1},
			wantPresent: []string{"glmd_reloads_total", "glmd_tasks", "glmd_build_info"},
			wantAbsent:  slices.Concat(instanceNames, logNames, cgroupNames),
		},
		{
			name: "duplicates are left out and reported",
			src: &fakeSource{
				instances: []Instance{serve0, serve0},
				agent:     Agent{InvalidFiles: []InvalidFile{{File: "a.toml"}, {File: "a.toml"}}},
			},
			wantSuccess: map[string]float64{"instances": 0, "logs": 0, "cgroups": 0, "probes": 0, "agent": 0},
			wantPresent: slices.Concat(instanceNames, logNames, cgroupNames, agentNames),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := testRegistry(t, tt.src)
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatalf("Gather: %v; a broken source must not fail the scrape", err)
			}
			got := make(map[string]float64)
			durations := 0
			present := make(map[string]bool)
			for _, mf := range mfs {
				present[mf.GetName()] = true
				for _, m := range mf.GetMetric() {
					switch mf.GetName() {
					case "glmd_scrape_collector_success":
						got[label(m, "collector")] = m.GetGauge().GetValue()
					case "glmd_scrape_collector_duration_seconds":
						durations++
						if v := m.GetGauge().GetValue(); v < 0 {
							t.Errorf("duration of %s = %v", label(m, "collector"), v)
						}
					}
				}
			}
			if !maps.Equal(got, tt.wantSuccess) {
				t.Errorf("glmd_scrape_collector_success = %v, want %v", got, tt.wantSuccess)
			}
			if durations != len(tt.wantSuccess) {
				t.Errorf("%d glmd_scrape_collector_duration_seconds series, want %d", durations, len(tt.wantSuccess))
			}
			for _, name := range tt.wantPresent {
				if !present[name] {
					t.Errorf("%s missing", name)
				}
			}
			for _, name := range tt.wantAbsent {
				if present[name] {
					t.Errorf("%s present, want it absent", name)
				}
			}
			if n := countWithLabel(t, reg, "glmd_instance_ready", "task", "glm-serve"); n > 1 {
				t.Errorf("glmd_instance_ready has %d series for glm-serve:0, want at most 1", n)
			}
		})
	}
}

func TestCollector_Lint(t *testing.T) {
	reg := testRegistry(t, &fakeSource{
		instances: []Instance{serve0, batch1},
		agent:     Agent{Reloads: map[string]int{"ok": 1}, InvalidFiles: []InvalidFile{{File: "a.toml", Task: "a"}}, Tasks: 1},
	})
	problems, err := testutil.GatherAndLint(reg, slices.Concat(allNames, []string{"glmd_scrape_collector_duration_seconds"})...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if err := testutil.CollectAndCompare(newCollector(&fakeSource{}, "v", "", time.Now, slog.New(slog.DiscardHandler)), strings.NewReader(`
# HELP glmd_build_info Always 1; the labels say which glmd build runs.
# TYPE glmd_build_info gauge
glmd_build_info{commit="unknown",goversion="`+runtime.Version()+`",version="v"} 1
`), "glmd_build_info"); err != nil {
		t.Errorf("empty commit: %v", err)
	}
}

func TestHandler(t *testing.T) {
	reg := NewRegistry(&fakeSource{instances: []Instance{serve0}}, "1.2.3", "abc123")
	srv := httptest.NewServer(Handler(reg))
	t.Cleanup(srv.Close)
	for range 2 { // a second scrape must not trip over duplicate registrations
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
		}
		want := []string{
			`glmd_build_info{commit="abc123",goversion="` + runtime.Version() + `",version="1.2.3"} 1`,
			`glmd_instance_state{instance="0",state="running",task="glm-serve"} 1`,
			`glmd_scrape_collector_success{collector="instances"} 1`,
			`go_goroutines `,
			`promhttp_metric_handler_requests_total{code="200"}`,
		}
		if runtime.GOOS == "linux" {
			want = append(want, "process_cpu_seconds_total ")
		}
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Errorf("GET /metrics lacks %q", w)
			}
		}
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func countWithLabel(t *testing.T, g prometheus.Gatherer, family, name, value string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, name) == value {
				n++
			}
		}
	}
	return n
}
