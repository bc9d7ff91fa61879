package tasklog

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var floodMiB = flag.Int("tasklog.flood", 1024, "MiB that BenchmarkFlood's worker writes per run")

// BenchmarkFlood measures one worker flooding stdout with 128-byte lines
// into its log file, rotated at 64 MiB with 2 files kept (rotation, retention
// and the tail at work): MiB/s into the file from the worker's start until
// Close returned with everything written, the agent's CPU (user+system of this
// process, getrusage RUSAGE_SELF: not the worker's) and context switches per
// MiB written, and what was dropped because the writer fell behind. "max" lets the worker write as fast as the pipe
// takes it; "1GiBps" paces it to 1 GiB/s, the target rate.
func BenchmarkFlood(b *testing.B) {
	for _, bc := range []struct {
		name string
		rate int // MiB/s, 0: as fast as it goes
	}{{"max", 0}, {"1GiBps", 1024}} {
		b.Run(bc.name, func(b *testing.B) { benchmarkFlood(b, bc.rate) })
	}
}

func benchmarkFlood(b *testing.B, rate int) {
	const line = 128
	total := int64(*floodMiB) << 20
	dir := b.TempDir()
	var wall, cpu time.Duration
	var written, dropped uint64
	var switches int64
	for n := 0; n < b.N; n++ {
		inst, err := Open(dir, "flood", n, Options{MaxSize: 64 << 20, MaxFiles: 2})
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		cmd.Env = []string{
			childEnv + "=blast",
			fmt.Sprintf("FLOOD_BYTES=%d", total),
			fmt.Sprintf("FLOOD_LINE=%d", line),
			fmt.Sprintf("FLOOD_RATE=%d", rate),
		}
		cmd.Stdout = inst.Stdout()
		cpu0, sw0 := usage(b)
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("flood worker: %v", err)
		}
		if err := inst.Close(); err != nil {
			b.Fatal(err)
		}
		wall += time.Since(t0)
		cpu1, sw1 := usage(b)
		cpu += cpu1 - cpu0
		switches += sw1 - sw0
		st := inst.Stats().Stdout
		written += st.Bytes
		dropped += st.DroppedBytes
		if tail := inst.Tail(Stdout, 1); len(tail) != line {
			b.Fatalf("tail of %d bytes, want one line", len(tail))
		}
		if err := os.RemoveAll(filepath.Join(dir, "flood")); err != nil {
			b.Fatal(err)
		}
	}
	mib := float64(written) / (1 << 20)
	b.ReportMetric(mib/wall.Seconds(), "MiB/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/mib, "agent-ms/MiB")
	b.ReportMetric(float64(switches)/mib, "agent-ctxsw/MiB")
	b.ReportMetric(float64(dropped)/(1<<20)/float64(b.N), "dropped-MiB/op")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleInstances opens 500 instances whose workers printed one line
// on each stream and then went quiet, and measures what each costs: Go heap,
// goroutine stacks, resident memory and goroutines per instance, and the
// agent's CPU time and context switches (wake-ups) during one idle second,
// next to the same second measured before the instances were opened.
func BenchmarkIdleInstances(b *testing.B) {
	const n = 500
	dir := b.TempDir()
	var heap, stack, rss, gor, idleCPU, idleWake, baseCPU, baseWake float64
	for range b.N {
		// Return what earlier benchmarks left to the OS now, so that the
		// runtime's scavenger does not do it during the measurements.
		runtime.GC()
		debug.FreeOSMemory()
		time.Sleep(time.Second)
		cpu0, wake0 := usage(b)
		time.Sleep(time.Second)
		cpu1, wake1 := usage(b)
		baseCPU += float64((cpu1 - cpu0).Microseconds()) / 1000
		baseWake += float64(wake1 - wake0)

		m0, rss0, g0 := memStats(b)
		insts := make([]*Instance, n)
		for k := range insts {
			inst, err := Open(dir, "idle", k, Options{})
			if err != nil {
				b.Fatal(err)
			}
			insts[k] = inst
			inst.Stdout().Write([]byte("worker started, listening on :8000\n"))
			inst.Stderr().Write([]byte("warning: something a worker says at start\n"))
		}
		for _, inst := range insts {
			for inst.Stats().Stderr.Bytes == 0 || inst.Stats().Stdout.Bytes == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		// Two collections empty the read buffer pools (shared, not per
		// instance), the second one also returns memory to the OS.
		runtime.GC()
		debug.FreeOSMemory()
		m1, rss1, g1 := memStats(b)
		// Let the mills of Open and the runtime's scavenger settle.
		time.Sleep(time.Second)
		cpu0, wake0 = usage(b)
		time.Sleep(time.Second)
		cpu1, wake1 = usage(b)
		idleCPU += float64((cpu1 - cpu0).Microseconds()) / 1000
		idleWake += float64(wake1 - wake0)
		heap += float64(m1.HeapAlloc-m0.HeapAlloc) / n
		stack += float64(m1.StackInuse-m0.StackInuse) / n
		rss += float64(rss1-rss0) / n
		gor += float64(g1-g0) / n
		for _, inst := range insts {
			if err := inst.Close(); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.RemoveAll(filepath.Join(dir, "idle")); err != nil {
			b.Fatal(err)
		}
	}
	N := float64(b.N)
	b.ReportMetric(heap/N, "heap-B/instance")
	b.ReportMetric(stack/N, "stack-B/instance")
	b.ReportMetric(rss/N, "rss-B/instance")
	b.ReportMetric(gor/N, "goroutines/instance")
	b.ReportMetric(idleCPU/N, "idle-cpu-ms/s")
	b.ReportMetric(idleWake/N, "idle-ctxsw/s")
	b.ReportMetric(baseCPU/N, "base-cpu-ms/s")
	b.ReportMetric(baseWake/N, "base-ctxsw/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkOpen1000 opens 1000 instances of one task in a fresh log
// directory, as the agent does at its start, and measures what the caller of
// Open waits (open-µs/instance); then each instance gets a line on stdout and
// one on stderr, and ready-µs/instance is the time from the first Open until
// every line is in its file. cpu-µs/instance is the agent's CPU (this
// process, getrusage) from the first Open until every instance was closed,
// background retention included.
func BenchmarkOpen1000(b *testing.B) {
	const n = 1000
	var open, ready, cpu time.Duration
	for range b.N {
		dir := b.TempDir()
		insts := make([]*Instance, n)
		cpu0, _ := usage(b)
		t0 := time.Now()
		for k := range insts {
			inst, err := Open(dir, "job", k, Options{})
			if err != nil {
				b.Fatal(err)
			}
			insts[k] = inst
		}
		open += time.Since(t0)
		for _, inst := range insts {
			inst.Stdout().Write([]byte("worker started, listening on :8000\n"))
			inst.Stderr().Write([]byte("warning: something a worker says at start\n"))
		}
		for _, inst := range insts {
			for inst.Stats().Stderr.Bytes == 0 || inst.Stats().Stdout.Bytes == 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
		ready += time.Since(t0)
		for _, inst := range insts {
			for _, s := range []Stream{Stdout, Stderr} {
				if _, err := os.Stat(inst.Path(s)); err != nil {
					b.Fatal(err)
				}
			}
			if err := inst.Close(); err != nil {
				b.Fatal(err)
			}
		}
		cpu1, _ := usage(b)
		cpu += cpu1 - cpu0
		if err := os.RemoveAll(filepath.Join(dir, "job")); err != nil {
			b.Fatal(err)
		}
	}
	per := float64(b.N * n)
	b.ReportMetric(float64(open.Microseconds())/per, "open-µs/instance")
	b.ReportMetric(float64(ready.Microseconds())/per, "ready-µs/instance")
	b.ReportMetric(float64(cpu.Microseconds())/per, "cpu-µs/instance")
	b.ReportMetric(0, "ns/op")
}

// usage returns this process's CPU time and context switches (voluntary and
// not) so far.
func usage(b *testing.B) (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw
}

func memStats(b *testing.B) (runtime.MemStats, int64, int) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(statm))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return m, pages * int64(os.Getpagesize()), runtime.NumGoroutine()
}
