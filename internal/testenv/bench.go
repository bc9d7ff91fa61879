package testenv

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ReportQuantiles reports the median and p90 of samples in milliseconds as
// benchmark metrics named ms-median-WHAT and ms-p90-WHAT, and the count.
// Latency benchmarks report quantiles, not the mean ns/op, because a few
// slow samples (a GC, the other core busy) say nothing about the median.
func ReportQuantiles(b *testing.B, samples []time.Duration, what string) {
	b.Helper()
	if len(samples) == 0 {
		b.Fatal("no samples")
	}
	d := slices.Clone(samples)
	slices.Sort(d)
	q := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "ms-median-"+what)
	b.ReportMetric(q(0.9), "ms-p90-"+what)
	b.ReportMetric(float64(len(d)), "samples")
}

// ExitToStartGaps reads a stamp file of the C worker (bench/cworker), which
// writes "start NS" at its first instruction and "exit NS" before _exit,
// and returns the time from each exit to the next start: how long a
// crashed worker stayed down.
func ExitToStartGaps(b *testing.B, path string) []time.Duration {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var gaps []time.Duration
	var lastExit int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		what, ns, _ := strings.Cut(sc.Text(), " ")
		v, _ := strconv.ParseInt(ns, 10, 64)
		switch what {
		case "exit":
			lastExit = v
		case "start":
			if lastExit != 0 {
				gaps = append(gaps, time.Duration(v-lastExit))
			}
		}
	}
	return gaps
}
