package metrics

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// states lists every instance state, in the order of the state machine.
// glmd_instance_state has a series for each, 1 for the current one, so that
// an alert on state="failed" sees a 0 before it sees a 1.
var states = []string{"pending", "starting", "running", "stopping", "stopped", "backoff", "exited", "failed"}

// knownExitReasons lists the reasons glmd_instance_exits_total always
// reports, at 0 until the first such exit, so that increase() counts that
// first exit.
var knownExitReasons = []string{"exited", "signal", "oom_killed", "unhealthy", "stopped"}

var (
	instanceStateDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "instance", "state"),
		"Whether a task instance is in a state (1) or not (0); one series per state.",
		[]string{"task", "instance", "state"}, nil,
	)
	instanceReadyDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "instance", "ready"),
		"Whether a task instance passes its readiness checks (1) or not (0).",
		[]string{"task", "instance"}, nil,
	)
	instanceRestartsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "instance", "restarts_total"),
		"Times glmd restarted a task instance.",
		[]string{"task", "instance"}, nil,
	)
	instanceExitsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "instance", "exits_total"),
		"Exits of a task instance's process, by reason (exited, signal, oom_killed, unhealthy, stopped).",
		[]string{"task", "instance", "reason"}, nil,
	)
	instanceUptimeDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "instance", "uptime_seconds"),
		"Time since a task instance's process started; 0 when it has none.",
		[]string{"task", "instance"}, nil,
	)
)

// instanceCollector reports the state of each task instance.
type instanceCollector struct{}

func (instanceCollector) describe(ch chan<- *prometheus.Desc) {
	ch <- instanceStateDesc
	ch <- instanceReadyDesc
	ch <- instanceRestartsDesc
	ch <- instanceExitsDesc
	ch <- instanceUptimeDesc
}

func (instanceCollector) collect(src Source, now time.Time, ch chan<- prometheus.Metric) error {
	var errs []error
	seen := make(map[instanceKey]bool)
	for _, in := range src.Instances() {
		key := instanceKey{in.Task, in.Instance}
		if seen[key] {
			// Sending it again would fail the whole scrape.
			errs = append(errs, fmt.Errorf("instance %s:%d reported twice, the second one is left out", in.Task, in.Instance))
			continue
		}
		seen[key] = true
		task, i := in.Task, strconv.Itoa(in.Instance)

		known := false
		for _, s := range states {
			known = known || s == in.State
			ch <- prometheus.MustNewConstMetric(instanceStateDesc, prometheus.GaugeValue, boolValue(s == in.State), task, i, s)
		}
		if !known {
			// A state this list does not know yet still shows up.
			ch <- prometheus.MustNewConstMetric(instanceStateDesc, prometheus.GaugeValue, 1, task, i, in.State)
		}
		ch <- prometheus.MustNewConstMetric(instanceReadyDesc, prometheus.GaugeValue, boolValue(in.Ready), task, i)
		ch <- prometheus.MustNewConstMetric(instanceRestartsDesc, prometheus.CounterValue, float64(in.Restarts), task, i)
		for _, reason := range exitReasons(in.Exits) {
			ch <- prometheus.MustNewConstMetric(instanceExitsDesc, prometheus.CounterValue, float64(in.Exits[reason]), task, i, reason)
		}
		uptime := 0.0
		if !in.StartedAt.IsZero() {
			uptime = max(now.Sub(in.StartedAt).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(instanceUptimeDesc, prometheus.GaugeValue, uptime, task, i)
	}
	return errors.Join(errs...)
}

type instanceKey struct {
	task     string
	instance int
}

// exitReasons returns knownExitReasons followed by any other reason in exits.
func exitReasons(exits map[string]int) []string {
	out := slices.Clone(knownExitReasons)
	for _, r := range slices.Sorted(maps.Keys(exits)) {
		if !slices.Contains(knownExitReasons, r) {
			out = append(out, r)
		}
	}
	return out
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
