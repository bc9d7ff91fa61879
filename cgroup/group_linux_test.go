package cgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// The enforcement tests are written once and run per mode: on a hybrid
// host (CI) as "v1+unified" (v1 limits with a twin in the unified
// hierarchy) and "v1" (no twin: freezer kills), and as "v2" in the
// TestV2_ variants, which skip here and run in the cgroup v2 VM
// (.ci/cgroup2-vm; CI excludes them on v1 hosts with -skip '^TestV2_').

var v1Modes = []string{ModeV1Twin, ModeV1}

func forV1Modes(t *testing.T, test func(*testing.T, *Manager)) {
	for _, mode := range v1Modes {
		t.Run(mode, func(t *testing.T) { test(t, testManager(t, mode)) })
	}
}

func TestGroup_Limits(t *testing.T)    { forV1Modes(t, testLimits) }
func TestV2_Group_Limits(t *testing.T) { testLimits(t, testManager(t, ModeV2)) }

// testLimits checks that the files hold the converted limits, that Update
// changes them in place for a running worker, and that Delete refuses
// while processes remain and succeeds after Kill.
func testLimits(t *testing.T, m *Manager) {
	disk, major, minor := testDisk(t)
	g := open(t, m, "limits@0", resources.Limits{})
	swap, cpuset := swapAccounted(g), hasFile(g, "cpuset", "cpuset.cpus")
	if m.v1 == nil {
		cpuset = hasFile(g, "", "cpuset.cpus")
	}
	dev := fmt.Sprintf("%d:%d", major, minor)
	l := resources.Limits{
		CPUs: 0.5, CPUWeight: 200, MemoryMax: 64 * mib, MemoryHigh: 48 * mib, PidsMax: 50,
		IO: []resources.IODevice{{Path: disk, Major: major, Minor: minor, WriteBPS: 10 * mib, ReadIOPS: 1000}},
	}
	if swap {
		l.MemorySwapMax = 32 * mib
	}
	if cpuset {
		l.CpusetCPUs, l.CpusetMems = "0", "0"
	}
	if err := g.Update(l); err != nil {
		t.Fatal(err)
	}
	type file struct{ ctrl, name, want string }
	var want []file
	if m.v1 != nil {
		want = []file{
			{"cpu", "cpu.cfs_quota_us", "50000"}, {"cpu", "cpu.cfs_period_us", "100000"}, {"cpu", "cpu.shares", "2452"},
			{"memory", "memory.limit_in_bytes", "67108864"}, {"memory", "memory.soft_limit_in_bytes", "50331648"},
			{"pids", "pids.max", "50"},
			{"blkio", "blkio.throttle.write_bps_device", dev + " 10485760"}, {"blkio", "blkio.throttle.read_iops_device", dev + " 1000"},
		}
		if swap {
			want = append(want, file{"memory", "memory.memsw.limit_in_bytes", "100663296"})
		}
		if cpuset {
			want = append(want, file{"cpuset", "cpuset.cpus", "0"}, file{"cpuset", "cpuset.mems", "0"})
		}
	} else {
		want = []file{
			{"", "cpu.max", "50000 100000"}, {"", "cpu.weight", "200"},
			{"", "memory.max", "67108864"}, {"", "memory.high", "50331648"}, {"", "memory.oom.group", "1"},
			{"", "pids.max", "50"}, {"", "io.max", dev + " rbps=max wbps=10485760 riops=1000 wiops=max"},
		}
		if swap {
			want = append(want, file{"", "memory.swap.max", "33554432"})
		}
		if cpuset {
			want = append(want, file{"", "cpuset.cpus", "0"}, file{"", "cpuset.mems", "0"})
		}
	}
	for _, f := range want {
		if got := readCgroupFile(t, g, f.ctrl, f.name); got != f.want {
			t.Errorf("%s: %q, want %q", f.name, got, f.want)
		}
	}

	// In place, with a worker running: raise memory (on v1 with swap, above
	// the current memsw, which needs memsw written first), change the CPU
	// quota, drop the pids and IO limits.
	argv, env := helperArgv(t, "sleep")
	p := start(t, g, env, argv...)
	up := resources.Limits{CPUs: 1.5, MemoryMax: 128 * mib}
	if swap {
		up.MemorySwapMax = 64 * mib
	}
	if err := g.Update(up); err != nil {
		t.Fatal(err)
	}
	if m.v1 != nil {
		want = []file{
			{"cpu", "cpu.cfs_quota_us", "150000"}, {"cpu", "cpu.shares", "1024"},
			{"memory", "memory.limit_in_bytes", "134217728"}, {"memory", "memory.soft_limit_in_bytes", "9223372036854771712"},
			{"pids", "pids.max", "max"}, {"blkio", "blkio.throttle.write_bps_device", ""}, {"blkio", "blkio.throttle.read_iops_device", ""},
		}
		if swap {
			want = append(want, file{"memory", "memory.memsw.limit_in_bytes", "201326592"})
		}
	} else {
		want = []file{
			{"", "cpu.max", "150000 100000"}, {"", "cpu.weight", "100"}, {"", "memory.max", "134217728"},
			{"", "memory.high", "max"}, {"", "pids.max", "max"}, {"", "io.max", ""},
		}
		if swap {
			want = append(want, file{"", "memory.swap.max", "67108864"})
		}
	}
	for _, f := range want {
		if got := readCgroupFile(t, g, f.ctrl, f.name); got != f.want {
			t.Errorf("after Update: %s: %q, want %q", f.name, got, f.want)
		}
	}
	if pids, err := g.Procs(); err != nil || !slices.Equal(pids, []int{p.pid}) {
		t.Errorf("Procs = %v, %v; want [%d]", pids, err, p.pid)
	}

	if err := g.Delete(); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Delete with a process inside: %v, want ErrNotEmpty", err)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if ws := p.wait(t, 10*time.Second); ws.Signal() != syscall.SIGKILL {
		t.Errorf("worker ended with %v, want SIGKILL", ws)
	}
	waitEmpty(t, g)
	if err := g.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(context.Background()); err != nil { // the removal runs in the background
		t.Fatal(err)
	}
	for _, d := range g.allDirs() {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s still exists after Delete", d)
		}
	}
	if err := g.Delete(); err != nil {
		t.Errorf("Delete of a deleted group: %v", err)
	}
}

