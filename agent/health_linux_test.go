package agent

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// healthTask is a task file running the test worker's HTTP server on the
// instance's port with checks.
func (ta *testAgent) healthTask(extra string, args ...string) string {
	return ta.taskFile("port = 0\n"+extra, append([]string{"-http", "127.0.0.1:{{.Port}}"}, args...)...)
}

// switchHealth posts to the test worker's health switch of TASK:INSTANCE.
func (ta *testAgent) switchHealth(task string, instance int, to string) {
	ta.t.Helper()
	r, _ := ta.row(task, instance)
	// Ready without a readiness check means running: the worker may not
	// listen yet.
	var err error
	testenv.Eventually(ta.t, 0, func() bool {
		var resp *http.Response
		resp, err = http.Post(fmt.Sprintf("http://127.0.0.1:%d/%s", r.Ports["port"], to), "", nil)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, "switch the health of %s:%d to %s: %v", task, instance, to, err)
}

const liveness = `
[[health]]
role = "liveness"
type = "http"
url = "http://127.0.0.1:{{.Port}}/health"
interval = "100ms"
timeout = "100ms"
failure_threshold = 3
`

func TestHealth_SlowStarterIsLeftAloneThenReady(t *testing.T) {
	ta := startAgent(t, map[string]string{"slow.toml": ""})
	ta.write("slow.toml", ta.healthTask(`
[[health]]
role = "startup"
type = "http"
url = "http://127.0.0.1:{{.Port}}/health"
interval = "100ms"
timeout = "100ms"
failure_threshold = 2
start_period = "30s"
`+liveness, "-ready-after", "1500ms"))
	r := ta.waitRow("slow", 0, "running, not ready", running)
	if r.Ready {
		t.Fatal("ready before its startup check passed")
	}
	r = ta.waitRow("slow", 0, "ready", func(r api.InstanceStatus) bool { return r.Ready })
	if r.Restarts != 0 || r.State != "running" {
		t.Fatalf("restarted while loading: %+v", r)
	}
	ta.waitEvent(func(e api.Event) bool {
		return e.Task == "slow" && strings.HasPrefix(e.Message, "ready: startup: passed")
	})
}

func TestHealth_UnhealthyIsRestartedWithReason(t *testing.T) {
	ta := startAgent(t, map[string]string{"hang.toml": ""})
	ta.write("hang.toml", ta.healthTask(liveness+"[restart]\ndelay = \"10ms\"\n"))
	first := ta.waitRow("hang", 0, "ready", func(r api.InstanceStatus) bool { return running(r) && r.Ready })
	// A hanging endpoint: every probe is cut at its timeout.
	ta.switchHealth("hang", 0, "hang")
	r := ta.waitRow("hang", 0, "restarted as unhealthy", func(r api.InstanceStatus) bool {
		return r.LastExit.Reason == "unhealthy" && r.PID != 0 && r.PID != first.PID
	})
	if r.Restarts != 1 {
		t.Errorf("restarts %d", r.Restarts)
	}
	ta.waitEvent(func(e api.Event) bool {
		return e.Task == "hang" && e.State == "stopping" && strings.Contains(e.Message, "timeout after 100ms (3/3)")
	})
	testenv.WaitGone(t, 10*time.Second, first.PID)
	// The new process is probed, and ready again.
	ta.waitRow("hang", 0, "ready again", func(r api.InstanceStatus) bool { return r.Ready && r.PID != first.PID })
}

func TestHealth_ReadinessFlipsWithoutRestart(t *testing.T) {
	ta := startAgent(t, map[string]string{"flip.toml": ""})
	ta.write("flip.toml", ta.healthTask(`
[[health]]
role = "readiness"
type = "http"
url = "http://127.0.0.1:{{.Port}}/v1/completions"
method = "POST"
body = '{"prompt": "1+1=", "max_tokens": 1}'
body_contains = "choices"
interval = "100ms"
timeout = "100ms"
failure_threshold = 2
`))
	first := ta.waitRow("flip", 0, "ready", func(r api.InstanceStatus) bool { return r.Ready })
	ta.switchHealth("flip", 0, "unhealthy")
	r := ta.waitRow("flip", 0, "not ready", func(r api.InstanceStatus) bool { return !r.Ready })
	if !strings.Contains(r.Message, "not ready: readiness: POST") || r.PID != first.PID {
		t.Fatalf("row %+v", r)
	}
	ta.switchHealth("flip", 0, "healthy")
	r = ta.waitRow("flip", 0, "ready again", func(r api.InstanceStatus) bool { return r.Ready })
	if r.PID != first.PID || r.Restarts != 0 {
		t.Fatalf("readiness restarted the worker: %+v", r)
	}
	// The metrics count the probes.
	for _, m := range ta.a.Instances() {
		if m.Task == "flip" && (len(m.Probes) != 1 || m.Probes[0].Results["success"] == 0 || m.Probes[0].Results["failure"] == 0) {
			t.Errorf("probe metrics %+v", m.Probes)
		}
	}
}

func TestHealth_ProbesStopWithTheInstance(t *testing.T) {
	ta := startAgent(t, map[string]string{"quiet.toml": ""})
	ta.write("quiet.toml", ta.healthTask(liveness))
	ta.waitRow("quiet", 0, "ready", func(r api.InstanceStatus) bool { return r.Ready })
	if err := ta.client.Stop(context.Background(), "quiet", 0); err != nil {
		t.Fatal(err)
	}
	total := func() (n uint64) {
		for _, m := range ta.a.Instances() {
			for _, p := range m.Probes {
				for _, c := range p.Results {
					n += c
				}
			}
		}
		return n
	}
	before := total()
	time.Sleep(500 * time.Millisecond) // five intervals: probes would show
	if after := total(); after != before {
		t.Fatalf("%d probes ran after the stop", after-before)
	}
}

func TestHealth_DependentsWaitForReady(t *testing.T) {
	ta := startAgent(t, map[string]string{"model.toml": "", "router.toml": ""})
	ta.write("model.toml", ta.healthTask(`
[[health]]
role = "readiness"
type = "tcp"
address = "127.0.0.1:{{.Port}}"
interval = "100ms"
timeout = "100ms"
`, "-listen-after", "1s"))
	ta.write("router.toml", ta.taskFile(`depends_on = ["model"]`, "-sleep"))
	ta.waitRow("router", 0, "running", running)
	var ready, started uint64
	for _, e := range ta.events() {
		if e.Task == "model" && e.State == "running" && strings.HasPrefix(e.Message, "ready") && ready == 0 {
			ready = e.Seq
		}
		if e.Task == "router" && e.State == "starting" && started == 0 {
			started = e.Seq
		}
	}
	if ready == 0 || started < ready {
		t.Fatalf("router started (event %d) before model was ready (event %d)", started, ready)
	}
}

func TestHealth_ExecProbeRunsAsTheTaskUser(t *testing.T) {
	testenv.RequireRoot(t)
	ta := startAgent(t, map[string]string{"asuser.toml": ""})
	for _, d := range []string{filepath.Dir(ta.worker)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ta.write("asuser.toml", ta.taskFile(`user = "nobody"
[[health]]
role = "readiness"
type = "exec"
command = ["/bin/sh", "-c", "test \"$(id -u)\" = \"$(id -u nobody)\" && test \"$GLMD_TASK\" = asuser"]
interval = "1s"
timeout = "1s"
`, "-sleep"))
	r := ta.waitRow("asuser", 0, "ready", func(r api.InstanceStatus) bool { return r.Ready })
	if r.Restarts != 0 {
		t.Fatalf("row %+v", r)
	}
}
