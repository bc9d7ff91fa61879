// Package cron runs the tasks of kind "cron": schedules read in an IANA time zone, the fire times they produce, and
// a Job per task that starts runs at those times through the agent (a Starter), with concurrency policies, a
// starting deadline, jitter, a timeout, retries with backoff, and a history of runs kept on disk.
//
// # Schedules
//
// Parse reads 5-field cron expressions (minute hour day-of-month month day-of-week), 6 fields with a leading seconds
// field, the descriptors @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, and @every <duration>
// (whole seconds, at least 1s). Field syntax is robfig/cron's: *, ?, lists, ranges, steps, month and weekday names;
// when both day fields are restricted either may match ("0 0 1 * mon": the 1st and every Monday), as in Vixie cron.
// The zone comes from the task's timezone key (ValidateZone), never from a CRON_TZ= prefix, which Parse refuses.
// Expressions that can never fire ("0 0 30 2 *") are refused with the reason.
//
// # Daylight saving time
//
// Servers keep UTC; schedules mean the wall clock of their zone. When the zone's clock jumps, the rule follows Vixie
// cron's split between fixed-time and wildcard jobs, decided here by the hour field alone:
//
//   - A schedule with a fixed hour field (anything but "*" for hours: "30 2 * * *", "0 9-17 * * 1-5", @daily) runs
//     once per matching wall time. A wall time skipped by a spring-forward jump runs once, at the first instant after
//     the gap: in America/New_York "30 2 * * *" runs at 03:00 EDT on 10 March 2024, and several skipped times
//     ("*/15 2 * * *") collapse into that one run. A wall time repeated by a fall-back jump runs once, at its first
//     occurrence: "30 1 * * *" runs at 01:30 EDT on 3 November 2024, not again at 01:30 EST.
//   - A schedule whose hour field is "*" ("30 * * * *", "*/5 * * * *", @hourly, "*/10 * * * * *") follows real
//     time: it fires at every instant whose wall time matches. In a spring-forward gap no instant shows 02:30, so
//     "30 * * * *" runs at 01:30 EST and next at 03:30 EDT, one real hour later; in the repeated hour it runs at
//     01:30 EDT and again at 01:30 EST, one real hour apart. An hourly job thus runs exactly once every real hour
//     across both transitions, where a shift of the skipped run to 03:00 would have run it twice within 30 minutes,
//     and running the repeated hour once would have left a two-hour hole. In zones whose clocks move by 30 minutes
//     (Australia/Lord_Howe) one real interval is 90 minutes in spring and 30 in autumn: the wall clock only offers
//     those.
//   - @every counts real time and ignores the zone.
//
// robfig/cron's own Next, which Kubernetes CronJob uses, differs and is not used: it skips a daily run whose wall
// time falls in the gap for that day and runs a daily job twice in the repeated hour. Next is computed here over
// robfig/cron's parsed fields, walking the zone's periods of constant offset.
//
// # Runs
//
// A Job waits for each fire time plus a random jitter, then starts a run under the concurrency policy (Forbid by
// default: skip and record; Replace: stop the active runs, reason replaced, and start when they have ended; Allow).
// An attempt that outlives Spec.Timeout is stopped (reason timeout). A failed attempt (non-zero exit, a signal, a
// start error) is retried up to Retry.Attempts times with exponential backoff and jitter; the retries belong to the
// same run (same ID and scheduled time, attempt 2, 3, ...). Timeouts, replaced and stopped runs, and start errors
// wrapping ErrPermanent are not retried. Fire times more than Spec.StartingDeadline late (glmd was down, the host
// slept, the clock jumped) are recorded as one missed record however many they are; the latest one within the
// deadline runs once as a catch-up (DefaultStartingDeadline explains the default). RunNow starts a manual run, also
// while suspended. Each attempt and each decision not to run is a Record in the task's History file, and an Event
// for the agent; Status holds what the metrics collector reads at scrape time.
package cron