func TestGroup_Placement(t *testing.T)    { forV1Modes(t, testPlacement) }
func TestV2_Group_Placement(t *testing.T) { testPlacement(t, testManager(t, ModeV2)) }

// testPlacement starts `sh -c 'sleep 1 & exec sleep 1'` 40 times: the
// background child forks at once, so a start-then-move placement lets it
// escape (9 of 40 in the notes). Every process must be in the group in
// every hierarchy, and no thread of the test process may stay behind.
func testPlacement(t *testing.T, m *Manager) {
	g := open(t, m, "place@0", resources.Limits{MemoryMax: 256 * mib, PidsMax: 100})
	want := expectedCgroups(m, g.name)
	escapes := 0
	for run := range 40 {
		p := start(t, g, nil, "/bin/sh", "-c", "sleep 1 & exec sleep 1")
		var child int
		state := func() string {
			select {
			case <-p.done:
				return fmt.Sprintf("the shell ended: %v", p.status)
			default:
				return fmt.Sprintf("main is %q, children %v", comm(p.pid), childrenOf(p.pid))
			}
		}
		testenv.Eventually(t, 0, func() bool {
			kids := childrenOf(p.pid)
			if len(kids) == 0 || comm(p.pid) != "sleep" {
				return false
			}
			child = kids[0]
			return true
		}, "run %d: the shell did not fork its background child and exec: %s", run, lazy(state))
		for _, pid := range []int{p.pid, child} {
			if bad := misplaced(t, pid, want); bad != "" {
				escapes++
				t.Errorf("run %d: pid %d escaped: %s", run, pid, bad)
			}
		}
		if err := g.Kill(); err != nil {
			t.Fatal(err)
		}
		p.wait(t, 10*time.Second)
		reap(child)
		waitEmpty(t, g)
	}
	t.Logf("%d escapes in 40 runs", escapes)
	// The starting thread went home: no task of the test process is in the
	// group in any hierarchy.
	if m.v1 != nil {
		self := os.Getpid()
		for _, h := range m.v1.hiers {
			if h.ctrl == "devices" && !g.inDevices {
				continue
			}
			data := readCgroupFile(t, g, h.ctrl, "tasks")
			for _, f := range strings.Fields(data) {
				tid, _ := strconv.Atoi(f)
				if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d", self, tid)); err == nil {
					t.Errorf("thread %d of the test process is still in %s", tid, g.dirs[h.ctrl])
				}
			}
		}
	}
}

