package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var instanceLabels = []string{"task", "instance"}

// cgroupMetric is one series read from an instance's cgroup.
type cgroupMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(in Instance) float64
}

func cgroupDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "instance", name), help, instanceLabels, nil)
}

var cgroupMetrics = []cgroupMetric{
	{cgroupDesc("cpu_seconds_total", "CPU time a task instance's cgroup used."), prometheus.CounterValue,
		func(in Instance) float64 { return in.Resources.CPU.Seconds() }},
	{cgroupDesc("cpu_throttled_seconds_total", "Time the CPU limit held a task instance back."), prometheus.CounterValue,
		func(in Instance) float64 { return in.Resources.CPUThrottled.Seconds() }},
	{cgroupDesc("memory_bytes", "Memory a task instance's cgroup uses now."), prometheus.GaugeValue,
		func(in Instance) float64 { return float64(in.Resources.MemoryCurrent) }},
	{cgroupDesc("memory_peak_bytes", "Most memory a task instance's cgroup used at once."), prometheus.GaugeValue,
		func(in Instance) float64 { return float64(in.Resources.MemoryPeak) }},
	{cgroupDesc("pids", "Processes and threads in a task instance's cgroup."), prometheus.GaugeValue,
		func(in Instance) float64 { return float64(in.Resources.Pids) }},
	{cgroupDesc("io_read_bytes_total", "Bytes a task instance's cgroup read from block devices."), prometheus.CounterValue,
		func(in Instance) float64 { return float64(in.Resources.IOReadBytes) }},
	{cgroupDesc("io_write_bytes_total", "Bytes a task instance's cgroup wrote to block devices."), prometheus.CounterValue,
		func(in Instance) float64 { return float64(in.Resources.IOWriteBytes) }},
	{cgroupDesc("oom_kills_total", "Processes the kernel's OOM killer ended in a task instance's cgroup."), prometheus.CounterValue,
		func(in Instance) float64 { return float64(in.Resources.OOMKills) }},
}

// cgroupCollector reports what each instance's cgroup used, for the
// instances that have one.
type cgroupCollector struct{}

func (cgroupCollector) describe(ch chan<- *prometheus.Desc) {
	for _, m := range cgroupMetrics {
		ch <- m.desc
	}
}

func (cgroupCollector) collect(src Source, _ time.Time, ch chan<- prometheus.Metric) error {
	var errs []error
	seen := map[string]bool{}
	for _, in := range src.Instances() {
		if in.Resources == nil {
			continue
		}
		i := strconv.Itoa(in.Instance)
		if key := in.Task + ":" + i; seen[key] {
			errs = append(errs, fmt.Errorf("instance %s reported twice, the second one is left out", key))
			continue
		} else {
			seen[key] = true
		}
		for _, m := range cgroupMetrics {
			ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(in), in.Task, i)
		}
	}
	return errors.Join(errs...)
}
