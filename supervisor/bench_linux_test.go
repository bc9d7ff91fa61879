package supervisor

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/testenv"
)

// BenchmarkCrashToRestart measures how long a crashed worker stays down
// with restart delay 0: from the C worker's last instruction before _exit
// to the first instruction of its replacement (CLOCK_MONOTONIC stamps the
// workers write themselves). Reported as the median and p90 of 300 crashes.
func BenchmarkCrashToRestart(b *testing.B) {
	bin := testenv.CWorker(b)
	l, err := NewOSLauncher(slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	const crashes = 300
	out := filepath.Join(b.TempDir(), "stamps")
	var all []time.Duration
	for b.Loop() {
		os.Remove(out)
		r := NewRunner(Spec{
			Command:     Command{Task: "crashbench", Argv: []string{bin, "crash"}, Env: []string{"BENCH_OUT=" + out}, Umask: -1},
			Restart:     RestartPolicy{Policy: "always", MaxDelay: time.Second, Limit: crashes, Window: time.Hour},
			StopSignal:  syscall.SIGTERM,
			StopTimeout: time.Second,
		}, Options{Launcher: l, Log: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		go r.Run(ctx)
		r.Start(ctx)
		// Limit makes it give up after `crashes` restarts.
		for r.Status().State != StateFailed {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-r.Done()
		all = append(all, testenv.ExitToStartGaps(b, out)...)
	}
	testenv.ReportQuantiles(b, all, "restart")
}

// BenchmarkCrashToRestartFloor is the same measurement for the least any Go
// supervisor can do: a loop of ForkExec and Wait4, no reaper, no state
// machine, no logs. The difference to BenchmarkCrashToRestart is glmd's cost.
func BenchmarkCrashToRestartFloor(b *testing.B) {
	bin := testenv.CWorker(b)
	const crashes = 300
	out := filepath.Join(b.TempDir(), "stamps")
	var all []time.Duration
	for b.Loop() {
		os.Remove(out)
		attr := &syscall.ProcAttr{Env: []string{"BENCH_OUT=" + out}, Files: []uintptr{0, 1, 2}}
		for range crashes {
			pid, err := syscall.ForkExec(bin, []string{bin, "crash"}, attr)
			if err != nil {
				b.Fatal(err)
			}
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
		all = append(all, testenv.ExitToStartGaps(b, out)...)
	}
	testenv.ReportQuantiles(b, all, "restart")
}
