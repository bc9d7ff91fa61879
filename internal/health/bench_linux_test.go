package health

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

var benchInstances = flag.Int("health.instances", 1000, "instances BenchmarkFleet probes")

// BenchmarkFleet probes -health.instances instances (1,000), each with an
// HTTP liveness check every second, each instance its own port served by a
// child process (the test binary in server mode), so that this process's
// rusage is the probing side only. The monitors start spread over one
// interval, as instances of a real host do. After a 2 s warm-up it measures
// b.N seconds (run with -benchtime=10x for 10 s) and reports:
//
//   - cpu-%core: this process's user+system CPU (getrusage RUSAGE_SELF) per
//     wall second, in % of one core;
//   - probe-p50-µs, probe-p99-µs: the duration of the probes (request,
//     answer, body drained), as the monitors measured them;
//   - bare-p50-µs: the median of a bare keep-alive GET loop on one of the
//     same servers before the monitors start, and overhead-p50-µs, the
//     difference;
//   - bare-loaded-p50-µs: the same loop right after the measurement, the
//     monitors still running;
//   - cpu-µs/probe and bare-cpu-µs/req: CPU per probe, and per request of
//     the bare loop (the floor for a net/http request on this machine);
//   - goroutines: of this process, while probing.
func BenchmarkFleet(b *testing.B) {
	n := *benchInstances
	addrs := startServers(b, n)
	bcpu0 := cpuTime(b)
	bare := bareLoop(b, addrs[0], 2000)
	bareCPU := (cpuTime(b) - bcpu0) / 2010

	tr := NewTransport()
	defer tr.CloseIdleConnections()
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	var watches sync.WaitGroup
	defer func() {
		cancel()
		watches.Wait()
	}()
	monitors := make([]*Monitor, n)
	for i, addr := range addrs {
		c := Check{
			Role: RoleLiveness, Type: TypeHTTP, Interval: time.Second, Timeout: 2 * time.Second,
			FailureThreshold: 3, SuccessThreshold: 1,
			HTTP: &HTTPCheck{URL: "http://" + addr + "/health"},
		}
		m, err := NewMonitor([]Check{c}, Deps{Transport: tr})
		if err != nil {
			b.Fatal(err)
		}
		m.probers[0] = timedProber{m.probers[0], rec}
		monitors[i] = m
		ch := m.Watch(ctx, i)
		watches.Go(func() {
			for v := range ch {
				if v.Unhealthy {
					b.Errorf("instance %d unhealthy: %s", i, v.Message)
				}
			}
		})
		time.Sleep(time.Second / time.Duration(n))
	}
	time.Sleep(2 * time.Second)

	rec.reset()
	cpu0 := cpuTime(b)
	t0 := time.Now()
	b.ResetTimer()
	for range b.N {
		time.Sleep(time.Second)
	}
	b.StopTimer()
	wall := time.Since(t0)
	cpu := cpuTime(b) - cpu0
	probes := rec.sorted()
	goroutines := runtime.NumGoroutine()
	loaded := bareLoop(b, addrs[0], 500)

	var failed uint64
	for _, m := range monitors {
		st := m.Stats()[0]
		failed += st.Results["failure"] + st.Results["timeout"] + st.Results["error"]
	}
	if failed > 0 || len(probes) == 0 {
		b.Fatalf("%d probes, %d failed", len(probes), failed)
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%core")
	b.ReportMetric(float64(len(probes))/wall.Seconds(), "probes/s")
	b.ReportMetric(us(pct(probes, 50)), "probe-p50-µs")
	b.ReportMetric(us(pct(probes, 99)), "probe-p99-µs")
	b.ReportMetric(us(pct(bare, 50)), "bare-p50-µs")
	b.ReportMetric(us(pct(probes, 50)-pct(bare, 50)), "overhead-p50-µs")
	b.ReportMetric(us(pct(loaded, 50)), "bare-loaded-p50-µs")
	b.ReportMetric(us(cpu/time.Duration(len(probes))), "cpu-µs/probe")
	b.ReportMetric(us(bareCPU), "bare-cpu-µs/req")
	b.ReportMetric(float64(goroutines), "goroutines")
}

// timedProber records how long each probe takes.
type timedProber struct {
	prober
	rec *recorder
}

func (p timedProber) probe(ctx context.Context) (Outcome, string) {
	t0 := time.Now()
	o, d := p.prober.probe(ctx)
	p.rec.add(time.Since(t0))
	return o, d
}

type recorder struct {
	mu sync.Mutex
	d  []time.Duration
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.d = r.d[:0]
	r.mu.Unlock()
}

func (r *recorder) sorted() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := slices.Clone(r.d)
	slices.Sort(d)
	return d
}

// pct is the p-th percentile of sorted durations.
func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[(len(sorted)-1)*p/100]
}

// bareLoop times n sequential keep-alive GETs of /health on addr, sorted.
func bareLoop(b *testing.B, addr string, n int) []time.Duration {
	tr := NewTransport()
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	d := make([]time.Duration, 0, n)
	for i := range n + 10 {
		t0 := time.Now()
		resp, err := client.Get("http://" + addr + "/health")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if i >= 10 { // the first ones open the connection
			d = append(d, time.Since(t0))
		}
	}
	slices.Sort(d)
	return d
}

// startServers starts the test binary as a child serving /health on n
// ports and returns their addresses; the child ends with the benchmark.
func startServers(b *testing.B, n int) []string {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), childEnv+"=serve", fmt.Sprintf("SERVE_PORTS=%d", n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close() // the child returns at the end of its stdin
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	var addrs []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		addrs = append(addrs, sc.Text())
	}
	if len(addrs) != n {
		b.Fatalf("server child gave %d addresses, want %d: %v", len(addrs), n, sc.Err())
	}
	return addrs
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