// lazy formats as f(), computed when the message is printed.
type lazy func() string

func (f lazy) String() string { return f() }

// expectedCgroups maps each /proc/<pid>/cgroup controller list ("0::" is
// "") of the hierarchies a group uses to the group's path there.
func expectedCgroups(m *Manager, name string) map[string]string {
	want := map[string]string{}
	if m.v1 != nil {
		for _, c := range m.v1.ctrls {
			if c.name == "devices" {
				continue // only groups that deny devices join it (testDenyDevices)
			}
			want[c.name] = filepath.Join(c.parent, name)
		}
		if m.twinParent != "" {
			want[""] = filepath.Join(strings.TrimPrefix(m.twinParent, unifiedMount), name)
		}
	} else {
		want[""] = filepath.Join(strings.TrimPrefix(m.v2Parent, cgroupRoot), name)
	}
	return want
}

// misplaced says where pid is not in its group, or "".
func misplaced(t *testing.T, pid int, want map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	var bad []string
	for line := range strings.Lines(string(data)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			if w, ok := want[ctrl]; ok && parts[2] != w {
				bad = append(bad, fmt.Sprintf("%s in %s, want %s", orUnified(ctrl), parts[2], w))
			}
		}
	}
	return strings.Join(bad, "; ")
}

func orUnified(ctrl string) string {
	if ctrl == "" {
		return "unified"
	}
	return ctrl
}

// childrenOf lists the live children of pid.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, p)
		}
	}
	return kids
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

func TestGroup_Kill(t *testing.T)    { forV1Modes(t, testKill) }
func TestV2_Group_Kill(t *testing.T) { testKill(t, testManager(t, ModeV2)) }

