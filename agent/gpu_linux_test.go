package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/gpu"
	"github.com/open-autoglm/glmd/internal/gpu/gputest"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// startGPUAgent runs an agent over the fake 8-GPU host (two NUMA nodes,
// NVLink pairs {0,1} {2,3} {4,5} {6,7}).
func startGPUAgent(t *testing.T, inv gpu.Inventory, mutate func(*config.Agent), files ...map[string]string) *testAgent {
	t.Helper()
	return startAgentDeps(t, mutate, func(d *Deps) { d.GPUs = inv }, files...)
}

// envOf reads the environment the worker printed (-print-env) into its log.
func (ta *testAgent) envOf(task string, instance int) map[string]string {
	ta.t.Helper()
	path := filepath.Join(ta.cfg.LogDir, task, strconv.Itoa(instance)+".stdout.log")
	var env map[string]string
	testenv.Eventually(ta.t, 0, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		env = map[string]string{}
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[k] = v
			}
		}
		return env["GLMD_TASK"] != ""
	}, "no environment in %s", path)
	return env
}

func TestAgent_GPU_AllocateWaitRelease(t *testing.T) {
	fake := gputest.NewFake()
	ta := startGPUAgent(t, fake, nil)
	ta.write("llm.toml", ta.taskFile("instances = 2\n[gpu]\ncount = 2", "-print-env"))
	ta.write("cpu.toml", ta.taskFile("", "-print-env"))

	var held [][]string
	for i := range 2 {
		r := ta.waitState("llm", i, "running")
		if len(r.GPUs) != 2 {
			t.Fatalf("llm:%d has GPUs %v, want 2", i, r.GPUs)
		}
		held = append(held, r.GPUs)
		env := ta.envOf("llm", i)
		if env["CUDA_VISIBLE_DEVICES"] != strings.Join(r.GPUs, ",") || env["GLMD_GPU_UUIDS"] != strings.Join(r.GPUs, ",") ||
			env["CUDA_DEVICE_ORDER"] != "PCI_BUS_ID" || env["NVIDIA_VISIBLE_DEVICES"] != strings.Join(r.GPUs, ",") {
			t.Errorf("llm:%d env %v, want its GPUs %v", i, env, r.GPUs)
		}
	}
	// Each instance has a whole NVLink pair of its own.
	pair := func(uuids []string) bool {
		a, b := slices.Index(allUUIDs(fake), uuids[0]), slices.Index(allUUIDs(fake), uuids[1])
		return a/2 == b/2
	}
	if slices.ContainsFunc(held[0], func(u string) bool { return slices.Contains(held[1], u) }) || !pair(held[0]) || !pair(held[1]) {
		t.Fatalf("GPUs %v: want two disjoint NVLink pairs", held)
	}
	// Its cgroup is pinned to the CPUs and memory node of its GPUs (as far
	// as this host has them: the fake's NUMA node 0 has CPUs 0-55,112-167).
	if ta.a.cgroups != nil {
		uuids := allUUIDs(fake)
		node := slices.Index(uuids, held[0][0]) / 4
		cpus, mems := allowedCPUs()
		wantCPUs := gpu.IntersectList([]string{"0-55,112-167", "56-111,168-223"}[node], cpus)
		wantMems := gpu.IntersectList(strconv.Itoa(node), mems)
		if wantCPUs == "" || wantMems == "" {
			wantCPUs, wantMems = "", ""
		}
		gotCPUs, gotMems := instanceCpuset(t, ta.cfg.Cgroup.Parent, "llm@0")
		if wantCPUs != "" && (gotCPUs != wantCPUs || gotMems != wantMems) {
			t.Errorf("llm@0 cpuset cpus %q mems %q, want %q %q", gotCPUs, gotMems, wantCPUs, wantMems)
		}
	}
	// A task without [gpu] sees none.
	if env := ta.envOf("cpu", 0); env["CUDA_VISIBLE_DEVICES"] != "" || env["NVIDIA_VISIBLE_DEVICES"] != "void" {
		t.Errorf("cpu task env: CUDA_VISIBLE_DEVICES=%q NVIDIA_VISIBLE_DEVICES=%q, want empty and void",
			env["CUDA_VISIBLE_DEVICES"], env["NVIDIA_VISIBLE_DEVICES"])
	}

	// Six more cannot be had while four are held: pending, with why.
	ta.write("big.toml", ta.taskFile("[gpu]\ncount = 6", "-sleep"))
	r := ta.waitState("big", 0, "pending")
	if !strings.Contains(r.Message, "needs 6 GPUs") || !strings.Contains(r.Message, "4 available") {
		t.Errorf("pending message %q", r.Message)
	}
	// More than the host has can never be met: failed at once.
	ta.write("huge.toml", ta.taskFile("[gpu]\ncount = 9", "-sleep"))
	if r := ta.waitState("huge", 0, "failed"); !strings.Contains(r.Message, "9 GPUs") {
		t.Errorf("failed message %q", r.Message)
	}
	// Stopping an instance releases its pair and big starts by itself.
	if err := ta.client.Stop(context.Background(), "llm", 1); err != nil {
		t.Fatal(err)
	}
	if r := ta.waitState("big", 0, "running"); len(r.GPUs) != 6 {
		t.Fatalf("big has %v", r.GPUs)
	}
	if r, _ := ta.row("llm", 1); len(r.GPUs) != 0 {
		t.Errorf("stopped llm:1 still shows GPUs %v", r.GPUs)
	}
	// glmctl gpus: every GPU, who holds it.
	gpus, err := ta.client.GPUs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	holders := map[string]int{}
	for _, g := range gpus {
		for _, h := range g.Holders {
			holders[h]++
		}
	}
	if len(gpus) != 8 || holders["llm:0"] != 2 || holders["big:0"] != 6 {
		t.Errorf("gpus: %d GPUs, holders %v", len(gpus), holders)
	}
}

