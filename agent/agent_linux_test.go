package agent

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/confwatch"
	"github.com/open-autoglm/glmd/internal/testenv"
)

func running(r api.InstanceStatus) bool { return r.State == "running" && r.PID > 0 }

func TestAgent_StartsInstancesWithPortsAndEnv(t *testing.T) {
	ta := startAgent(t, nil)
	out := filepath.Join(t.TempDir(), "env-{{.Instance}}")
	ta.write("serve.toml", ta.taskFile("instances = 2\nport = 18100\n[env]\nMODEL = \"glm-{{.Instance}}\"",
		"-print-env", "-pidfile", out))
	for i := range 2 {
		r := ta.waitRow("serve", i, "running and ready", func(r api.InstanceStatus) bool { return running(r) && r.Ready })
		if r.Ports["port"] != 18100+i || r.File != "serve.toml" || r.Kind != "service" || r.GPUs == nil {
			t.Errorf("row %+v", r)
		}
		var logs string
		testenv.Eventually(t, 10*time.Second, func() bool {
			logs = ta.logs("serve", i, 100)
			return strings.Contains(logs, "PATH=")
		}, "instance %d printed no environment", i)
		for _, want := range []string{"GLMD_PORT=" + itoa(18100+i), "GLMD_INSTANCE=" + itoa(i), "GLMD_NODE=node-a", "MODEL=glm-" + itoa(i), "GLMD_TASK=serve"} {
			if !strings.Contains(logs, want) {
				t.Errorf("instance %d environment lacks %s:\n%s", i, want, logs)
			}
		}
	}
}

func TestAgent_HotReload_AddEditRemove(t *testing.T) {
	ta := startAgent(t, map[string]string{"keep.toml": ""})
	ta.write("keep.toml", ta.taskFile("", "-sleep"))
	keep := ta.waitRow("keep", 0, "running", running)

	ta.write("web.toml", ta.taskFile("", "-echo", "v1"))
	first := ta.waitRow("web", 0, "running", running)

	// A change of the command restarts the task.
	ta.write("web.toml", ta.taskFile("", "-echo", "v2"))
	second := ta.waitRow("web", 0, "a new process", func(r api.InstanceStatus) bool { return running(r) && r.PID != first.PID })
	testenv.WaitGone(t, 10*time.Second, first.PID)

	// A change of log retention applies in place.
	ta.write("web.toml", ta.taskFile("[logs]\nmax_files = 2", "-echo", "v2"))
	ta.waitEvent(func(e api.Event) bool { return e.Type == "reload" && strings.Contains(e.Message, "in-place") })
	if r, _ := ta.row("web", 0); r.PID != second.PID {
		t.Fatalf("in-place change restarted the worker: pid %d -> %d", second.PID, r.PID)
	}

	// Removing the file stops the task and leaves no process behind.
	ta.remove("web.toml")
	ta.waitGone("web")
	ta.assertNoProcesses("web")
	if r, _ := ta.row("keep", 0); r.PID != keep.PID {
		t.Fatalf("unrelated task restarted: pid %d -> %d", keep.PID, r.PID)
	}
}

func TestAgent_InvalidEditKeepsTheRunningVersion(t *testing.T) {
	ta := startAgent(t, map[string]string{"glm-serve.toml": ""})
	good := ta.taskFile("instances = 2", "-sleep")
	ta.write("glm-serve.toml", good)
	before := []api.InstanceStatus{ta.waitRow("glm-serve", 0, "running", running), ta.waitRow("glm-serve", 1, "running", running)}

	ta.write("glm-serve.toml", good+"\n[restart]\npolicy = \"sometimes\"\ndelay = \"5 s\"\n")
	bad := ta.waitState("glm-serve", -1, "invalid")
	for _, want := range []string{"glm-serve.toml", "restart.policy", "restart.delay", "last good version keeps running"} {
		if !strings.Contains(bad.Message, want) {
			t.Errorf("invalid row message %q lacks %q", bad.Message, want)
		}
	}
	for i, b := range before {
		if r, _ := ta.row("glm-serve", i); r.PID != b.PID || r.State != "running" {
			t.Fatalf("instance %d touched by an invalid edit: %+v", i, r)
		}
	}
	if !slices.ContainsFunc(ta.events(), func(e api.Event) bool { return e.Type == "config" && e.State == "invalid" }) {
		t.Error("no config event for the invalid file")
	}

	// Fixing the file back to the running version changes nothing that runs.
	ta.write("glm-serve.toml", good)
	ta.waitGoneRow("glm-serve", -1)
	for i, b := range before {
		if r, _ := ta.row("glm-serve", i); r.PID != b.PID {
			t.Fatalf("instance %d restarted when its file became valid again", i)
		}
	}
}

