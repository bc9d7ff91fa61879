package gpu

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// gpuLabels are on every per-GPU series.
var gpuLabels = []string{"gpu", "uuid", "pci_bus_id", "model"}

func gpuDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string{}, gpuLabels...), extra...), nil)
}

// collector computes the GPU series at scrape time from the Pool's last
// sample and health, so that nothing goes stale and a scrape never
// touches the driver.
type collector struct {
	p *Pool

	info, memTotal, memUsed, memFree, util, memUtil, temp, power, energy *prometheus.Desc
	xids, lastXID, health, allocated, stray, remapPending, remapFailed   *prometheus.Desc
	callErrors                                                           *prometheus.Desc
}

// Collector returns a prometheus.Collector of the Pool's GPUs (names per
// DCGM fields, SI units). Values the driver does not answer (-1) and
// sample values before the first sample are left out.
func (p *Pool) Collector() prometheus.Collector {
	return &collector{
		p:            p,
		info:         gpuDesc("glmd_gpu_info", "A GPU of the host; always 1.", "numa_node", "driver_version"),
		memTotal:     gpuDesc("glmd_gpu_memory_total_bytes", "GPU memory in total."),
		memUsed:      gpuDesc("glmd_gpu_memory_used_bytes", "GPU memory in use, by any process."),
		memFree:      gpuDesc("glmd_gpu_memory_free_bytes", "GPU memory free (total - used)."),
		util:         gpuDesc("glmd_gpu_utilization_ratio", "Share of time a kernel ran (0..1)."),
		memUtil:      gpuDesc("glmd_gpu_memory_bandwidth_utilization_ratio", "Share of time memory was read or written (0..1)."),
		temp:         gpuDesc("glmd_gpu_temperature_celsius", "GPU temperature.", "sensor"),
		power:        gpuDesc("glmd_gpu_power_watts", "Power draw."),
		energy:       gpuDesc("glmd_gpu_energy_joules_total", "Energy used since the driver loaded."),
		xids:         gpuDesc("glmd_gpu_xid_errors_total", "XID errors since glmd started, by XID and the action taken.", "xid", "action"),
		lastXID:      gpuDesc("glmd_gpu_last_xid", "The last XID seen on the GPU since glmd started."),
		health:       gpuDesc("glmd_gpu_health_state", "GPU health, one-hot over the states.", "state"),
		allocated:    gpuDesc("glmd_gpu_allocated", "1 for each task instance holding the GPU.", "task", "instance"),
		stray:        gpuDesc("glmd_gpu_stray_memory_bytes", "GPU memory held by processes of no task instance."),
		remapPending: gpuDesc("glmd_gpu_row_remap_pending", "1 when row remapping waits for a GPU reset."),
		remapFailed:  gpuDesc("glmd_gpu_row_remap_failed", "1 when row remapping failed: the GPU needs replacing."),
		callErrors: prometheus.NewDesc("glmd_gpu_nvml_call_errors_total", "Failed NVML calls, by call and return code.",
			[]string{"call", "code"}, nil),
	}
}

// Describe sends every descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.memTotal, c.memUsed, c.memFree, c.util, c.memUtil, c.temp,
		c.power, c.energy, c.xids, c.lastXID, c.health, c.allocated, c.stray, c.remapPending, c.remapFailed, c.callErrors} {
		ch <- d
	}
}

// Collect emits the series of every GPU.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.p.Status() {
		d := s.Device
		l := []string{strconv.Itoa(d.Index), d.UUID, d.PCIBusID, d.Name}
		gauge := func(desc *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, append(l, extra...)...)
		}
		node := ""
		if d.NUMANode >= 0 {
			node = strconv.Itoa(d.NUMANode)
		}
		gauge(c.info, 1, node, c.p.driverVersion)
		gauge(c.memTotal, float64(d.Memory))
		for _, h := range Healths {
			gauge(c.health, b2f(s.Health == h), string(h))
		}
		for _, o := range s.Holders {
			gauge(c.allocated, 1, o.Task, strconv.Itoa(o.Instance))
		}
		for _, x := range s.XIDs {
			ch <- prometheus.MustNewConstMetric(c.xids, prometheus.CounterValue, float64(x.Count),
				append(l, strconv.Itoa(x.XID), string(x.Action))...)
		}
		if s.LastXID != 0 {
			gauge(c.lastXID, float64(s.LastXID))
		}
		var stray int64
		for _, pr := range s.Strays {
			stray += max(pr.Memory, 0)
		}
		gauge(c.stray, float64(stray))
		if s.SampledAt.IsZero() {
			continue
		}
		x := s.Sample
		if x.MemoryUsed >= 0 {
			gauge(c.memUsed, float64(x.MemoryUsed))
			gauge(c.memFree, float64(d.Memory-x.MemoryUsed))
		}
		for _, m := range []struct {
			desc  *prometheus.Desc
			v     float64
			extra []string
		}{
			{c.util, x.Utilization, nil},
			{c.memUtil, x.MemoryUtil, nil},
			{c.temp, x.Temperature, []string{"gpu"}},
			{c.power, x.Power, nil},
		} {
			if m.v >= 0 {
				gauge(m.desc, m.v, m.extra...)
			}
		}
		if x.Energy >= 0 {
			ch <- prometheus.MustNewConstMetric(c.energy, prometheus.CounterValue, x.Energy, l...)
		}
		gauge(c.remapPending, b2f(x.RemapPending))
		gauge(c.remapFailed, b2f(x.RemapFailed))
	}
	if cc, ok := c.p.inv.(CallErrorCounter); ok {
		for k, n := range cc.CallErrors() {
			ch <- prometheus.MustNewConstMetric(c.callErrors, prometheus.CounterValue, float64(n), k.Call, k.Code)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
