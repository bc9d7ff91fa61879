package metrics

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// probeOutcomes are reported for every probe, 0 until they happen, so
// that rate() works from the first one.
var probeOutcomes = []string{"success", "failure", "timeout", "error"}

var (
	probeLabels      = []string{"task", "instance", "role"}
	probeResultsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "probe", "results_total"),
		"Health probe results of a task instance, by role and outcome (success, failure, timeout, error).",
		[]string{"task", "instance", "role", "outcome"}, nil,
	)
	probeDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "probe", "duration_seconds"),
		"How long a task instance's health probes took, by role.",
		probeLabels, nil,
	)
	probeFailuresDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "probe", "consecutive_failures"),
		"Failures in a row of a task instance's health probe; 0 after a success.",
		probeLabels, nil,
	)
)

// probeCollector reports the instances' health probes.
type probeCollector struct{}

func (probeCollector) describe(ch chan<- *prometheus.Desc) {
	ch <- probeResultsDesc
	ch <- probeDurationDesc
	ch <- probeFailuresDesc
}

func (probeCollector) collect(src Source, _ time.Time, ch chan<- prometheus.Metric) error {
	var errs []error
	seen := map[string]bool{}
	for _, in := range src.Instances() {
		i := strconv.Itoa(in.Instance)
		for _, p := range in.Probes {
			key := in.Task + ":" + i + ":" + p.Role
			if seen[key] {
				errs = append(errs, fmt.Errorf("probe %s of %s:%d reported twice, the second one is left out", p.Role, in.Task, in.Instance))
				continue
			}
			seen[key] = true
			outcomes := append([]string(nil), probeOutcomes...)
			for o := range p.Results {
				if !slices.Contains(outcomes, o) {
					outcomes = append(outcomes, o)
				}
			}
			sort.Strings(outcomes[len(probeOutcomes):])
			for _, o := range outcomes {
				ch <- prometheus.MustNewConstMetric(probeResultsDesc, prometheus.CounterValue, float64(p.Results[o]), in.Task, i, p.Role, o)
			}
			ch <- prometheus.MustNewConstHistogram(probeDurationDesc, p.LatencyCount, p.LatencySum, p.LatencyBuckets, in.Task, i, p.Role)
			ch <- prometheus.MustNewConstMetric(probeFailuresDesc, prometheus.GaugeValue, float64(p.ConsecutiveFailures), in.Task, i, p.Role)
		}
	}
	return errors.Join(errs...)
}
