package health

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestProbeStats_Histogram(t *testing.T) {
	s := newProbeStats(validCheck(RoleReadiness, TypeHTTP))
	for _, r := range []Result{
		{Outcome: OutcomeSuccess, Duration: 300 * time.Microsecond, Message: "a"},
		{Outcome: OutcomeSuccess, Duration: time.Millisecond, Message: "b"}, // on a bound: counted at it
		{Outcome: OutcomeTimeout, Duration: 2 * time.Second, Message: "c"},
		{Outcome: OutcomeError, Duration: 20 * time.Second, Message: "d"}, // above the last bound
	} {
		s.add(r, 7)
	}
	ps := s.snapshot()
	if ps.Role != RoleReadiness || ps.Type != TypeHTTP || ps.ConsecutiveFailures != 7 || ps.LastMessage != "d" {
		t.Fatalf("stats %+v", ps)
	}
	wantResults := map[string]uint64{"success": 2, "failure": 0, "timeout": 1, "error": 1}
	for k, v := range wantResults {
		if ps.Results[k] != v {
			t.Errorf("Results[%s] = %d, want %d", k, ps.Results[k], v)
		}
	}
	if len(ps.Results) != len(wantResults) {
		t.Errorf("Results %v, want exactly %v", ps.Results, wantResults)
	}
	h := ps.Latency
	if h.Count != 4 || h.Sum != 22.0013 {
		t.Errorf("count %d sum %v, want 4 and 22.0013", h.Count, h.Sum)
	}
	for le, want := range map[float64]uint64{0.0005: 1, 0.001: 2, 0.0025: 2, 1: 2, 2.5: 3, 10: 3} {
		if h.Buckets[le] != want {
			t.Errorf("bucket le=%v: %d, want %d", le, h.Buckets[le], want)
		}
	}
	if len(h.Buckets) != len(LatencyBuckets) {
		t.Errorf("%d buckets, want %d", len(h.Buckets), len(LatencyBuckets))
	}

	// The shape metrics need: a const histogram takes it as is.
	desc := prometheus.NewDesc("glmd_health_probe_duration_seconds", "test", nil, nil)
	var m dto.Metric
	if err := prometheus.MustNewConstHistogram(desc, h.Count, h.Sum, h.Buckets).Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetHistogram().GetSampleCount(); got != 4 {
		t.Fatalf("const histogram count %d", got)
	}
}
