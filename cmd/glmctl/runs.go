package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/clitext"
)

func (c *cli) runsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "runs [--json] TASK",
		Short: "Show the run history of a scheduled task",
		Long: `Show the run history of a scheduled task (kind = "cron"), oldest
first: each attempt with its trigger (schedule, catch-up, manual, retry),
when it was due and started, how long it ran, its result and exit, and its
log file; fire times that did not run are listed as skipped or missed.
The history lives in glmd's state_dir and survives restarts of glmd.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeTasks,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := c.callContext(cmd.Context())
			defer cancel()
			runs, err := c.client().Runs(ctx, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if runs == nil {
					runs = []api.CronRun{}
				}
				return writeJSON(out, "runs", runs)
			}
			return writeRuns(out, runs, now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the JSON array of the API")
	return cmd
}

func writeRuns(w io.Writer, runs []api.CronRun, now time.Time) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(w, "no runs yet")
		return err
	}
	tw := clitext.NewTable(w)
	fmt.Fprintln(tw, "RUN\tTRIGGER\tSCHEDULED\tSTARTED\tDURATION\tRESULT\tEXIT\tLOG")
	for _, r := range runs {
		id := strconv.FormatUint(r.ID, 10)
		if r.Attempt > 1 {
			id += "." + strconv.Itoa(r.Attempt)
		}
		dur := "-"
		switch {
		case r.Start != nil && r.End != nil:
			dur = shortDuration(r.End.Sub(*r.Start))
		case r.Start != nil:
			dur = shortDuration(now.Sub(*r.Start)) + "+"
		}
		result := r.Result
		if result == "" {
			result = "running"
		}
		if r.Missed > 1 {
			result = fmt.Sprintf("%s (%d)", result, r.Missed)
		}
		exit := "-"
		switch {
		case r.Signal != "":
			exit = r.Signal
		case r.ExitCode >= 0 && r.End != nil:
			exit = strconv.Itoa(r.ExitCode)
		}
		log := "-"
		if r.Stdout != "" {
			log = filepath.Base(filepath.Dir(r.Stdout)) + "/" + filepath.Base(r.Stdout)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, r.Trigger, stamp(r.Scheduled), stamp(r.Start), dur, result, exit, log)
	}
	return tw.Flush()
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func (c *cli) runCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run TASK",
		Short: "Start a run of a scheduled task now",
		Long: `Start a run of a scheduled task now, also while it is suspended. The
task's concurrency policy applies: with "forbid" (the default) it fails
while a run is active. glmctl runs TASK shows how it went.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeTasks,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := c.callContext(cmd.Context())
			defer cancel()
			id, err := c.client().RunNow(ctx, args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: run %d started\n", args[0], id)
			return err
		},
	}
}