// testKill: a worker with a plain child, a setsid'd child and a
// double-forked daemon dies completely by Kill; a process group kill would
// miss two of the four (notes section 5).
func testKill(t *testing.T, m *Manager) {
	worker := testenv.Worker(t)
	g := open(t, m, "kill@0", resources.Limits{PidsMax: 200})
	children := filepath.Join(t.TempDir(), "children")
	p := start(t, g, nil, worker, "-spawn", "1", "-spawn-setsid", "1", "-daemonize", "1", "-children-file", children)
	var kids []int
	testenv.Eventually(t, 0, func() bool {
		kids = testenv.ReadPids(t, children)
		return len(kids) == 3
	}, "the worker did not start its three descendants")
	all := append([]int{p.pid}, kids...)
	in, err := g.Procs()
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range all {
		if !slices.Contains(in, pid) {
			t.Errorf("pid %d is not listed by Procs %v", pid, in)
		}
	}
	t0 := time.Now()
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Since(t0)
	if ws := p.wait(t, 10*time.Second); ws.Signal() != syscall.SIGKILL {
		t.Errorf("worker ended with %v, want SIGKILL", ws)
	}
	reap(kids...)
	testenv.WaitGone(t, 0, all...)
	waitEmpty(t, g)
	t.Logf("Kill returned after %v; all 4 gone and reaped after %v", killed, time.Since(t0))

	// A restart reuses the group: the new worker must live. (After a write
	// to cgroup.kill, kernels with the kill_seq change SIGKILL every child
	// cloned into the cgroup; Kill must not leave the group in that state.)
	argv, env := helperArgv(t, "sleep")
	again := start(t, g, env, argv...)
	if l := again.line(t, 10*time.Second); l != "sleeping" {
		t.Fatalf("restarted worker printed %q", l)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	again.wait(t, 10*time.Second)
	waitEmpty(t, g)
	if err := g.Delete(); err != nil {
		t.Fatal(err)
	}
}

func TestGroup_OOM(t *testing.T)    { forV1Modes(t, testOOM) }
func TestV2_Group_OOM(t *testing.T) { testOOM(t, testManager(t, ModeV2)) }

// testOOM: a process over memory_max is OOM-killed and the group's counter
// rises; a group that never OOMed reads 0, also after the other one was
// deleted, and so does a new group of the deleted one's name.
func testOOM(t *testing.T, m *Manager) {
	l := resources.Limits{MemoryMax: 64 * mib}
	g := open(t, m, "oom@0", l)
	if swapAccounted(g) {
		l.MemorySwapOff = true // with swap the hog would page out instead of dying
		if err := g.Update(l); err != nil {
			t.Fatal(err)
		}
	}
	other := open(t, m, "calm@0", l)
	if n, err := g.OOMKills(); err != nil || n != 0 {
		t.Fatalf("OOMKills before = %d, %v; want 0", n, err)
	}
	argv, env := helperArgv(t, "hog", "256")
	p := start(t, g, env, argv...)
	ws := p.wait(t, 60*time.Second)
	if ws.Signal() != syscall.SIGKILL {
		t.Fatalf("hog ended with %v, want SIGKILL by the OOM killer", ws)
	}
	n, err := g.OOMKills()
	if err != nil || n < 1 {
		t.Errorf("OOMKills = %d, %v; want >= 1", n, err)
	}
	st, err := g.Stats()
	if err != nil || st.OOMKills != n {
		t.Errorf("Stats().OOMKills = %d, %v; want %d", st.OOMKills, err, n)
	}
	// memory.peak may end a few pages above memory.max: charges are
	// batched per CPU before the limit is checked.
	if st.MemoryPeak < 32*mib || st.MemoryPeak > 65*mib {
		t.Errorf("memory peak %d bytes, want between 32 and 65 MiB", st.MemoryPeak)
	}
	if n, err := other.OOMKills(); err != nil || n != 0 {
		t.Errorf("the other group's OOMKills = %d, %v; want 0", n, err)
	}
	waitEmpty(t, g)
	if err := g.Delete(); err != nil {
		t.Fatal(err)
	}
	if n, err := other.OOMKills(); err != nil || n != 0 {
		t.Errorf("after deleting the OOMed group, the other's OOMKills = %d, %v; want 0", n, err)
	}
	again := open(t, m, "oom@0", l)
	if n, err := again.OOMKills(); err != nil || n != 0 {
		t.Errorf("a new group of the deleted one's name: OOMKills = %d, %v; want 0", n, err)
	}
}

func TestGroup_CPU(t *testing.T)    { forV1Modes(t, testCPU) }
func TestV2_Group_CPU(t *testing.T) { testCPU(t, testManager(t, ModeV2)) }

// testCPU: two spinning threads limited to cpus = 0.5 use 0.4 to 0.6 of a
// core, measured from the group's own usage over about 3 s of wall time.
func testCPU(t *testing.T, m *Manager) {
	g := open(t, m, "cpu@0", resources.Limits{CPUs: 0.5})
	argv, env := helperArgv(t, "burn", "2")
	p := start(t, g, env, argv...)
	if l := p.line(t, 10*time.Second); l != "burning" {
		t.Fatalf("helper printed %q", l)
	}
	s0, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(3 * time.Second) // the measurement window, not a wait for an event
	s1, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(t0)
	cores := float64(s1.CPU-s0.CPU) / float64(wall)
	t.Logf("%.3f cores over %v; throttled %d periods, %v", cores, wall.Round(time.Millisecond), s1.NrThrottled-s0.NrThrottled, s1.CPUThrottled-s0.CPUThrottled)
	if cores < 0.4 || cores > 0.6 {
		t.Errorf("the group used %.3f cores, want 0.4 to 0.6", cores)
	}
	if s1.NrThrottled <= s0.NrThrottled || s1.CPUThrottled <= s0.CPUThrottled {
		t.Errorf("no throttling counted: %+v -> %+v", s0, s1)
	}
}

func TestGroup_Pids(t *testing.T)    { forV1Modes(t, testPids) }
func TestV2_Group_Pids(t *testing.T) { testPids(t, testManager(t, ModeV2)) }

// testPids: forking stops at pids_max with EAGAIN in the worker, while the
// test process (outside the group) still starts processes.
func testPids(t *testing.T, m *Manager) {
	const pidsMax = 20
	g := open(t, m, "pids@0", resources.Limits{PidsMax: pidsMax})
	argv, env := helperArgv(t, "fork", "100")
	p := start(t, g, env, argv...)
	line := p.line(t, 30*time.Second)
	var started, eagain, other int
	if _, err := fmt.Sscanf(line, "started=%d eagain=%d other=%d", &started, &eagain, &other); err != nil {
		t.Fatalf("helper printed %q: %v", line, err)
	}
	t.Logf("pids_max %d: started %d, EAGAIN %d", pidsMax, started, eagain)
	if started == 0 || eagain == 0 || started+eagain+other != 100 || other != 0 {
		t.Errorf("started %d, EAGAIN %d, other errors %d: want some started and the rest EAGAIN", started, eagain, other)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids > pidsMax || int(st.Pids) < started {
		t.Errorf("pids.current %d, want between %d and %d", st.Pids, started, pidsMax)
	}
	if err := exec.Command("/bin/true").Run(); err != nil {
		t.Errorf("the test process cannot start a process while the group is full: %v", err)
	}
	p.stdin.Close()
	if ws := p.wait(t, 30*time.Second); !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("helper ended with %v", ws)
	}
}

func TestGroup_IO(t *testing.T)    { forV1Modes(t, testIO) }
func TestV2_Group_IO(t *testing.T) { testIO(t, testManager(t, ModeV2)) }

// testIO: an O_DIRECT writer of 30 MiB limited to write_bps = 10 MiB/s
// takes about 3 s; the measured rate must be within 30% of the limit.
func testIO(t *testing.T, m *Manager) {
	target, major, minor := testDisk(t)
	const limit, size = 10 * mib, 30
	g := open(t, m, "io@0", resources.Limits{IO: []resources.IODevice{{Path: target, Major: major, Minor: minor, WriteBPS: limit}}})
	argv, env := helperArgv(t, "write-direct", target, strconv.Itoa(size))
	p := start(t, g, env, argv...)
	line := p.line(t, 60*time.Second)
	var wrote int64
	var seconds float64
	if _, err := fmt.Sscanf(line, "wrote=%d seconds=%f", &wrote, &seconds); err != nil {
		t.Fatalf("helper printed %q: %v", line, err)
	}
	rate := float64(wrote) / seconds / mib
	t.Logf("%d MiB in %.2f s = %.2f MiB/s (limit 10)", wrote/mib, seconds, rate)
	if rate < 7 || rate > 13 {
		t.Errorf("write rate %.2f MiB/s, want 7 to 13", rate)
	}
	if ws := p.wait(t, 30*time.Second); !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("writer ended with %v", ws)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.IOWriteBytes < size*mib {
		t.Errorf("Stats().IOWriteBytes = %d, want >= %d", st.IOWriteBytes, size*mib)
	}
}

func TestManager_Cleanup(t *testing.T)    { forV1Modes(t, testCleanup) }
func TestV2_Manager_Cleanup(t *testing.T) { testCleanup(t, testManager(t, ModeV2)) }

// testCleanup: a new manager on the same parent finds the groups an
// earlier one left, kills what runs in them and removes them.
func testCleanup(t *testing.T, m *Manager) {
	worker := testenv.Worker(t)
	busy := open(t, m, "left@0", resources.Limits{MemoryMax: 128 * mib})
	children := filepath.Join(t.TempDir(), "children")
	p := start(t, busy, nil, worker, "-spawn-setsid", "2", "-children-file", children)
	testenv.Eventually(t, 0, func() bool { return len(testenv.ReadPids(t, children)) == 2 }, "the worker did not start its children")
	kids := testenv.ReadPids(t, children)
	idle := open(t, m, "left@1", resources.Limits{PidsMax: 10})

	later, err := newManager(Options{Parent: m.parentPath(), Log: testLogger(t)}, m.twinParent != "")
	if err != nil {
		t.Fatal(err)
	}
	if later.Mode() != m.Mode() {
		t.Fatalf("second manager: mode %s, want %s", later.Mode(), m.Mode())
	}
	removed, err := later.Cleanup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"left@0", "left@1"}) {
		t.Errorf("Cleanup removed %v, want [left@0 left@1]", removed)
	}
	if ws := p.wait(t, 10*time.Second); ws.Signal() != syscall.SIGKILL {
		t.Errorf("worker ended with %v, want SIGKILL", ws)
	}
	reap(kids...)
	testenv.WaitGone(t, 0, append([]int{p.pid}, kids...)...)
	for _, g := range []*group{busy, idle} {
		for _, d := range g.allDirs() {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("%s still exists after Cleanup", d)
			}
		}
	}
	if removed, err := later.Cleanup(t.Context()); err != nil || len(removed) != 0 {
		t.Errorf("second Cleanup: %v, %v; want nothing", removed, err)
	}
}

