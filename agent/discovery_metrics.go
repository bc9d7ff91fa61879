package agent

import "github.com/prometheus/client_golang/prometheus"

// discoveryCollector says whether Consul can be reached and whether this
// node holds the scheduler role, read at scrape time.
type discoveryCollector struct {
	a                     *Agent
	enabled, up, leader   *prometheus.Desc
	suspended, registered *prometheus.Desc
}

func newDiscoveryCollector(a *Agent) *discoveryCollector {
	return &discoveryCollector{
		a:          a,
		enabled:    prometheus.NewDesc("glmd_discovery_enabled", "1 when glmd registers in Consul ([consul] enabled).", nil, nil),
		up:         prometheus.NewDesc("glmd_discovery_up", "1 when Consul answers; 0 while discovery is degraded (supervision goes on).", nil, nil),
		registered: prometheus.NewDesc("glmd_discovery_services", "Services glmd keeps registered in Consul (the node's and the instances').", nil, nil),
		leader:     prometheus.NewDesc("glmd_scheduler_leader", "1 while this node holds the fleet's scheduler role and acts on it.", nil, nil),
		suspended:  prometheus.NewDesc("glmd_scheduler_suspended", "1 while this node's leadership is suspended (it cannot confirm it with Consul).", nil, nil),
	}
}

func (c *discoveryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.enabled, c.up, c.registered, c.leader, c.suspended} {
		ch <- d
	}
}

func (c *discoveryCollector) Collect(ch chan<- prometheus.Metric) {
	h, l := c.a.disc.Health(), c.a.disc.Leader()
	gauge := func(d *prometheus.Desc, on bool) {
		v := 0.0
		if on {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(c.enabled, h.Enabled)
	gauge(c.up, !h.Enabled || h.OK)
	ch <- prometheus.MustNewConstMetric(c.registered, prometheus.GaugeValue, float64(h.Services))
	gauge(c.leader, l.Self && !l.Suspended)
	gauge(c.suspended, l.Suspended)
}
