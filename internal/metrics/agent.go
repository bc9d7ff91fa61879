package metrics

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// reloadResults lists the results glmd_reloads_total always reports, at 0
// until the first such reload.
var reloadResults = []string{"ok", "invalid", "error"}

var (
	reloadsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "", "reloads_total"),
		"Reloads of conf_dir by result: ok, invalid (some task files refused), error (conf_dir unreadable).",
		[]string{"result"}, nil,
	)
	taskFileInvalidDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "task_file", "invalid"),
		"1 for each task file the last reload refused; the task keeps its last good version. glmctl status names the error.",
		[]string{"file", "task"}, nil,
	)
	tasksDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "", "tasks"),
		"Tasks loaded.",
		nil, nil,
	)
)

// agentCollector reports agent-wide state: reloads and task files.
type agentCollector struct{}

func (agentCollector) describe(ch chan<- *prometheus.Desc) {
	ch <- reloadsDesc
	ch <- taskFileInvalidDesc
	ch <- tasksDesc
}

func (agentCollector) collect(src Source, _ time.Time, ch chan<- prometheus.Metric) error {
	a := src.AgentState()
	results := slices.Clone(reloadResults)
	for _, r := range slices.Sorted(maps.Keys(a.Reloads)) {
		if !slices.Contains(results, r) {
			results = append(results, r)
		}
	}
	for _, r := range results {
		ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(a.Reloads[r]), r)
	}

	var errs []error
	type key struct{ file, task string }
	seen := make(map[key]bool)
	for _, f := range a.InvalidFiles {
		k := key{f.File, f.Task}
		if seen[k] {
			errs = append(errs, fmt.Errorf("invalid task file %s (task %q) reported twice, the second one is left out", f.File, f.Task))
			continue
		}
		seen[k] = true
		ch <- prometheus.MustNewConstMetric(taskFileInvalidDesc, prometheus.GaugeValue, 1, f.File, f.Task)
	}
	ch <- prometheus.MustNewConstMetric(tasksDesc, prometheus.GaugeValue, float64(a.Tasks))
	return errors.Join(errs...)
}
