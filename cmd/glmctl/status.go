package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/clitext"
)

func (c *cli) statusCmd() *cobra.Command {
	var asJSON, withResources bool
	cmd := &cobra.Command{
		Use:   "status [--json] [TASK...]",
		Short: "Show the state of each task instance",
		Long: `Show the state of each task instance, or of the named tasks only.

A task whose file has errors shows as one row with state "invalid"; it
keeps running its last good version. STATE "running (not ready)" is a
running instance whose readiness check does not pass (yet).

--json prints the API's array as it is (the format scripts rely on).
--resources shows what each instance's cgroup used instead: CPU time,
memory now and at its peak (with the limit), processes and threads, bytes
read and written, OOM kills (with --json: the "resources" object).`,
		ValidArgsFunction: c.completeTasks,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := c.callContext(cmd.Context())
			defer cancel()
			rows, err := c.client().Status(ctx, api.StatusOptions{Resources: withResources})
			if err != nil {
				return err
			}
			rows, missing := filterTasks(rows, args)
			out := cmd.OutOrStdout()
			switch {
			case asJSON:
				if err := writeStatusJSON(out, rows); err != nil {
					return err
				}
			case len(rows) == 0 && len(missing) > 0:
			case withResources:
				if err := writeResourcesTable(out, rows); err != nil {
					return err
				}
			default:
				if err := writeStatusTable(out, rows, now()); err != nil {
					return err
				}
				// Consul down is worth a line: registrations and the
				// scheduler role wait for it, the workers do not.
				if info, err := c.client().Info(ctx); err == nil && info.Discovery != "" {
					fmt.Fprintf(out, "\ndiscovery degraded: %s (workers are supervised as usual; registrations catch up when Consul is back)\n", info.Discovery)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("no task named %s", quoteAll(missing))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the JSON array of the API")
	cmd.Flags().BoolVarP(&withResources, "resources", "r", false, "show what each instance's cgroup used")
	return cmd
}

// writeResourcesTable prints the cgroup usage of each instance; "-" where
// an instance has no cgroup (not running, or cgroups are off).
func writeResourcesTable(w io.Writer, rows []api.InstanceStatus) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no tasks")
		return err
	}
	rows = sortedRows(rows)
	tw := clitext.NewTable(w)
	fmt.Fprintln(tw, "TASK\tINSTANCE\tSTATE\tCPU-TIME\tTHROTTLED\tMEMORY\tPEAK\tPIDS\tIO-READ\tIO-WRITE\tOOM-KILLS")
	for _, r := range rows {
		if r.Instance < 0 {
			continue
		}
		u := r.Resources
		if u == nil {
			fmt.Fprintf(tw, "%s\t%d\t%s\t-\t-\t-\t-\t-\t-\t-\t-\n", r.Task, r.Instance, stateText(r))
			continue
		}
		cpu := fmt.Sprintf("%.1fs", u.CPUSeconds)
		if u.CPUs > 0 {
			cpu += fmt.Sprintf(" (max %g cores)", u.CPUs)
		}
		mem := bytesText(u.MemoryBytes)
		if u.MemoryMax > 0 {
			mem += "/" + bytesText(uint64(u.MemoryMax))
		}
		pids := strconv.FormatUint(u.Pids, 10)
		if u.PidsMax > 0 {
			pids += "/" + strconv.FormatInt(u.PidsMax, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.1fs\t%s\t%s\t%s\t%s\t%s\t%d\n", r.Task, r.Instance, stateText(r),
			cpu, u.CPUThrottledSeconds, mem, bytesText(u.MemoryPeakBytes), pids,
			bytesText(u.IOReadBytes), bytesText(u.IOWriteBytes), u.OOMKills)
	}
	return tw.Flush()
}

// bytesText prints a size with a binary unit: 0B, 512KiB, 1.5GiB.
func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + "B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + string("KMGTPE"[exp]) + "iB"
}

// filterTasks keeps the rows of the named tasks (all rows when none is
// named) and returns the names that have no row.
func filterTasks(rows []api.InstanceStatus, tasks []string) (kept []api.InstanceStatus, missing []string) {
	if len(tasks) == 0 {
		return rows, nil
	}
	for _, r := range rows {
		if slices.Contains(tasks, r.Task) {
			kept = append(kept, r)
		}
	}
	for _, t := range tasks {
		if !slices.ContainsFunc(kept, func(r api.InstanceStatus) bool { return r.Task == t }) && !slices.Contains(missing, t) {
			missing = append(missing, t)
		}
	}
	return kept, missing
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func writeStatusJSON(w io.Writer, rows []api.InstanceStatus) error {
	if rows == nil {
		rows = []api.InstanceStatus{}
	}
	return writeJSON(w, "status", rows)
}

// writeJSON prints v as the API's indented JSON, for --json.
func writeJSON(w io.Writer, what string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// sortedRows returns a copy of rows sorted by task and instance, the
// task-level (invalid) row of a task first.
func sortedRows(rows []api.InstanceStatus) []api.InstanceStatus {
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b api.InstanceStatus) int {
		return cmp.Or(strings.Compare(a.Task, b.Task), cmp.Compare(a.Instance, b.Instance))
	})
	return rows
}

// writeStatusTable prints one aligned row per instance, sorted by task and
// instance, the task-level (invalid) row of a task first.
func writeStatusTable(w io.Writer, rows []api.InstanceStatus, now time.Time) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no tasks")
		return err
	}
	rows = sortedRows(rows)
	tw := clitext.NewTable(w)
	fmt.Fprintln(tw, "TASK\tINSTANCE\tSTATE\tPID\tUPTIME\tRESTARTS\tLAST-EXIT\tMESSAGE")
	for _, r := range rows {
		if r.Instance < 0 {
			fmt.Fprintf(tw, "%s\t-\t%s\t-\t-\t-\t-\t%s\n", r.Task, r.State, invalidMessage(r))
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n",
			r.Task, r.Instance, stateText(r), pidText(r.PID), uptime(r, now), r.Restarts, exitText(r.LastExit), message(r, now))
	}
	return tw.Flush()
}

