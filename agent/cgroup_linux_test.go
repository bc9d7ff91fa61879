package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/cgroup"
	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// The cgroup tests run twice: on the CI host (cgroup v1, TestCgroup_*) and
// inside a User-Mode-Linux guest with a pure v2 tree (TestV2_*, run by
// .ci/cgroup2-vm).

func requireCgroups(t *testing.T, version string) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCgroup(t, version)
}

func TestCgroup_OOMKilledIsReportedAndRestarted(t *testing.T) {
	requireCgroups(t, "v1")
	testOOMKilled(t)
}

func TestV2_OOMKilledIsReportedAndRestarted(t *testing.T) {
	requireCgroups(t, "v2")
	testOOMKilled(t)
}

func testOOMKilled(t *testing.T) {
	ta := startAgent(t, map[string]string{"hog.toml": ""})
	ta.write("hog.toml", ta.taskFile("[resources]\nmemory_max = \"64MiB\"\nmemory_swap_max = 0\n[restart]\ndelay = \"10ms\"",
		"-hog", "512MiB"))
	r := ta.waitRow("hog", 0, "an OOM kill and a restart", func(r api.InstanceStatus) bool {
		return r.LastExit.Reason == "oom_killed" && r.Restarts >= 1
	})
	if r.LastExit.Signal != "SIGKILL" {
		t.Errorf("last exit %+v", r.LastExit)
	}
	ta.waitEvent(func(e api.Event) bool { return e.Exit != nil && e.Exit.Reason == "oom_killed" })
	for _, m := range ta.a.Instances() {
		if m.Task == "hog" && m.Exits["oom_killed"] < 1 {
			t.Errorf("metrics exits %v", m.Exits)
		}
	}
}

func TestCgroup_StopKillsWhatEscapedGroupAndEnvironment(t *testing.T) {
	requireCgroups(t, "v1")
	testStopKillsEscapees(t)
}

func TestV2_StopKillsWhatEscapedGroupAndEnvironment(t *testing.T) {
	requireCgroups(t, "v2")
	testStopKillsEscapees(t)
}

// testStopKillsEscapees runs a worker that leaves a daemon in a new session
// with an empty environment: without cgroups nothing would find it.
func testStopKillsEscapees(t *testing.T) {
	ta := startAgent(t, map[string]string{"escape.toml": ""})
	pidfile := filepath.Join(t.TempDir(), "daemon.pid")
	ta.write("escape.toml", fmt.Sprintf("command = [\"/bin/sh\", \"-c\", %q]\n[stop]\ntimeout = \"2s\"\n",
		fmt.Sprintf("setsid env -i /bin/sh -c 'echo $$ > %s; exec sleep 1000' </dev/null >/dev/null 2>&1 & exec %s -sleep", pidfile, ta.worker)))
	r := ta.waitRow("escape", 0, "running", running)
	if r.Cgroup != "escape@0" {
		t.Errorf("cgroup %q", r.Cgroup)
	}
	var daemon []int
	testenv.Eventually(t, 10*time.Second, func() bool { daemon = testenv.ReadPids(t, pidfile); return len(daemon) == 1 }, "daemon did not start")
	if err := ta.client.Stop(context.Background(), "escape", 0); err != nil {
		t.Fatal(err)
	}
	testenv.WaitGone(t, 10*time.Second, daemon...)
	if r, _ := ta.row("escape", 0); r.Cgroup != "" {
		t.Errorf("cgroup %q still there after stop", r.Cgroup)
	}
	assertNoGroupDirs(t, ta.cfg.Cgroup.Parent, "escape@0")
}

func TestCgroup_LimitsChangeInPlace(t *testing.T) {
	requireCgroups(t, "v1")
	testLimitsInPlace(t)
}

func TestV2_LimitsChangeInPlace(t *testing.T) {
	requireCgroups(t, "v2")
	testLimitsInPlace(t)
}