func allUUIDs(f *gputest.Fake) []string {
	var out []string
	for i := range gputest.FakeGPUs {
		out = append(out, f.UUID(i))
	}
	return out
}

func TestAgent_GPU_FatalXIDMovesTheTask(t *testing.T) {
	fake := gputest.NewFake()
	ta := startGPUAgent(t, fake, nil)
	ta.write("llm.toml", ta.taskFile("[gpu]\ncount = 1", "-sleep"))
	r := ta.waitState("llm", 0, "running")
	first := r.GPUs[0]
	bad := slices.Index(allUUIDs(fake), first)
	fake.PushXID(bad, 48) // double-bit ECC: the GPU must be reset
	r = ta.waitRow("llm", 0, "restarted on another GPU", func(r api.InstanceStatus) bool {
		return r.State == "running" && len(r.GPUs) == 1 && r.GPUs[0] != first
	})
	if r.LastExit.Reason != "gpu_unhealthy" {
		t.Errorf("last exit %+v, want reason gpu_unhealthy", r.LastExit)
	}
	gpus, err := ta.client.GPUs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if gpus[bad].Health == "healthy" || !strings.Contains(gpus[bad].Reason, "48") {
		t.Errorf("GPU %d: health %q reason %q", bad, gpus[bad].Health, gpus[bad].Reason)
	}
	if !slices.ContainsFunc(ta.events(), func(e api.Event) bool { return e.Type == "gpu" && strings.Contains(e.Message, "48") }) {
		t.Errorf("no gpu event naming xid 48 in %v", ta.events())
	}
}

func TestAgent_GPU_SameGPUsAfterAgentRestart(t *testing.T) {
	state := t.TempDir()
	useState := func(c *config.Agent) { c.StateDir = state }
	two := func(ta *testAgent) map[string]string {
		return map[string]string{
			"a.toml": ta.taskFile("[gpu]\ncount = 1", "-sleep"),
			"b.toml": ta.taskFile("[gpu]\ncount = 1", "-sleep"),
		}
	}
	ta := startGPUAgent(t, gputest.NewFake(), useState)
	for n, body := range two(ta) {
		ta.write(n, body)
	}
	a := ta.waitState("a", 0, "running").GPUs
	b := ta.waitState("b", 0, "running").GPUs
	ta.stop()

	// A new agent without task a: b gets its GPU back, not the one a
	// fresh choice would give it (a's).
	ta2 := startGPUAgent(t, gputest.NewFake(), useState)
	ta2.write("b.toml", two(ta2)["b.toml"])
	if got := ta2.waitState("b", 0, "running").GPUs; !slices.Equal(got, b) {
		t.Fatalf("after restart b has %v, want its GPUs %v back (a had %v)", got, b, a)
	}
}

