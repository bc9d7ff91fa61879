package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/testenv"
	"github.com/open-autoglm/glmd/supervisor"
)

// benchAgent runs an agent over files until the benchmark ends.
func benchAgent(b *testing.B, files map[string]string) (*Agent, *config.Agent) {
	b.Helper()
	dir := b.TempDir()
	cfg := config.DevAgent(dir)
	cfg.Metrics.Listen = ""
	cfg.Cgroup.Parent = testenv.CgroupParent(b)
	os.MkdirAll(cfg.ConfDir, 0o755)
	for name, body := range files {
		os.WriteFile(filepath.Join(cfg.ConfDir, name), []byte(body), 0o644)
	}
	ready := make(chan struct{})
	a := New(cfg, Deps{Log: slog.New(slog.DiscardHandler), Notify: func(s string) {
		if s == "READY=1" {
			close(ready)
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	<-ready
	return a, cfg
}

func monotonicNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// BenchmarkNewTaskFileToExec measures a task file renamed into conf.d, with
// 100 tasks already running, until the new worker's first instruction (the
// C worker stamps CLOCK_MONOTONIC). No command is sent: the watcher sees it.
func BenchmarkNewTaskFileToExec(b *testing.B) {
	bin := testenv.CWorker(b)
	files := map[string]string{}
	for i := range 100 {
		files[fmt.Sprintf("idle-%03d.toml", i)] = fmt.Sprintf("command = [%q, \"sleep\"]\n", bin)
	}
	a, cfg := benchAgent(b, files)
	waitRunning(b, a, 100)
	stage := b.TempDir()
	var lat []time.Duration
	n := 0
	for b.Loop() {
		n++
		out := filepath.Join(stage, fmt.Sprintf("stamp-%d", n))
		name := fmt.Sprintf("new-%d.toml", n)
		body := fmt.Sprintf("command = [%q, \"sleep\"]\n[env]\nBENCH_OUT = %q\n", bin, out)
		tmp := filepath.Join(cfg.ConfDir, "."+name+".tmp")
		os.WriteFile(tmp, []byte(body), 0o644)
		t0 := monotonicNow()
		if err := os.Rename(tmp, filepath.Join(cfg.ConfDir, name)); err != nil {
			b.Fatal(err)
		}
		var started int64
		for deadline := time.Now().Add(10 * time.Second); started == 0; {
			if data, err := os.ReadFile(out); err == nil {
				if s, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "start "); ok {
					started, _ = strconv.ParseInt(s, 10, 64)
				}
			}
			if time.Now().After(deadline) {
				b.Fatal("new task never started")
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Duration(started-t0))
		// Remove it again so every round adds one task to the same 100.
		os.Remove(filepath.Join(cfg.ConfDir, name))
		waitTasks(b, a, 100)
	}
	testenv.ReportQuantiles(b, lat, "file-to-exec")
}

// BenchmarkStartInstances measures an agent starting with one task file of
// N sleeping C workers, from Run until every instance runs.
func BenchmarkStartInstances(b *testing.B) {
	bin := testenv.CWorker(b)
	for _, n := range []int{500, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				cfg := config.DevAgent(dir)
				cfg.Metrics.Listen = ""
				cfg.Cgroup.Parent = testenv.CgroupParent(b)
				os.MkdirAll(cfg.ConfDir, 0o755)
				os.WriteFile(filepath.Join(cfg.ConfDir, "fleet.toml"),
					fmt.Appendf(nil, "command = [%q, \"sleep\"]\ninstances = %d\n[stop]\ntimeout = \"5s\"\n", bin, n), 0o644)
				a := New(cfg, Deps{Log: slog.New(slog.DiscardHandler)})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				b.StartTimer()
				t0 := time.Now()
				go func() { defer close(done); a.Run(ctx) }()
				// Events are lossy for slow readers; poll the runners instead.
				for countRunning(a) < n {
					time.Sleep(2 * time.Millisecond)
				}
				lat = append(lat, time.Since(t0))
				b.StopTimer()
				cancel()
				<-done
				b.StartTimer()
			}
			testenv.ReportQuantiles(b, lat, "all-running")
		})
	}
}

func countRunning(a *Agent) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := 0
	for _, t := range a.tasks {
		for _, in := range t.instances {
			if in.runner.Status().State == supervisor.StateRunning {
				c++
			}
		}
	}
	return c
}

func waitRunning(b *testing.B, a *Agent, n int) {
	b.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; {
		c := 0
		for _, r := range a.Status(context.Background(), api.StatusOptions{}) {
			if r.State == "running" {
				c++
			}
		}
		if c >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d running", c, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitTasks(b *testing.B, a *Agent, n int) {
	b.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; {
		st := a.Status(context.Background(), api.StatusOptions{})
		if len(st) == n && !slices.ContainsFunc(st, func(r api.InstanceStatus) bool { return r.State != "running" }) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d rows, want %d running", len(st), n)
		}
		time.Sleep(time.Millisecond)
	}
}