func testLimitsInPlace(t *testing.T) {
	ta := startAgent(t, map[string]string{"lim.toml": ""})
	ta.write("lim.toml", ta.taskFile("[resources]\nmemory_max = \"256MiB\"\npids_max = 64", "-sleep"))
	before := ta.waitRow("lim", 0, "running", running)
	ta.write("lim.toml", ta.taskFile("[resources]\nmemory_max = \"512MiB\"\npids_max = 128", "-sleep"))
	ta.waitEvent(func(e api.Event) bool { return e.Type == "reload" && strings.Contains(e.Message, "in-place") })
	r, err := ta.client.Status(context.Background(), api.StatusOptions{Resources: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range r {
		if row.Task != "lim" {
			continue
		}
		if row.PID != before.PID {
			t.Fatalf("restarted for a limit change: %d -> %d", before.PID, row.PID)
		}
		u := row.Resources
		if u == nil || u.MemoryMax != 512<<20 || u.PidsMax != 128 || u.Pids < 1 || u.MemoryBytes == 0 {
			t.Fatalf("usage %+v", u)
		}
	}
	if got := memoryLimit(t, before.PID); got != 512<<20 {
		t.Fatalf("the kernel's memory limit is %d", got)
	}
}

// memoryLimit reads the memory limit of pid's cgroup (v1 or v2).
func memoryLimit(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		var file string
		switch {
		case f[0] == "0" && f[1] == "" && exists("/sys/fs/cgroup"+f[2]+"/memory.max"):
			file = "/sys/fs/cgroup" + f[2] + "/memory.max"
		case strings.Contains(","+f[1]+",", ",memory,"):
			file = "/sys/fs/cgroup/memory" + f[2] + "/memory.limit_in_bytes"
		default:
			continue
		}
		v, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		fmt.Sscan(string(v), &n)
		return n
	}
	t.Fatalf("pid %d has no memory cgroup: %s", pid, b)
	return 0
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// assertNoGroupDirs fails if the group's directory stays in any hierarchy
// (its removal runs in the background after the stop).
func assertNoGroupDirs(t *testing.T, parent, name string) {
	t.Helper()
	var left []string
	testenv.Eventually(t, 10*time.Second, func() bool {
		left, _ = filepath.Glob("/sys/fs/cgroup/*" + parent + "/" + name)
		if exists("/sys/fs/cgroup" + parent + "/" + name) {
			left = append(left, "/sys/fs/cgroup"+parent+"/"+name)
		}
		return len(left) == 0
	}, "cgroup directories left: %v", left)
}

func TestCgroup_CleanupKillsWhatAPreviousAgentLeft(t *testing.T) {
	requireCgroups(t, "v1")
	testCleanup(t)
}

func TestV2_CleanupKillsWhatAPreviousAgentLeft(t *testing.T) {
	requireCgroups(t, "v2")
	testCleanup(t)
}

func testCleanup(t *testing.T) {
	parent := testenv.CgroupParent(t)
	w := testenv.Worker(t)
	m, err := cgroup.New(cgroup.Options{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.Open(context.Background(), "stale@0", resources.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := g.Start(func(fd int) (int, error) {
		attr := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{}}
		if fd >= 0 {
			attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, fd
		}
		return syscall.ForkExec(w, []string{w, "-sleep"}, attr)
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := config.DevAgent(dir)
	cfg.Metrics.Listen = ""
	cfg.Cgroup.Parent = parent
	os.MkdirAll(cfg.ConfDir, 0o755)
	a := New(cfg, Deps{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("agent did not stop")
		}
	}()
	testenv.WaitGone(t, 10*time.Second, pid)
	testenv.Eventually(t, 10*time.Second, func() bool {
		left, _ := filepath.Glob("/sys/fs/cgroup/*" + parent + "/stale@0")
		return len(left) == 0 && !exists("/sys/fs/cgroup"+parent+"/stale@0")
	}, "the stale group was not removed")
}

func TestAgent_NoCgroups_LimitsRefusedOutsideDev(t *testing.T) {
	for _, dev := range []bool{false, true} {
		t.Run(fmt.Sprintf("dev=%v", dev), func(t *testing.T) {
			ta := startAgentWith(t, func(cfg *config.Agent) {
				cfg.Cgroup.Mode = config.CgroupOff
				cfg.Dev = dev
			})
			ta.write("capped.toml", ta.taskFile("[resources]\nmemory_max = \"1GiB\"", "-sleep"))
			ta.write("free.toml", ta.taskFile("", "-sleep"))
			ta.waitRow("free", 0, "running", running)
			if dev {
				r := ta.waitRow("capped", 0, "running", running)
				if !strings.Contains(r.Message, "limits not enforced") {
					t.Errorf("message %q", r.Message)
				}
				return
			}
			r := ta.waitState("capped", 0, "failed")
			if !strings.Contains(r.Message, "needs cgroups") || r.PID != 0 {
				t.Errorf("row %+v", r)
			}
			if err := ta.client.Start(context.Background(), "capped", 0); err == nil || !strings.Contains(err.Error(), "needs cgroups") {
				t.Errorf("start: %v", err)
			}
			// Dropping the limits lets it start.
			ta.write("capped.toml", ta.taskFile("", "-sleep"))
			ta.waitRow("capped", 0, "running", running)
		})
	}
}
