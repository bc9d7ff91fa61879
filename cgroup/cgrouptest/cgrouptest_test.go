package cgrouptest_test

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/open-autoglm/glmd/cgroup/cgrouptest"
	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/internal/testenv"
	"github.com/open-autoglm/glmd/supervisor"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	_ supervisor.Cgroups = (*cgrouptest.Cgroups)(nil)
	_ supervisor.Group   = (*cgrouptest.Group)(nil)
)

func TestFake_Lifecycle(t *testing.T) {
	var c cgrouptest.Cgroups
	ctx := context.Background()
	sg, err := c.Open(ctx, "job@0", resources.Limits{PidsMax: 5})
	if err != nil {
		t.Fatal(err)
	}
	g := c.Group("job@0")
	if sg != supervisor.Group(g) || g.Name() != "job@0" {
		t.Fatalf("Open returned %v, Group %v", sg, g)
	}
	if again, _ := c.Open(ctx, "job@0", resources.Limits{PidsMax: 7}); again != sg || g.Limits().PidsMax != 7 || g.Updates() != 2 {
		t.Errorf("second Open: same group %v, limits %+v, updates %d", again == sg, g.Limits(), g.Updates())
	}

	var fd = -2
	pid, err := g.Start(func(cgroupFD int) (int, error) {
		fd = cgroupFD
		return syscall.ForkExec("/bin/sleep", []string{"sleep", "60"}, &syscall.ProcAttr{})
	})
	if err != nil || fd != -1 {
		t.Fatalf("Start: %v (fork got fd %d, want -1)", err, fd)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if pids, _ := g.Procs(); !slices.Equal(pids, []int{pid}) {
		t.Errorf("Procs = %v, want [%d]", pids, pid)
	}
	if err := g.Delete(); !errors.Is(err, cgrouptest.ErrNotEmpty) {
		t.Errorf("Delete with a live process: %v", err)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("wait: %v %v", ws, err)
	}
	if err := g.Delete(); err != nil || !g.Deleted() || len(c.OpenNames()) != 0 {
		t.Fatalf("Delete: %v, deleted %v, open %v", err, g.Deleted(), c.OpenNames())
	}
	if _, err := g.Start(func(int) (int, error) { return 1, nil }); err == nil {
		t.Error("Start on a deleted group succeeded")
	}
	if fresh, _ := c.Open(ctx, "job@0", resources.Limits{}); fresh == sg {
		t.Error("Open after Delete returned the deleted group")
	}
	if got := c.Opens(); !slices.Equal(got, []string{"job@0", "job@0", "job@0"}) {
		t.Errorf("Opens = %v", got)
	}
}

func TestFake_Failures(t *testing.T) {
	var c cgrouptest.Cgroups
	boom := errors.New("boom")
	c.FailOpen(boom)
	if _, err := c.Open(context.Background(), "a@0", resources.Limits{}); !errors.Is(err, boom) {
		t.Fatalf("Open: %v", err)
	}
	c.FailOpen(nil)
	sg, err := c.Open(context.Background(), "a@0", resources.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	g := sg.(*cgrouptest.Group)
	g.Fail(cgrouptest.Kill, boom)
	if err := g.Kill(); !errors.Is(err, boom) || g.Kills() != 1 {
		t.Errorf("Kill: %v, kills %d", err, g.Kills())
	}
	g.Fail(cgrouptest.Kill, nil)
	if err := g.Kill(); err != nil {
		t.Errorf("Kill after clearing the failure: %v", err)
	}
	g.AddOOMKill(2)
	g.SetStats(resources.Stats{MemoryPeak: 42})
	if n, _ := g.OOMKills(); n != 2 {
		t.Errorf("OOMKills = %d", n)
	}
	if st, _ := g.Stats(); st.OOMKills != 2 || st.MemoryPeak != 42 {
		t.Errorf("Stats = %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Open(ctx, "b@0", resources.Limits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v", err)
	}
}