func stateText(r api.InstanceStatus) string {
	if r.State == "running" && !r.Ready {
		return "running (not ready)"
	}
	return r.State
}

func pidText(pid int) string {
	if pid <= 0 {
		return "-"
	}
	return strconv.Itoa(pid)
}

// uptime is how long the current process has run, for the states in
// which one runs; "-" otherwise.
func uptime(r api.InstanceStatus, now time.Time) string {
	if r.StartedAt == nil || (r.State != "running" && r.State != "starting") {
		return "-"
	}
	return shortDuration(now.Sub(*r.StartedAt))
}

// shortDuration prints the two largest units: 3d4h, 2h5m, 4m10s, 12s.
func shortDuration(d time.Duration) string {
	if d < 0 {
		d = 0 // the agent's clock is ahead of ours
	}
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	h, s := s/3600, s%3600
	m, s := s/60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// exitText says how the process last ended: "exit 1", "SIGKILL",
// "oom_killed", "unhealthy", "stopped"; "-" when it never ended.
func exitText(e api.Exit) string {
	switch e.Reason {
	case "":
		return "-"
	case "exited":
		return "exit " + strconv.Itoa(e.Code)
	case "signal":
		if e.Signal != "" {
			return e.Signal
		}
	}
	return e.Reason
}

// message is the row's message on one line; in backoff it says when the
// next attempt is due.
func message(r api.InstanceStatus, now time.Time) string {
	msg := clitext.OneLine(r.Message)
	if r.State == "backoff" && r.NextStart != nil {
		next := "next start in " + shortDuration(r.NextStart.Sub(now))
		if msg == "" {
			return next
		}
		return msg + " (" + next + ")"
	}
	return msg
}

// invalidMessage names the file, so that the operator knows what to fix.
func invalidMessage(r api.InstanceStatus) string {
	msg := clitext.OneLine(r.Message)
	if r.File != "" && !strings.Contains(msg, r.File) {
		msg = r.File + ": " + msg
	}
	return msg
}
