package agent

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/open-autoglm/glmd/internal/cron"
)

// cronCollector exposes the scheduled tasks' runs, read at scrape time
// from each Job's status, so that an alert can fire when a job has not
// succeeded for too long.
type cronCollector struct {
	a                                   *Agent
	runs, lastDur, lastOK, next, active *prometheus.Desc
}

func newCronCollector(a *Agent) *cronCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"task"}, labels...), nil)
	}
	return &cronCollector{
		a:       a,
		runs:    d("glmd_cron_runs_total", "Runs of a scheduled task since glmd started, by result (success, failed, timeout, replaced, stopped, skipped, missed, unknown).", "result"),
		lastDur: d("glmd_cron_last_duration_seconds", "How long the last finished attempt ran."),
		lastOK:  d("glmd_cron_last_success_timestamp_seconds", "When the last successful run ended (kept across restarts of glmd)."),
		next:    d("glmd_cron_next_run_timestamp_seconds", "When the next scheduled run starts; absent while suspended."),
		active:  d("glmd_cron_active_runs", "Runs in progress (running or waiting for a retry)."),
	}
}

func (c *cronCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.runs, c.lastDur, c.lastOK, c.next, c.active} {
		ch <- d
	}
}

func (c *cronCollector) Collect(ch chan<- prometheus.Metric) {
	c.a.mu.Lock()
	var jobs []*cron.Job
	for _, t := range c.a.tasks {
		if t.cron != nil {
			jobs = append(jobs, t.cron.job)
		}
	}
	c.a.mu.Unlock()
	for _, j := range jobs {
		st := j.Status()
		results := make([]string, 0, len(st.Runs))
		for r := range st.Runs {
			results = append(results, string(r))
		}
		sort.Strings(results)
		for _, r := range results {
			ch <- prometheus.MustNewConstMetric(c.runs, prometheus.CounterValue, float64(st.Runs[cron.Reason(r)]), st.Task, r)
		}
		if st.Last.ID != 0 {
			ch <- prometheus.MustNewConstMetric(c.lastDur, prometheus.GaugeValue, st.LastDuration.Seconds(), st.Task)
		}
		if !st.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastOK, prometheus.GaugeValue, float64(st.LastSuccess.UnixMilli())/1000, st.Task)
		}
		if !st.NextStart.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.next, prometheus.GaugeValue, float64(st.NextStart.UnixMilli())/1000, st.Task)
		}
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(len(st.Active)), st.Task)
	}
}
