package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// testAgent is an agent running in the test process over a temp conf_dir.
type testAgent struct {
	t       *testing.T
	a       *Agent
	cfg     *config.Agent
	client  *api.Client
	worker  string
	confDir string
	stopped chan struct{}
	cancel  context.CancelFunc
	metrics string // host:port of /metrics
}

// startAgent runs an agent until the test ends; the cleanup stops it (as
// SIGTERM would) and checks that none of its workers is left.
func startAgent(t *testing.T, files map[string]string) *testAgent {
	t.Helper()
	return startAgentWith(t, nil, files)
}

// startAgentWith is startAgent with changes to the agent config.
func startAgentWith(t *testing.T, mutate func(*config.Agent), files ...map[string]string) *testAgent {
	t.Helper()
	return startAgentDeps(t, mutate, nil, files...)
}

// startAgentDeps is startAgentWith with changes to the agent's Deps.
func startAgentDeps(t *testing.T, mutate func(*config.Agent), deps func(*Deps), files ...map[string]string) *testAgent {
	t.Helper()
	testenv.RequireLinux(t)
	// Build the worker before the launcher's reaper exists: the reaper
	// collects every child of the process, `go build` included.
	w := testenv.Worker(t)
	dir := t.TempDir()
	cfg := config.DevAgent(dir)
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.NodeName = "node-a"
	cfg.Cgroup.Parent = testenv.CgroupParent(t)
	if mutate != nil {
		mutate(cfg)
	}
	if err := os.MkdirAll(cfg.ConfDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ta := &testAgent{t: t, cfg: cfg, worker: w, confDir: cfg.ConfDir, stopped: make(chan struct{})}
	var names []string
	for _, f := range files {
		for name, body := range f {
			ta.write(name, body)
			names = append(names, name)
		}
	}
	ready := make(chan struct{})
	d := Deps{Log: slog.New(slog.DiscardHandler), Notify: func(s string) {
		if s == "READY=1" {
			close(ready)
		}
	}, Listening: func(_, metrics string) { ta.metrics = metrics }}
	if deps != nil {
		deps(&d)
	}
	ta.a = New(cfg, d)
	ctx, cancel := context.WithCancel(context.Background())
	ta.cancel = cancel
	go func() {
		defer close(ta.stopped)
		if err := ta.a.Run(ctx); err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	t.Cleanup(func() {
		ta.stop()
		for _, name := range names {
			ta.assertNoProcesses(strings.TrimSuffix(name, ".toml"))
		}
	})
	select {
	case <-ready:
	case <-ta.stopped:
		t.Fatal("agent ended before it was ready")
	case <-time.After(30 * time.Second):
		t.Fatal("agent not ready")
	}
	ta.client = api.NewClient(cfg.Socket)
	return ta
}

// stop ends the agent as SIGTERM does and waits for Run to return.
func (ta *testAgent) stop() {
	ta.t.Helper()
	ta.cancel()
	select {
	case <-ta.stopped:
	case <-time.After(60 * time.Second):
		ta.t.Fatal("agent did not stop")
	}
}

// taskFile is a task file running the test worker with args.
func (ta *testAgent) taskFile(extra string, args ...string) string {
	argv := append([]string{ta.worker}, args...)
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf("command = [%s]\n%s\n", strings.Join(q, ", "), extra)
}

// write replaces a task file atomically, as editors and config management do.
func (ta *testAgent) write(name, body string) {
	ta.t.Helper()
	tmp := filepath.Join(ta.confDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		ta.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(ta.confDir, name)); err != nil {
		ta.t.Fatal(err)
	}
}

func (ta *testAgent) remove(name string) {
	ta.t.Helper()
	if err := os.Remove(filepath.Join(ta.confDir, name)); err != nil {
		ta.t.Fatal(err)
	}
}

func (ta *testAgent) status() []api.InstanceStatus {
	st, err := ta.client.Status(context.Background(), api.StatusOptions{})
	if err != nil {
		ta.t.Fatal(err)
	}
	return st
}

// row finds TASK:INSTANCE in the status (instance -1: the invalid row).
func (ta *testAgent) row(task string, instance int) (api.InstanceStatus, bool) {
	for _, r := range ta.status() {
		if r.Task == task && r.Instance == instance {
			return r, true
		}
	}
	return api.InstanceStatus{}, false
}

// waitRow waits until TASK:INSTANCE satisfies cond and returns it.
func (ta *testAgent) waitRow(task string, instance int, what string, cond func(api.InstanceStatus) bool) api.InstanceStatus {
	ta.t.Helper()
	var r api.InstanceStatus
	var ok bool
	testenv.Eventually(ta.t, 20*time.Second, func() bool {
		r, ok = ta.row(task, instance)
		return ok && cond(r)
	}, "%s:%d: want %s; have %+v (present %v)", task, instance, what, r, ok)
	return r
}

func (ta *testAgent) waitState(task string, instance int, state string) api.InstanceStatus {
	ta.t.Helper()
	return ta.waitRow(task, instance, "state "+state, func(r api.InstanceStatus) bool { return r.State == state })
}

func (ta *testAgent) waitGone(task string) {
	ta.t.Helper()
	testenv.Eventually(ta.t, 20*time.Second, func() bool {
		return !slices.ContainsFunc(ta.status(), func(r api.InstanceStatus) bool { return r.Task == task })
	}, "task %s still in status", task)
}

// assertNoProcesses fails if any process of task is alive.
func (ta *testAgent) assertNoProcesses(task string) {
	ta.t.Helper()
	testenv.Eventually(ta.t, 10*time.Second, func() bool {
		return len(testenv.ProcsWithEnv("GLMD_TASK="+task)) == 0
	}, "processes of %s alive: %v", task, testenv.ProcsWithEnv("GLMD_TASK="+task))
}

// events returns the agent's events so far.
func (ta *testAgent) events() []api.Event {
	var out []api.Event
	if err := ta.client.Events(context.Background(), false, func(e api.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		ta.t.Fatal(err)
	}
	return out
}

// scrape returns the agent's /metrics.
func (ta *testAgent) scrape() string {
	ta.t.Helper()
	resp, err := http.Get("http://" + ta.metrics + "/metrics")
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ta.t.Fatal(err)
	}
	return string(body)
}