// parentPath is the parent cgroup path the manager was given.
func (m *Manager) parentPath() string {
	if m.v1 != nil {
		return m.v1.ctrls[0].parent
	}
	return strings.TrimPrefix(m.v2Parent, cgroupRoot)
}

func TestGroup_StartErrors(t *testing.T) {
	for _, mode := range v1Modes {
		t.Run(mode, func(t *testing.T) {
			m := testManager(t, mode)
			g := open(t, m, "full@0", resources.Limits{PidsMax: 1})
			_, err := g.Start(func(fd int) (int, error) {
				return syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{Sys: sysAttr(fd)})
			})
			if !errors.Is(err, syscall.EAGAIN) || !strings.Contains(err.Error(), "pids_max must leave room") {
				t.Errorf("Start with pids_max = 1 on v1: %v, want EAGAIN with a hint", err)
			}
			if err := g.Delete(); err != nil {
				t.Fatal(err)
			}
			if _, err := g.Start(func(int) (int, error) { return 0, nil }); err == nil {
				t.Error("Start on a deleted group succeeded")
			}
		})
	}
}

func sysAttr(fd int) *syscall.SysProcAttr {
	if fd < 0 {
		return &syscall.SysProcAttr{}
	}
	return &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
}

func TestManager_Open(t *testing.T)    { forV1Modes(t, testOpen) }
func TestV2_Manager_Open(t *testing.T) { testOpen(t, testManager(t, ModeV2)) }

