package testenv

import (
	"slices"
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
