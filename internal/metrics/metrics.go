// Package metrics exposes glmd's state to Prometheus. Every value is read
// from a Source at scrape time and emitted as a const metric; nothing updates
// metrics in the background, so a removed task or instance leaves no stale
// series behind (prometheus/node_exporter collector/collector.go).
//
// Each part of the state is one small collector (instances, logs, agent)
// that reports glmd_scrape_collector_success{collector} and
// glmd_scrape_collector_duration_seconds{collector}: a broken part is a 0
// there and missing series, never a failed scrape.
package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/open-autoglm/glmd/internal/resources"
)

// Instance is what the metrics need to know about one task instance.
type Instance struct {
	Task     string
	Instance int
	// State is one of pending, starting, running, stopping, stopped,
	// backoff, exited, failed.
	State    string
	Ready    bool
	Restarts int
	// Exits counts the instance's exits by reason: exited, signal,
	// oom_killed, unhealthy, stopped.
	Exits map[string]int
	// StartedAt is when the running process started; zero when there is none.
	StartedAt time.Time
	Logs      []LogStream
	// Resources is what the instance's cgroup used; nil when it has none.
	Resources *resources.Stats
	// Probes are the instance's health checks, cumulative.
	Probes []Probe
}

// Probe is one health check of an instance, cumulative since the instance
// was created.
type Probe struct {
	Role                string            // startup, liveness, readiness
	Results             map[string]uint64 // by outcome: success, failure, timeout, error
	ConsecutiveFailures int
	// Latency is a histogram of probe durations in seconds: cumulative
	// counts per upper bound, as prometheus.MustNewConstHistogram takes.
	LatencyBuckets map[float64]uint64
	LatencyCount   uint64
	LatencySum     float64
}

// LogStream is the counters of one of an instance's output streams.
type LogStream struct {
	Stream       string // stdout or stderr
	Bytes        uint64 // written to the log file
	DroppedBytes uint64 // lost because the writer could not keep up or the disk was full
	DroppedLines uint64 // newlines in the dropped bytes
	Rotations    uint64 // log files rotated
}

// Agent is the agent-wide state.
type Agent struct {
	// Reloads counts conf_dir reloads by result: "ok", "invalid" (some
	// files invalid), "error" (conf_dir unreadable).
	Reloads      map[string]int
	InvalidFiles []InvalidFile // the task files the last reload refused
	Tasks        int           // tasks loaded
}

// InvalidFile is one task file the last reload refused.
type InvalidFile struct {
	File    string // the file's name in conf_dir
	Task    string // the task it defines, "" when it could not be told
	Message string
}

// Source gives the current state; it is called on every scrape, from the
// scraping goroutine, so it must be safe for concurrent use and cheap.
type Source interface {
	Instances() []Instance
	AgentState() Agent
}

// NewRegistry returns a registry with glmd's collectors over src, glmd_build_info
// for version and commit, and the standard Go runtime and process collectors.
func NewRegistry(src Source, version, commit string) *prometheus.Registry {
	return newRegistry(src, version, commit, time.Now, slog.Default())
}

func newRegistry(src Source, version, commit string, now func() time.Time, log *slog.Logger) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(src, version, commit, now, log),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves reg in the Prometheus exposition formats. A collector that
// fails costs its own series, not the scrape (ContinueOnError), and the
// handler counts its requests and errors in reg
// (promhttp_metric_handler_*).
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
}
