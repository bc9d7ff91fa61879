package metrics

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "glmd"

// subCollector is one part of glmd's state, reported with its own
// glmd_scrape_collector_success (node_exporter's Collector.Update).
type subCollector interface {
	describe(ch chan<- *prometheus.Desc)
	// collect sends the part's metrics read from src. An error makes
	// the part's success 0; what was sent before it is kept.
	collect(src Source, now time.Time, ch chan<- prometheus.Metric) error
}

var (
	scrapeDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "scrape", "collector_duration_seconds"),
		"Time a glmd collector took to read its part of the state during this scrape.",
		[]string{"collector"}, nil,
	)
	scrapeSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "scrape", "collector_success"),
		"Whether a glmd collector read its part of the state during this scrape (1) or failed (0).",
		[]string{"collector"}, nil,
	)
	buildInfoDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "", "build_info"),
		"Always 1; the labels say which glmd build runs.",
		[]string{"version", "commit", "goversion"}, nil,
	)
)

// collector is the prometheus.Collector over all of glmd's parts.
type collector struct {
	src       Source
	now       func() time.Time
	log       *slog.Logger
	buildInfo prometheus.Metric
	parts     []part
}

type part struct {
	name string
	c    subCollector
}

func newCollector(src Source, version, commit string, now func() time.Time, log *slog.Logger) *collector {
	if commit == "" {
		commit = "unknown"
	}
	return &collector{
		src:       src,
		now:       now,
		log:       log,
		buildInfo: prometheus.MustNewConstMetric(buildInfoDesc, prometheus.GaugeValue, 1, version, commit, runtime.Version()),
		parts: []part{
			{"instances", instanceCollector{}},
			{"logs", logCollector{}},
			{"cgroups", cgroupCollector{}},
			{"probes", probeCollector{}},
			{"agent", agentCollector{}},
		},
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- scrapeDurationDesc
	ch <- scrapeSuccessDesc
	ch <- buildInfoDesc
	for _, p := range c.parts {
		p.c.describe(ch)
	}
}

// Collect implements prometheus.Collector. The parts run one after the
// other: each is a walk over in-memory state, cheaper than a goroutine each.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- c.buildInfo
	now := c.now()
	for _, p := range c.parts {
		start := time.Now()
		err := collectPart(p.c, c.src, now, ch)
		success := 1.0
		if err != nil {
			success = 0
			c.log.Warn("metrics collector failed", "collector", p.name, "err", err)
		}
		ch <- prometheus.MustNewConstMetric(scrapeDurationDesc, prometheus.GaugeValue, time.Since(start).Seconds(), p.name)
		ch <- prometheus.MustNewConstMetric(scrapeSuccessDesc, prometheus.GaugeValue, success, p.name)
	}
}

// collectPart runs one part, turning a panic in it (or in the Source) into
// its error so that the other parts still report.
func collectPart(c subCollector, src Source, now time.Time, ch chan<- prometheus.Metric) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.collect(src, now, ch)
}