func TestAgent_GPU_StrayMemoryReported(t *testing.T) {
	fake := gputest.NewFake()
	ta := startGPUAgent(t, fake, nil)
	ta.write("llm.toml", ta.taskFile("[gpu]\ncount = 1", "-sleep"))
	r := ta.waitState("llm", 0, "running")
	idx := slices.Index(allUUIDs(fake), r.GPUs[0])
	// A process glmd did not start (this test) holds memory on the GPU.
	fake.SetProcesses(idx, gpu.Process{PID: os.Getpid(), Memory: 3 << 30})
	if err := ta.client.Stop(context.Background(), "llm", 0); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 0, func() bool {
		gpus, err := ta.client.GPUs(context.Background())
		return err == nil && len(gpus[idx].Strays) == 1 && gpus[idx].Strays[0].PID == os.Getpid()
	}, "stray pid %d not reported on GPU %d", os.Getpid(), idx)
	// Started again on that GPU, the instance says so.
	if err := ta.client.Start(context.Background(), "llm", 0); err != nil {
		t.Fatal(err)
	}
	r = ta.waitState("llm", 0, "running")
	if !strings.Contains(r.Message, "stray") {
		t.Errorf("message %q does not mention the stray", r.Message)
	}
}

// instanceCpuset reads the cpuset of an instance's cgroup below parent
// (cgroup v1's cpuset hierarchy, or the unified one).
func instanceCpuset(t *testing.T, parent, name string) (cpus, mems string) {
	t.Helper()
	for _, dir := range []string{"/sys/fs/cgroup/cpuset", "/sys/fs/cgroup"} {
		c, err := os.ReadFile(filepath.Join(dir, parent, name, "cpuset.cpus"))
		if err != nil {
			continue
		}
		m, _ := os.ReadFile(filepath.Join(dir, parent, name, "cpuset.mems"))
		return strings.TrimSpace(string(c)), strings.TrimSpace(string(m))
	}
	t.Fatalf("no cpuset for %s below %s", name, parent)
	return "", ""
}

// TestAgent_GPU_IsolateDevices gives a worker one GPU and checks that its
// cgroup refuses the other GPUs' device files: opening a 195:N node of its
// own GPU reaches the (absent) driver, ENXIO; any other is EPERM.
func TestAgent_GPU_IsolateDevices(t *testing.T) {
	testenv.RequireRoot(t)
	fake := gputest.NewFake()
	ta := startGPUAgent(t, fake, nil)
	if ta.a.cgroups == nil {
		testenv.Skip(t, "cgroups are not usable here: %v", ta.a.cgroupErr)
	}
	dir := t.TempDir()
	var args []string
	for i := range gputest.FakeGPUs {
		p := filepath.Join(dir, "nvidia"+strconv.Itoa(i))
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(gpu.DeviceMajor, uint32(i)))); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-open", p)
	}
	ta.write("iso.toml", ta.taskFile("[gpu]\ncount = 1\nisolate_devices = true", append(args, "-sleep")...))
	r := ta.waitState("iso", 0, "running")
	mine := slices.Index(allUUIDs(fake), r.GPUs[0])
	var out string
	testenv.Eventually(t, 0, func() bool {
		b, _ := os.ReadFile(filepath.Join(ta.cfg.LogDir, "iso", "0.stdout.log"))
		out = string(b)
		return strings.Count(out, "\n") >= gputest.FakeGPUs
	}, "worker did not report its opens")
	for i := range gputest.FakeGPUs {
		want := "operation not permitted"
		if i == mine {
			want = "no such device or address"
		}
		line := "open " + filepath.Join(dir, "nvidia"+strconv.Itoa(i)) + ": " + want
		if !strings.Contains(out, line) {
			t.Errorf("want %q in the worker's output:\n%s", line, out)
		}
	}
}