// testOpen: names are checked, an open group is returned again with new
// limits, and a limit that cannot be applied leaves no new group behind.
func testOpen(t *testing.T, m *Manager) {
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if _, err := m.Open(t.Context(), bad, resources.Limits{}); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	g := open(t, m, "open@0", resources.Limits{PidsMax: 5})
	if again := open(t, m, "open@0", resources.Limits{PidsMax: 7}); again != g {
		t.Error("a second Open returned another group")
	}
	ctrl := ""
	if m.v1 != nil {
		ctrl = "pids"
	}
	if got := readCgroupFile(t, g, ctrl, "pids.max"); got != "7" {
		t.Errorf("pids.max = %s after the second Open, want 7", got)
	}
	_, err := m.Open(t.Context(), "bad@0", resources.Limits{CPUWeight: 20000})
	if err == nil || !strings.Contains(err.Error(), "cpu_weight") {
		t.Fatalf("Open with a bad weight: %v", err)
	}
	for _, d := range m.group("bad@0").allDirs() {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left behind by a failed Open", d)
		}
	}
}

// TestV2_Manager_DelegatedSubtree plays systemd: it gives a process its
// own cgroup ("glmd.service" with Delegate=yes) and checks that the agent
// in it moves itself into a leaf (<own>/agent), enables controllers in its
// own cgroup only, and puts workers under <own>/workers with their limits.
func TestV2_Manager_DelegatedSubtree(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCgroup(t, "v2")
	svc := "/glmd-test-" + randomHex() + ".service"
	svcDir := filepath.Join(cgroupRoot, svc)
	for _, c := range []string{"cpu", "io", "memory", "pids"} {
		// The root gives controllers to its children as systemd's does;
		// the root is exempt from the no-internal-processes rule.
		writeFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), "+"+c)
	}
	if err := os.Mkdir(svcDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range []string{"tasks/leaf@0", "tasks", "agent", ""} {
			os.Remove(filepath.Join(svcDir, d))
		}
	})
	rootBefore, _ := readString(filepath.Join(cgroupRoot, "cgroup.subtree_control"))

	argv, env := helperArgv(t, "delegated")
	fd, err := unix.Open(svcDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Env: env, Files: []uintptr{inR.Fd(), outW.Fd(), os.Stderr.Fd()},
		Sys: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}})
	unix.Close(fd)
	inR.Close()
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		inW.Close()
		if !exited {
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
	}()
	got := map[string]string{}
	sc := bufio.NewScanner(outR)
	for len(got) < 3 && sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		got[k] = v
	}
	if got["own"] != svc+"/agent" {
		t.Errorf("the agent runs in %q, want %s/agent", got["own"], svc)
	}
	if got["worker"] != svc+"/workers/leaf@0" {
		t.Errorf("the worker runs in %q, want %s/workers/leaf@0", got["worker"], svc)
	}
	if got["memory.max"] != "67108864" {
		t.Errorf("the worker's memory.max is %q", got["memory.max"])
	}
	if procs, _ := readString(filepath.Join(svcDir, "cgroup.procs")); strings.TrimSpace(procs) != "" {
		t.Errorf("processes left in the service's own cgroup: %q", procs)
	}
	enabled, _ := readString(filepath.Join(svcDir, "cgroup.subtree_control"))
	for _, c := range []string{"memory", "pids"} {
		if !strings.Contains(enabled, c) {
			t.Errorf("the service's cgroup gives %q to its children, want %s among them", enabled, c)
		}
	}
	if rootAfter, _ := readString(filepath.Join(cgroupRoot, "cgroup.subtree_control")); rootAfter != rootBefore {
		t.Errorf("the agent changed the root's subtree_control: %q -> %q", rootBefore, rootAfter)
	}
	inW.Close()
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	exited = true
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("the agent helper ended with %v", ws)
	}
}

