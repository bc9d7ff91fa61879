package supervisor_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/cgroup"
	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/internal/testenv"
	"github.com/open-autoglm/glmd/supervisor"
)

// BenchmarkCrashToRestartCgroup is BenchmarkCrashToRestart with every run
// in the instance's cgroup (kept across restarts) with a memory limit, as
// the agent runs workers as root.
func BenchmarkCrashToRestartCgroup(b *testing.B) {
	testenv.RequireRoot(b)
	bin := testenv.CWorker(b)
	m, err := cgroup.New(cgroup.Options{Parent: testenv.CgroupParent(b)})
	if err != nil {
		testenv.Skip(b, "no cgroups: %v", err)
	}
	l, err := supervisor.NewOSLauncher(slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	const crashes = 300
	out := filepath.Join(b.TempDir(), "stamps")
	var all []time.Duration
	for b.Loop() {
		os.Remove(out)
		r := supervisor.NewRunner(supervisor.Spec{
			Command:     supervisor.Command{Task: "crashbench", Argv: []string{bin, "crash"}, Env: []string{"BENCH_OUT=" + out}, Umask: -1},
			Restart:     supervisor.RestartPolicy{Policy: "always", MaxDelay: time.Second, Limit: crashes, Window: time.Hour},
			StopSignal:  syscall.SIGTERM,
			StopTimeout: time.Second,
			Resources:   resources.Limits{MemoryMax: 256 << 20},
		}, supervisor.Options{Launcher: l, Cgroups: m, Log: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		go r.Run(ctx)
		r.Start(ctx)
		for r.Status().State != supervisor.StateFailed {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-r.Done()
		all = append(all, testenv.ExitToStartGaps(b, out)...)
	}
	m.Wait(context.Background())
	testenv.ReportQuantiles(b, all, "restart")
}
