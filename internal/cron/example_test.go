package cron_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/open-autoglm/glmd/internal/cron"
)

// Example wires a Job the way the agent does: a spec from the task file, the agent's Starter, the history in
// state_dir/cron, events turned into glmd events.
func Example() {
	var starter cron.Starter                        // the agent's: runs the task's command in a cgroup, with log files per attempt
	zone, err := cron.ValidateZone("Europe/Berlin") // the task's timezone, else [cron] timezone, else UTC
	if err != nil {
		fmt.Println("timezone:", err) // the config loader prefixes file:line: and the key
		return
	}
	sched, err := cron.Parse("30 2 * * *", zone)
	if err != nil {
		fmt.Println("schedule:", err)
		return
	}
	spec := cron.Spec{Schedule: sched, Concurrency: cron.Forbid, Retry: cron.Retry{Attempts: 2}}
	job, err := cron.New(cron.Options{
		Task:    "nightly-export",
		Spec:    spec,
		Starter: starter,
		History: cron.NewHistory("/var/lib/glmd/cron"),
		Log:     slog.Default(),
		OnEvent: func(e cron.Event) { fmt.Println(e.Kind, e.Record.ID, e.Record.Reason) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go job.Run(ctx)                // in the agent's errgroup; cancel when glmd stops
	run, err := job.RunNow(ctx)    // glmctl run nightly-export
	fmt.Println(run.ID, err)       // ...
	fmt.Println(job.Status().Next) // glmctl status, metrics at scrape time
	spec.Suspend = true
	_ = job.SetSpec(spec)             // glmctl reload: the new spec of the task file
	_ = job.Kill(ctx, "task removed") // the task file is gone: stop its runs, then cancel Run
}