func TestAgent_NewInvalidFileIsReportedAndNotStarted(t *testing.T) {
	ta := startAgent(t, nil)
	ta.write("typo.toml", "comand = [\"/bin/true\"]\n")
	r := ta.waitState("typo", -1, "invalid")
	if !strings.Contains(r.Message, `unknown key "comand"`) || !strings.Contains(r.Message, "typo.toml:1") {
		t.Errorf("message %q", r.Message)
	}
	plan, err := ta.client.Reload(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(plan.Errors, func(e string) bool { return strings.HasPrefix(e, "conf.d/typo.toml:1:1: unknown key") }) {
		t.Errorf("plan errors %q", plan.Errors)
	}
}

func TestAgent_RollingRestartOneAtATime(t *testing.T) {
	ta := startAgent(t, map[string]string{"roll.toml": ""})
	ta.write("roll.toml", ta.taskFile("instances = 3\n[env]\nV = \"1\"", "-sleep"))
	for i := range 3 {
		ta.waitRow("roll", i, "running", running)
	}
	since := ta.lastSeq()
	ta.write("roll.toml", ta.taskFile("instances = 3\n[env]\nV = \"2\"", "-sleep"))
	for i := range 3 {
		ta.waitRow("roll", i, "restarted", func(r api.InstanceStatus) bool { return running(r) && r.LastExit.Reason == "stopped" })
	}
	// Each instance is running again before the next one stops.
	var order []string
	for _, e := range ta.events() {
		if e.Seq > since && e.Task == "roll" && (e.State == "stopping" || e.State == "running") {
			order = append(order, itoa(e.Instance)+e.State)
		}
	}
	want := []string{"0stopping", "0running", "1stopping", "1running", "2stopping", "2running"}
	if !slices.Equal(order, want) {
		t.Fatalf("rollout order %v, want %v", order, want)
	}
}

func TestAgent_ScaleKeepsRunningInstances(t *testing.T) {
	ta := startAgent(t, map[string]string{"scale.toml": ""})
	ta.write("scale.toml", ta.taskFile("instances = 2", "-sleep"))
	a0, a1 := ta.waitRow("scale", 0, "running", running), ta.waitRow("scale", 1, "running", running)
	ta.write("scale.toml", ta.taskFile("instances = 4", "-sleep"))
	ta.waitRow("scale", 3, "running", running)
	if r, _ := ta.row("scale", 0); r.PID != a0.PID {
		t.Fatal("instance 0 restarted by scaling up")
	}
	ta.write("scale.toml", ta.taskFile("instances = 1", "-sleep"))
	ta.waitGoneRow("scale", 1)
	ta.waitGoneRow("scale", 3)
	testenv.WaitGone(t, 10*time.Second, a1.PID)
	if r, _ := ta.row("scale", 0); r.PID != a0.PID {
		t.Fatal("instance 0 restarted by scaling down")
	}
	if n := len(testenv.ProcsWithEnv("GLMD_TASK=scale")); n != 1 {
		t.Fatalf("%d processes of scale, want 1", n)
	}
}

func TestAgent_EnableDisable(t *testing.T) {
	ta := startAgent(t, map[string]string{"toggle.toml": ""})
	ta.write("toggle.toml", ta.taskFile("enabled = false", "-sleep"))
	r := ta.waitState("toggle", 0, "stopped")
	if !strings.Contains(r.Message, "disabled") {
		t.Errorf("message %q", r.Message)
	}
	ta.write("toggle.toml", ta.taskFile("enabled = true", "-sleep"))
	ta.waitRow("toggle", 0, "running", running)
	ta.write("toggle.toml", ta.taskFile("enabled = false", "-sleep"))
	ta.waitState("toggle", 0, "stopped")
	ta.assertNoProcesses("toggle")
}

func TestAgent_DependsOnStartAndStopOrder(t *testing.T) {
	ta := startAgent(t, map[string]string{"prep.toml": "", "db.toml": "", "api.toml": ""})
	ta.write("prep.toml", ta.taskFile("kind = \"job\"", "-exit", "0", "-after", "300ms"))
	ta.write("db.toml", ta.taskFile("depends_on = [\"prep\"]", "-sleep"))
	ta.write("api.toml", ta.taskFile("depends_on = [\"db\"]", "-sleep"))
	ta.waitRow("api", 0, "running", running)
	seq := func(task, state string) uint64 {
		for _, e := range ta.events() {
			if e.Task == task && e.State == state {
				return e.Seq
			}
		}
		t.Fatalf("no %s event for %s", state, task)
		return 0
	}
	if !(seq("prep", "exited") < seq("db", "starting") && seq("db", "running") < seq("api", "starting")) {
		t.Fatal("dependents started before their dependencies were up")
	}
	// At shutdown dependents stop first.
	var stopping []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ta.client.Events(ctx, true, func(e api.Event) error {
			if e.State == "stopped" {
				stopping = append(stopping, e.Task)
			}
			return nil
		})
	}()
	ta.waitFollowers()
	ta.stop()
	<-done
	if !slices.Equal(stopping, []string{"api", "db"}) {
		t.Fatalf("stop order %v, want [api db]", stopping)
	}
}

