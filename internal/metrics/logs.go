package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var logLabels = []string{"task", "instance", "stream"}

var (
	logBytesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "log", "bytes_total"),
		"Bytes of a task instance's output written to its log file, by stream.",
		logLabels, nil,
	)
	logRotationsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "log", "rotations_total"),
		"Log files of a task instance rotated, by size, age or on request, by stream.",
		logLabels, nil,
	)
	logDroppedBytesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "log", "dropped_bytes_total"),
		"Bytes of a task instance's output lost because the log writer could not keep up or could not write (disk full).",
		logLabels, nil,
	)
	logDroppedLinesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "log", "dropped_lines_total"),
		"Lines of a task instance's output lost because the log writer could not keep up or could not write (disk full).",
		logLabels, nil,
	)
)

// logCollector reports the log counters of each task instance's streams.
type logCollector struct{}

func (logCollector) describe(ch chan<- *prometheus.Desc) {
	ch <- logBytesDesc
	ch <- logRotationsDesc
	ch <- logDroppedBytesDesc
	ch <- logDroppedLinesDesc
}

func (logCollector) collect(src Source, _ time.Time, ch chan<- prometheus.Metric) error {
	var errs []error
	type key struct {
		task     string
		instance int
		stream   string
	}
	seen := make(map[key]bool)
	for _, in := range src.Instances() {
		i := strconv.Itoa(in.Instance)
		for _, l := range in.Logs {
			k := key{in.Task, in.Instance, l.Stream}
			if seen[k] {
				errs = append(errs, fmt.Errorf("log stream %s of %s:%d reported twice, the second one is left out", l.Stream, in.Task, in.Instance))
				continue
			}
			seen[k] = true
			for _, m := range []struct {
				desc *prometheus.Desc
				v    uint64
			}{
				{logBytesDesc, l.Bytes},
				{logRotationsDesc, l.Rotations},
				{logDroppedBytesDesc, l.DroppedBytes},
				{logDroppedLinesDesc, l.DroppedLines},
			} {
				ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.v), in.Task, i, l.Stream)
			}
		}
	}
	return errors.Join(errs...)
}
