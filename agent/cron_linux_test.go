package agent

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// runs returns the run history of task.
func (ta *testAgent) runs(task string) []api.CronRun {
	ta.t.Helper()
	runs, err := ta.client.Runs(context.Background(), task)
	if err != nil {
		ta.t.Fatal(err)
	}
	return runs
}

// waitRuns waits until task's history satisfies cond.
func (ta *testAgent) waitRuns(task, what string, cond func([]api.CronRun) bool) []api.CronRun {
	ta.t.Helper()
	var runs []api.CronRun
	testenv.Eventually(ta.t, 20*time.Second, func() bool {
		var err error
		runs, err = ta.client.Runs(context.Background(), task)
		return err == nil && cond(runs)
	}, "%s: want %s; runs %+v; events %+v", task, what, runs, ta.events())
	return runs
}

func countResult(runs []api.CronRun, result string) int {
	n := 0
	for _, r := range runs {
		if r.Result == result {
			n++
		}
	}
	return n
}

// TestAgent_Cron_EverySecond runs a real schedule in real time: runs come
// every second, each with its own log file, and the status shows the next.
func TestAgent_Cron_EverySecond(t *testing.T) {
	ta := startAgent(t, nil)
	ta.write("tick.toml", ta.taskFile("kind = \"cron\"\nschedule = \"@every 1s\"", "-echo", "tick", "-exit", "0"))
	runs := ta.waitRuns("tick", "2 successful runs", func(r []api.CronRun) bool { return countResult(r, "success") >= 2 })
	var ok []api.CronRun
	for _, r := range runs {
		if r.Result == "success" {
			ok = append(ok, r)
		}
	}
	if ok[0].Stdout == ok[1].Stdout || ok[1].Start.Sub(*ok[0].Start) < 500*time.Millisecond {
		t.Errorf("runs %+v: want separate log files and starts a second apart", ok[:2])
	}
	for _, r := range ok[:2] {
		if b, err := os.ReadFile(r.Stdout); err != nil || string(b) != "tick\n" {
			t.Errorf("run %d log %s: %q, %v", r.ID, r.Stdout, b, err)
		}
		if r.Trigger != "schedule" || r.ExitCode != 0 {
			t.Errorf("run %+v", r)
		}
	}
	r := ta.waitRow("tick", 0, "a next run", func(r api.InstanceStatus) bool { return r.NextRun != nil })
	if r.Kind != "cron" {
		t.Errorf("row %+v", r)
	}
	// glmctl logs shows the last run's output.
	rc, err := ta.client.Logs(context.Background(), api.LogRequest{Task: "tick", Instance: 0, Lines: 10})
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 100)
	n, _ := rc.Read(b)
	rc.Close()
	if !strings.Contains(string(b[:n]), "tick") {
		t.Errorf("logs %q", b[:n])
	}
	// Removing the task stops its schedule.
	ta.remove("tick.toml")
	ta.waitGone("tick")
}

// TestAgent_Cron_TimeoutKillsTheRun checks that a run over its timeout is
// killed, children included, and recorded as timeout.
func TestAgent_Cron_TimeoutKillsTheRun(t *testing.T) {
	ta := startAgent(t, nil)
	ta.write("slow.toml", ta.taskFile("kind = \"cron\"\nschedule = \"@yearly\"\ntimeout = \"1s\"\n[stop]\ntimeout = \"1s\"",
		"-spawn-setsid", "2", "-children-ignore-term", "-ignore-term"))
	ta.waitState("slow", 0, "pending")
	id, err := ta.client.RunNow(context.Background(), "slow")
	if err != nil {
		t.Fatal(err)
	}
	// While it runs, a second manual run is refused (concurrency forbid).
	ta.waitRow("slow", 0, "running", func(r api.InstanceStatus) bool { return r.State == "running" })
	if _, err := ta.client.RunNow(context.Background(), "slow"); !errors.Is(err, api.ErrConflict) {
		t.Errorf("second run while active: %v, want a conflict", err)
	}
	runs := ta.waitRuns("slow", "a timed-out run", func(r []api.CronRun) bool { return countResult(r, "timeout") == 1 })
	if runs[0].ID != id || runs[0].Signal != "SIGKILL" {
		t.Errorf("run %+v: want run %d killed", runs[0], id)
	}
	ta.assertNoProcesses("slow")
}

// TestAgent_Cron_SuspendedManualRunAndHistory checks that glmctl run works
// while the task is suspended and that the history survives a restart of
// glmd.
func TestAgent_Cron_SuspendedManualRunAndHistory(t *testing.T) {
	state := t.TempDir()
	useState := func(c *config.Agent) { c.StateDir = state }
	ta := startAgentWith(t, useState)
	ta.write("export.toml", ta.taskFile("kind = \"cron\"\nschedule = \"* * * * * *\"\nsuspend = true", "-echo", "exported", "-exit", "0"))
	r := ta.waitRow("export", 0, "suspended", func(r api.InstanceStatus) bool { return strings.Contains(r.Message, "suspended") })
	if r.NextRun != nil {
		t.Errorf("suspended task has a next run %v", r.NextRun)
	}
	if _, err := ta.client.RunNow(context.Background(), "export"); err != nil {
		t.Fatal(err)
	}
	runs := ta.waitRuns("export", "one successful manual run", func(r []api.CronRun) bool { return countResult(r, "success") == 1 })
	if len(runs) != 1 || runs[0].Trigger != "manual" {
		t.Fatalf("runs %+v: want only the manual one (suspended: nothing scheduled)", runs)
	}
	ta.stop()

	ta2 := startAgentWith(t, useState)
	ta2.write("export.toml", ta.taskFile("kind = \"cron\"\nschedule = \"* * * * * *\"\nsuspend = true", "-echo", "exported", "-exit", "0"))
	ta2.waitState("export", 0, "exited")
	if got := ta2.runs("export"); len(got) != 1 || got[0].ID != runs[0].ID || got[0].Result != "success" {
		t.Fatalf("after restart runs %+v, want %+v", got, runs)
	}
}

func TestAgent_Cron_Metrics(t *testing.T) {
	ta := startAgent(t, nil)
	ta.write("m.toml", ta.taskFile("kind = \"cron\"\nschedule = \"@hourly\"", "-exit", "0"))
	ta.waitState("m", 0, "pending")
	if _, err := ta.client.RunNow(context.Background(), "m"); err != nil {
		t.Fatal(err)
	}
	ta.waitRuns("m", "a success", func(r []api.CronRun) bool { return countResult(r, "success") == 1 })
	wants := []string{
		`glmd_cron_runs_total{result="success",task="m"} 1`,
		`glmd_cron_last_success_timestamp_seconds{task="m"}`,
		`glmd_cron_next_run_timestamp_seconds{task="m"}`,
		`glmd_cron_last_duration_seconds{task="m"}`,
		`glmd_cron_active_runs{task="m"} 0`,
	}
	// The history file is written a moment before the job's status
	// shows the run: poll the scrape.
	var missing []string
	testenv.Eventually(t, 0, func() bool {
		body := ta.scrape()
		missing = missing[:0]
		for _, want := range wants {
			if !strings.Contains(body, want) {
				missing = append(missing, want)
			}
		}
		return len(missing) == 0
	}, "/metrics lacks %q", &missing) // a pointer: formatted as the last poll left it
}
