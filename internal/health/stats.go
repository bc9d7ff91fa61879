package health

import (
	"sort"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the probe latency
// histogram: from a loopback keep-alive request to a slow completion.
var LatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Histogram is a cumulative latency histogram in the shape
// prometheus.MustNewConstHistogram takes.
type Histogram struct {
	Count   uint64
	Sum     float64            // seconds
	Buckets map[float64]uint64 // upper bound (seconds) -> observations at or below it, cumulative
}

// ProbeStats is what one check of an instance has done since its Monitor was
// made, over all the processes it watched. Metrics read it at scrape time.
type ProbeStats struct {
	Role, Type string
	// Results counts probes by outcome ("success", "failure", "timeout",
	// "error"); every outcome is present, 0 until it happens.
	Results map[string]uint64
	// ConsecutiveFailures is the current number of failures in a row (of
	// the process being watched).
	ConsecutiveFailures int
	Latency             Histogram
	LastMessage         string // of the last probe; "" before the first
}

// probeStats accumulates one check's ProbeStats; the Monitor's lock guards it.
type probeStats struct {
	role, typ   string
	results     [4]uint64 // by outcomeIndex
	failures    int
	count       uint64
	sum         time.Duration
	buckets     []uint64 // per LatencyBuckets bound, not cumulative; the last one is +Inf
	lastMessage string
}

func newProbeStats(c Check) *probeStats {
	return &probeStats{role: c.Role, typ: c.Type, buckets: make([]uint64, len(LatencyBuckets)+1)}
}

func (s *probeStats) add(r Result, consecutiveFailures int) {
	if i := outcomeIndex(r.Outcome); i >= 0 {
		s.results[i]++
	}
	s.failures = consecutiveFailures
	s.count++
	s.sum += r.Duration
	s.buckets[sort.SearchFloat64s(LatencyBuckets, r.Duration.Seconds())]++
	s.lastMessage = r.Message
}

func (s *probeStats) snapshot() ProbeStats {
	ps := ProbeStats{
		Role:                s.role,
		Type:                s.typ,
		Results:             make(map[string]uint64, 4),
		ConsecutiveFailures: s.failures,
		Latency: Histogram{
			Count:   s.count,
			Sum:     s.sum.Seconds(),
			Buckets: make(map[float64]uint64, len(LatencyBuckets)),
		},
		LastMessage: s.lastMessage,
	}
	for _, o := range []Outcome{OutcomeSuccess, OutcomeFailure, OutcomeTimeout, OutcomeError} {
		ps.Results[string(o)] = s.results[outcomeIndex(o)]
	}
	var cum uint64
	for i, le := range LatencyBuckets {
		cum += s.buckets[i]
		ps.Latency.Buckets[le] = cum
	}
	return ps
}

// outcomeIndex is the position of o in probeStats.results; -1 for none.
func outcomeIndex(o Outcome) int {
	switch o {
	case OutcomeSuccess:
		return 0
	case OutcomeFailure:
		return 1
	case OutcomeTimeout:
		return 2
	case OutcomeError:
		return 3
	}
	return -1
}