func TestAgent_ShutdownLeavesNoProcess(t *testing.T) {
	ta := startAgent(t, map[string]string{"tree.toml": ""})
	kids := filepath.Join(t.TempDir(), "kids")
	ta.write("tree.toml", ta.taskFile("instances = 2\n[stop]\ntimeout = \"1s\"", "-spawn", "1", "-spawn-setsid", "1",
		"-daemonize", "1", "-children-ignore-term", "-children-file", kids))
	ta.waitRow("tree", 1, "running", running)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(testenv.ReadPids(t, kids)) == 6 }, "descendants did not start")
	pids := testenv.ReadPids(t, kids)
	ta.stop()
	testenv.WaitGone(t, 10*time.Second, pids...)
	ta.assertNoProcesses("tree")
}

func TestAgent_ControlCommands(t *testing.T) {
	ta := startAgent(t, map[string]string{"ctl.toml": ""})
	ta.write("ctl.toml", ta.taskFile("instances = 2", "-sleep"))
	first := ta.waitRow("ctl", 1, "running", running)
	ctx := context.Background()
	if err := ta.client.Stop(ctx, "ctl", 1); err != nil {
		t.Fatal(err)
	}
	if r, _ := ta.row("ctl", 1); r.State != "stopped" || !strings.Contains(r.Message, "operator") {
		t.Fatalf("after stop: %+v", r)
	}
	// A reload does not start what an operator stopped.
	if _, err := ta.client.Reload(ctx, false); err != nil {
		t.Fatal(err)
	}
	if r, _ := ta.row("ctl", 1); r.State != "stopped" {
		t.Fatalf("reload started a stopped instance: %+v", r)
	}
	if err := ta.client.Start(ctx, "ctl", 1); err != nil {
		t.Fatal(err)
	}
	second := ta.waitRow("ctl", 1, "running", running)
	if err := ta.client.Restart(ctx, "ctl", -1); err != nil {
		t.Fatal(err)
	}
	third, _ := ta.row("ctl", 1)
	if first.PID == second.PID || second.PID == third.PID || third.State != "running" {
		t.Fatalf("pids %d %d %d", first.PID, second.PID, third.PID)
	}
	if err := ta.client.Stop(ctx, "nope", -1); err == nil || !strings.Contains(err.Error(), `task "nope"`) {
		t.Fatalf("stop of an unknown task: %v", err)
	}
	if err := ta.client.Stop(ctx, "ctl", 7); err == nil || !strings.Contains(err.Error(), "ctl:7") {
		t.Fatalf("stop of an unknown instance: %v", err)
	}
}

func TestAgent_CrashLoopFailsAndStartClearsIt(t *testing.T) {
	ta := startAgent(t, map[string]string{"loop.toml": ""})
	ta.write("loop.toml", ta.taskFile("[restart]\ndelay = \"10ms\"\nlimit = 2\nwindow = \"1h\"", "-exit", "3"))
	r := ta.waitState("loop", 0, "failed")
	if r.Restarts != 2 || r.LastExit.Code != 3 || !strings.Contains(r.Message, "gave up") {
		t.Fatalf("row %+v", r)
	}
	if err := ta.client.Start(context.Background(), "loop", 0); err != nil {
		t.Fatal(err)
	}
	ta.waitRow("loop", 0, "started again", func(r api.InstanceStatus) bool { return r.Restarts >= 3 })
}