func TestGroup_DenyDevices(t *testing.T)    { forV1Modes(t, testDenyDevices) }
func TestV2_Group_DenyDevices(t *testing.T) { testDenyDevices(t, testManager(t, ModeV2)) }

// testDenyDevices: a device on the deny list cannot be opened from inside
// the group, others can; an update lifts the ban (what [gpu]
// isolate_devices does with the other instances' /dev/nvidiaN).
func testDenyDevices(t *testing.T, m *Manager) {
	zero := resources.CharDevice{Major: 1, Minor: 5} // /dev/zero
	g := open(t, m, "dev@0", resources.Limits{DenyDevices: []resources.CharDevice{zero}})
	try := func(path string) string {
		t.Helper()
		argv, env := helperArgv(t, "open", path)
		return start(t, g, env, argv...).line(t, 30*time.Second)
	}
	if got := try("/dev/zero"); !strings.Contains(got, "operation not permitted") {
		t.Errorf("open /dev/zero in the group: %q, want operation not permitted", got)
	}
	if got := try("/dev/null"); got != "open ok" {
		t.Errorf("open /dev/null in the group: %q, want ok", got)
	}
	if err := g.Update(resources.Limits{}); err != nil {
		t.Fatal(err)
	}
	if got := try("/dev/zero"); got != "open ok" {
		t.Errorf("open /dev/zero after the update: %q, want ok", got)
	}
}

func TestManager_GroupOf(t *testing.T)    { forV1Modes(t, testGroupOf) }
func TestV2_Manager_GroupOf(t *testing.T) { testGroupOf(t, testManager(t, ModeV2)) }

// testGroupOf: a worker is found in its group (how the agent tells its own
// strays on a GPU from foreign processes); the test process is in none.
func testGroupOf(t *testing.T, m *Manager) {
	g := open(t, m, "owner@3", resources.Limits{})
	argv, env := helperArgv(t, "sleep")
	p := start(t, g, env, argv...)
	p.line(t, 30*time.Second)
	if name, ok := m.GroupOf(p.pid); !ok || name != "owner@3" {
		t.Errorf("GroupOf(worker) = %q, %v; want owner@3", name, ok)
	}
	if name, ok := m.GroupOf(os.Getpid()); ok {
		t.Errorf("GroupOf(test process) = %q, want none", name)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	p.wait(t, 30*time.Second)
}