func TestAgent_Logs(t *testing.T) {
	ta := startAgent(t, map[string]string{"talk.toml": ""})
	ta.write("talk.toml", ta.taskFile("", "-echo", "hello from glm", "-echo-stderr", "oops"))
	ta.waitRow("talk", 0, "running", running)
	testenv.Eventually(t, 10*time.Second, func() bool { return strings.Contains(ta.logs("talk", 0, 10), "hello from glm") }, "no stdout in logs")
	testenv.Eventually(t, 10*time.Second, func() bool {
		rc, err := ta.client.Logs(context.Background(), api.LogRequest{Task: "talk", Instance: 0, Stream: "stderr", Lines: 10})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return strings.Contains(string(b), "oops")
	}, "no stderr in logs")
	testenv.Eventually(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(filepath.Join(ta.cfg.LogDir, "talk", "0.stdout.log"))
		return strings.Contains(string(data), "hello from glm")
	}, "stdout never reached the log file")
	if err := ta.client.RotateLogs(context.Background(), "talk"); err != nil {
		t.Fatal(err)
	}
}

func TestAgent_ConfDirRemovedKeepsRunning(t *testing.T) {
	ta := startAgent(t, map[string]string{"stay.toml": ""})
	body := ta.taskFile("", "-sleep")
	ta.write("stay.toml", body)
	before := ta.waitRow("stay", 0, "running", running)
	if err := os.RemoveAll(ta.confDir); err != nil {
		t.Fatal(err)
	}
	ta.waitEvent(func(e api.Event) bool { return e.Type == "config" && strings.Contains(e.Message, "keeping what runs") })
	if err := os.MkdirAll(ta.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ta.write("stay.toml", body)
	if _, err := ta.client.Reload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if r, _ := ta.row("stay", 0); r.PID != before.PID {
		t.Fatalf("worker restarted: %d -> %d", before.PID, r.PID)
	}
}

func TestAgent_RefusesWritableTaskFilesAsRoot(t *testing.T) {
	testenv.RequireRoot(t)
	ta := startAgent(t, nil)
	ta.write("open.toml", ta.taskFile("", "-sleep"))
	p := filepath.Join(ta.confDir, "open.toml")
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	r := ta.waitState("open", -1, "invalid")
	if !strings.Contains(r.Message, "refused") {
		t.Fatalf("message %q", r.Message)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	ta.waitRow("open", -1, "refused for its owner", func(r api.InstanceStatus) bool { return strings.Contains(r.Message, "uid 1000") })
	ta.assertNoProcesses("open")
}

func TestAgent_SecondAgentOnTheSameSocketIsRefused(t *testing.T) {
	ta := startAgent(t, nil)
	b := New(ta.cfg, Deps{})
	err := b.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "another glmd") {
		t.Fatalf("second agent: %v", err)
	}
}

// helpers on top of the harness

func itoa(i int) string { return strconv.Itoa(i) }

func (ta *testAgent) logs(task string, instance, lines int) string {
	ta.t.Helper()
	rc, err := ta.client.Logs(context.Background(), api.LogRequest{Task: task, Instance: instance, Stream: "stdout", Lines: lines})
	if err != nil {
		ta.t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func (ta *testAgent) lastSeq() uint64 {
	ev := ta.events()
	if len(ev) == 0 {
		return 0
	}
	return ev[len(ev)-1].Seq
}

func (ta *testAgent) waitEvent(match func(api.Event) bool) {
	ta.t.Helper()
	testenv.Eventually(ta.t, 20*time.Second, func() bool { return slices.ContainsFunc(ta.events(), match) }, "event not seen")
}

func (ta *testAgent) waitGoneRow(task string, instance int) {
	ta.t.Helper()
	testenv.Eventually(ta.t, 20*time.Second, func() bool { _, ok := ta.row(task, instance); return !ok }, "%s:%d still in status", task, instance)
}

// waitFollowers waits until an events follower is subscribed.
func (ta *testAgent) waitFollowers() {
	testenv.Eventually(ta.t, 10*time.Second, func() bool {
		ta.a.events.mu.Lock()
		defer ta.a.events.mu.Unlock()
		return len(ta.a.events.subs) > 0
	}, "no follower")
}

func TestAgent_Metrics(t *testing.T) {
	ta := startAgent(t, map[string]string{"metered.toml": ""})
	ta.write("metered.toml", ta.taskFile("instances = 2", "-echo", "hi"))
	ta.write("broken.toml", "instances = \"two\"\n")
	ta.waitRow("metered", 0, "running", running)
	ta.waitRow("metered", 1, "running", running)
	ta.waitState("broken", -1, "invalid")
	resp, err := http.Get("http://" + ta.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`glmd_instance_state{instance="1",state="running",task="metered"} 1`,
		`glmd_instance_state{instance="1",state="failed",task="metered"} 0`,
		`glmd_instance_ready{instance="0",task="metered"} 1`,
		`glmd_instance_restarts_total{instance="0",task="metered"} 0`,
		`glmd_task_file_invalid{file="broken.toml",task="broken"} 1`,
		`glmd_reloads_total{result="invalid"}`,
		`glmd_log_dropped_lines_total{instance="0",stream="stdout",task="metered"} 0`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
		`glmd_build_info{`,
		`glmd_discovery_enabled 0`,
		`glmd_discovery_up 1`,
		`glmd_scheduler_leader 1`, // standalone: its own scheduler
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// A removed task leaves no series behind.
	ta.remove("metered.toml")
	ta.waitGone("metered")
	resp, err = http.Get("http://" + ta.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), `task="metered"`) {
		t.Error("series of a removed task remain")
	}
}

func TestAgent_DryRunPlan(t *testing.T) {
	ta := startAgent(t, map[string]string{"a.toml": "", "b.toml": "", "c.toml": "", "d.toml": ""})
	for _, n := range []string{"a", "b", "c", "d"} {
		ta.write(n+".toml", ta.taskFile("", "-sleep"))
		ta.waitRow(n, 0, "running", running)
	}
	file := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body), Mode: 0o644} }
	snap := confwatch.Snapshot{Dir: ta.confDir, FS: fstest.MapFS{
		"a.toml": file(ta.taskFile("", "-sleep")),                                        // unchanged
		"b.toml": file(ta.taskFile("", "-echo", "new")),                                  // command: restart
		"c.toml": file(ta.taskFile("instances = 3\n[stop]\ntimeout = \"5s\"", "-sleep")), // in place
		"e.toml": file(ta.taskFile("", "-sleep")),                                        // added; d removed
		"f.toml": file("command = 1\n"),                                                  // invalid
	}}
	plan := ta.a.reconcile(snap, true)
	var got []string
	for _, c := range plan.Changes {
		got = append(got, c.Action+" "+c.Task+": "+strings.Join(c.Reasons, "; "))
	}
	want := []string{
		"restart b: command changed",
		"in-place c: instances 1 -> 3; stop.timeout changed",
		"remove d: ",
		"add e: ",
		"invalid f: file has errors: not started",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(plan.Errors) != 1 || !strings.Contains(plan.Errors[0], "f.toml:1:1: command") {
		t.Fatalf("errors %q", plan.Errors)
	}
	// A dry run changes nothing.
	if _, ok := ta.row("d", 0); !ok {
		t.Fatal("dry run removed d")
	}
	if _, ok := ta.row("e", 0); ok {
		t.Fatal("dry run added e")
	}
}

func TestAgent_RolloutHaltsOnABadVersionAndResumesWhenFixed(t *testing.T) {
	ta := startAgent(t, map[string]string{"halt.toml": ""})
	good := ta.taskFile("instances = 2", "-sleep")
	ta.write("halt.toml", good)
	ta.waitRow("halt", 0, "running", running)
	one := ta.waitRow("halt", 1, "running", running)

	// The new version cannot start: instance 0 fails, instance 1 is left alone.
	ta.write("halt.toml", "command = [\"/nonexistent/glm-serve\"]\ninstances = 2\n")
	r := ta.waitState("halt", 0, "failed")
	if !strings.Contains(r.Message, "/nonexistent/glm-serve") {
		t.Errorf("message %q", r.Message)
	}
	ta.waitEvent(func(e api.Event) bool { return strings.Contains(e.Message, "rollout halted at instance 0") })
	if r, _ := ta.row("halt", 1); r.PID != one.PID || r.State != "running" {
		t.Fatalf("instance 1 touched by a halted rollout: %+v", r)
	}

	// Fixing the file brings instance 0 back; instance 1 runs the good
	// version already (the file is back to it), so it stays.
	ta.write("halt.toml", good)
	ta.waitRow("halt", 0, "running again", running)
	if r, _ := ta.row("halt", 1); r.PID != one.PID {
		t.Fatalf("instance 1 restarted: %d -> %d", one.PID, r.PID)
	}
}
