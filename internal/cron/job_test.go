package cron_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-autoglm/glmd/internal/cron"
)

// TestJob_FireTimes runs jobs across DST transitions, each run ending at once, and checks when they started.
func TestJob_FireTimes(t *testing.T) {
	tests := []struct {
		name, zone, expr, from, to string
		want                       []string
	}{
		{"new york daily, spring", "America/New_York", "30 2 * * *", "2024-03-09 12:00:00 -0500", "2024-03-11 12:00:00 -0400",
			[]string{"2024-03-10 03:00:00 -0400", "2024-03-11 02:30:00 -0400"}},
		{"new york daily, fall", "America/New_York", "30 1 * * *", "2024-11-02 12:00:00 -0400", "2024-11-04 12:00:00 -0500",
			[]string{"2024-11-03 01:30:00 -0400", "2024-11-04 01:30:00 -0500"}},
		{"new york hourly, fall", "America/New_York", "30 * * * *", "2024-11-03 00:00:00 -0400", "2024-11-03 02:45:00 -0500",
			[]string{"2024-11-03 00:30:00 -0400", "2024-11-03 01:30:00 -0400", "2024-11-03 01:30:00 -0500", "2024-11-03 02:30:00 -0500"}},
		{"berlin hourly, spring", "Europe/Berlin", "0 * * * *", "2024-03-31 00:30:00 +0100", "2024-03-31 04:30:00 +0200",
			[]string{"2024-03-31 01:00:00 +0100", "2024-03-31 03:00:00 +0200", "2024-03-31 04:00:00 +0200"}},
		{"berlin seconds, fall", "Europe/Berlin", "*/20 59 2 * * *", "2024-10-27 02:58:30 +0200", "2024-10-27 03:30:00 +0100",
			[]string{"2024-10-27 02:59:00 +0200", "2024-10-27 02:59:20 +0200", "2024-10-27 02:59:40 +0200"}},
		{"lord howe daily, spring", "Australia/Lord_Howe", "15 2 * * *", "2024-10-05 12:00:00 +1030", "2024-10-07 12:00:00 +1100",
			[]string{"2024-10-06 02:30:00 +1100", "2024-10-07 02:15:00 +1100"}},
		{"kolkata", "Asia/Kolkata", "0 9 * * *", "2024-06-07 08:00:00 +0530", "2024-06-08 12:00:00 +0530",
			[]string{"2024-06-07 09:00:00 +0530", "2024-06-08 09:00:00 +0530"}},
		{"every 90 minutes across spring", "America/New_York", "@every 90m", "2024-03-10 00:00:00 -0500", "2024-03-10 05:00:00 -0400",
			[]string{"2024-03-10 01:30:00 -0500", "2024-03-10 04:00:00 -0400"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				loc := zone(t, tt.zone)
				h := newHarness(t, at(t, tt.from).In(loc), cron.Spec{Schedule: sched(t, tt.expr, loc)}, "")
				h.st.auto = func(cron.Run) *cron.Result { return success }
				h.run()
				h.stepTo(at(t, tt.to))
				var got []string
				for _, r := range h.st.started() {
					if !r.at.Equal(r.run.Scheduled) || r.run.Trigger != cron.TriggerSchedule {
						t.Errorf("run %d started %s for %s (%s)", r.run.ID, r.at, r.run.Scheduled, r.run.Trigger)
					}
					got = append(got, r.run.Scheduled.Format(layout))
				}
				equal(t, "fire times", got, tt.want)
			})
		})
	}
}

func TestJob_Forbid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"), cron.Spec{Schedule: sched(t, "@hourly", nil)}, "").run()
		h.step(time.Hour)
		slow := h.st.last(t)
		h.step(time.Hour) // 02:00: run 1 still active
		if n := len(h.st.started()); n != 1 {
			t.Fatalf("%d runs started, want 1", n)
		}
		if _, err := h.job.RunNow(t.Context()); !errors.Is(err, cron.ErrRunActive) || !strings.Contains(err.Error(), "a run is active (run 1, running, for 1h0m0s)") {
			t.Errorf("RunNow while active: %v", err)
		}
		slow.end(cron.Result{})
		h.step(time.Hour) // 03:00 runs
		equal(t, "records", h.records(), []string{"1.1 schedule success", "2.0 schedule skipped", "3.1 schedule active"})
		skipped := h.history().Runs[1]
		if skipped.Message != "previous run still active (run 1, for 1h0m0s)" || !skipped.Scheduled.Equal(at(t, "2024-06-01 02:00:00 +0000")) {
			t.Errorf("skipped record %+v", skipped)
		}
		equal(t, "events", h.eventKinds(), []string{"started 1.1", "skipped 2.0", "ended 1.1", "started 3.1"})
		if st := h.job.Status(); st.Runs[cron.ReasonSkipped] != 1 || st.Runs[cron.ReasonSuccess] != 1 {
			t.Errorf("status counts %v", st.Runs)
		}
	})
}

func TestJob_Replace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"),
			cron.Spec{Schedule: sched(t, "@hourly", nil), Concurrency: cron.Replace}, "").run()
		h.step(time.Hour)
		old := h.st.last(t)
		old.killOnStop = false // it takes its time to die
		h.step(time.Hour)
		equal(t, "stops of run 1", old.stopReasons(), []string{"replaced"})
		if n := len(h.st.started()); n != 1 {
			t.Fatalf("run 2 started before run 1 ended (%d runs)", n)
		}
		st := h.job.Status()
		if len(st.Active) != 2 || st.Active[1].State != "waiting" {
			t.Errorf("active %+v", st.Active)
		}
		old.end(cron.Result{ExitCode: 143, Signal: "SIGTERM"})
		synctest.Wait()
		if n := len(h.st.started()); n != 2 {
			t.Fatalf("%d runs, want run 2 started once run 1 ended", n)
		}
		equal(t, "records", h.records(), []string{"1.1 schedule replaced", "2.1 schedule active"})
		if r := h.history().Runs[0]; r.Message != "replaced by run 2" || r.Signal != "SIGTERM" {
			t.Errorf("replaced record %+v", r)
		}
		// A manual run replaces too.
		if _, err := h.job.RunNow(t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		equal(t, "records", h.records(), []string{"1.1 schedule replaced", "2.1 schedule replaced", "3.1 manual active"})
	})
}

func TestJob_Allow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"),
			cron.Spec{Schedule: sched(t, "@hourly", nil), Concurrency: cron.Allow}, "").run()
		h.step(3 * time.Hour)
		if _, err := h.job.RunNow(t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := len(h.job.Status().Active); n != 4 {
			t.Errorf("%d active runs, want 4", n)
		}
		for _, r := range h.st.started() {
			if len(r.stopReasons()) != 0 {
				t.Errorf("run %d stopped", r.run.ID)
			}
		}
		equal(t, "records", h.records(), []string{"1.1 schedule active", "2.1 schedule active", "3.1 schedule active", "4.1 manual active"})
	})
}

func TestJob_Timeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"), cron.Spec{
			Schedule: sched(t, "0 3 * * *", nil),
			Timeout:  10 * time.Minute,
			Retry:    cron.Retry{Attempts: 3},
		}, "").run()
		h.stepTo(at(t, "2024-06-01 03:09:59 +0000"))
		r := h.st.last(t)
		if len(r.stopReasons()) != 0 {
			t.Fatal("stopped before the timeout")
		}
		h.step(time.Second)
		equal(t, "stops", r.stopReasons(), []string{"timeout"})
		h.step(time.Hour)
		equal(t, "records (a timeout is not retried)", h.records(), []string{"1.1 schedule timeout"})
		rec := h.history().Runs[0]
		if rec.Message != "ran longer than its timeout of 10m0s" || rec.Duration() != 10*time.Minute || rec.Signal != "SIGKILL" {
			t.Errorf("timeout record %+v", rec)
		}
		if n := h.job.Status().Runs[cron.ReasonTimeout]; n != 1 {
			t.Errorf("timeouts counted %d", n)
		}
	})
}

func TestJob_Retry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"), cron.Spec{
			Schedule: sched(t, "0 3 * * *", nil),
			Retry:    cron.Retry{Attempts: 2, Delay: 10 * time.Second, MaxDelay: time.Minute},
		}, "")
		h.st.auto = func(cron.Run) *cron.Result { return &cron.Result{ExitCode: 1} }
		h.run()
		h.stepTo(at(t, "2024-06-01 03:00:00 +0000"))
		h.step(9 * time.Second)
		if n := len(h.st.started()); n != 1 {
			t.Fatalf("%d attempts before the retry delay, want 1", n)
		}
		h.step(time.Second) // the first retry waits exactly Delay
		h.step(time.Hour)
		runs := h.st.started()
		if len(runs) != 3 {
			t.Fatalf("%d attempts, want 3 (1 + 2 retries)", len(runs))
		}
		for i, r := range runs {
			if r.run.ID != 1 || r.run.Attempt != i+1 || !r.run.Scheduled.Equal(at(t, "2024-06-01 03:00:00 +0000")) {
				t.Errorf("attempt %d: %+v", i+1, r.run)
			}
		}
		if d := runs[1].at.Sub(runs[0].at); d != 10*time.Second {
			t.Errorf("first retry after %s, want 10s", d)
		}
		if d := runs[2].at.Sub(runs[1].at); d < 10*time.Second || d > 20*time.Second {
			t.Errorf("second retry after %s, want 10s..20s", d)
		}
		equal(t, "records", h.records(), []string{"1.1 schedule failed", "1.2 retry failed", "1.3 retry failed"})
		equal(t, "events", h.eventKinds(), []string{
			"started 1.1", "ended 1.1", "retry_scheduled 1.1", "started 1.2", "ended 1.2", "retry_scheduled 1.2", "started 1.3", "ended 1.3"})
		if rec := h.history().Runs[0]; rec.Message != "exit code 1" || rec.ExitCode != 1 {
			t.Errorf("failed record %+v", rec)
		}
	})
}

func TestJob_RetryUntilSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"), cron.Spec{
			Schedule: sched(t, "0 3 * * *", nil),
			Retry:    cron.Retry{Attempts: 5, Delay: time.Minute, MaxDelay: 10 * time.Minute},
		}, "")
		h.st.auto = func(r cron.Run) *cron.Result {
			if r.Attempt < 3 {
				return &cron.Result{ExitCode: 137, Signal: "SIGKILL", Message: "oom_killed"}
			}
			return success
		}
		h.run()
		h.stepTo(at(t, "2024-06-01 04:00:00 +0000"))
		equal(t, "records", h.records(), []string{"1.1 schedule failed", "1.2 retry failed", "1.3 retry success"})
		rec := h.history().Runs[0]
		if rec.Message != "killed by SIGKILL; oom_killed" {
			t.Errorf("message %q", rec.Message)
		}
		if st := h.job.Status(); !st.LastSuccess.Equal(h.st.last(t).at) || st.Last.Attempt != 3 {
			t.Errorf("status %+v", st)
		}
	})
}

func TestJob_StartErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"), cron.Spec{
			Schedule: sched(t, "@hourly", nil),
			Retry:    cron.Retry{Attempts: 1, Delay: time.Second},
		}, "")
		h.st.startErr = func(r cron.Run) error {
			if r.ID == 1 {
				return errors.New("no free GPU")
			}
			return fmt.Errorf("%w: exec: no such file", cron.ErrPermanent)
		}
		h.run()
		h.stepTo(at(t, "2024-06-01 02:30:00 +0000"))
		equal(t, "records", h.records(), []string{"1.1 schedule failed", "1.2 retry failed", "2.1 schedule failed"})
		if rec := h.history().Runs[2]; !strings.HasPrefix(rec.Message, "start: cron: permanent start failure: exec") || rec.ExitCode != -1 {
			t.Errorf("permanent failure record %+v", rec)
		}
	})
}

// TestJob_StartingDeadline runs a daily job, stops glmd for three days, and starts it again on the same history.
func TestJob_StartingDeadline(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration
		restart  string // when glmd starts again
		schedule string // after the restart
		want     []string
		missed   int
	}{
		{"within the default deadline", 0, "2024-06-04 02:03:00 +0000", "0 2 * * *",
			[]string{"1.1 schedule success", "2.0 schedule missed", "3.1 catch-up success"}, 2},
		{"past the deadline", 0, "2024-06-04 05:00:00 +0000", "0 2 * * *",
			[]string{"1.1 schedule success", "2.0 schedule missed"}, 3},
		{"long deadline", 48 * time.Hour, "2024-06-04 05:00:00 +0000", "0 2 * * *",
			[]string{"1.1 schedule success", "2.0 schedule missed", "3.1 catch-up success"}, 2},
		{"schedule changed while down", 48 * time.Hour, "2024-06-04 05:00:00 +0000", "0 4 * * *",
			[]string{"1.1 schedule success"}, 0},
		{"nothing missed", 0, "2024-06-01 12:00:00 +0000", "0 2 * * *",
			[]string{"1.1 schedule success"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				spec := cron.Spec{Schedule: sched(t, "0 2 * * *", nil), StartingDeadline: tt.deadline}
				first := newHarness(t, at(t, "2024-06-01 01:00:00 +0000"), spec, "")
				first.st.auto = func(cron.Run) *cron.Result { return success }
				first.run()
				first.stepTo(at(t, "2024-06-01 03:00:00 +0000"))
				first.stop()

				spec.Schedule = sched(t, tt.schedule, nil)
				h := newHarness(t, at(t, tt.restart), spec, first.hist.Dir())
				h.st.auto = first.st.auto
				h.run()
				equal(t, "records", h.records(), tt.want)
				var missed int
				for _, r := range h.history().Runs {
					missed += r.Missed
					if r.Reason == cron.ReasonMissed && (!r.Scheduled.Equal(at(t, "2024-06-02 02:00:00 +0000")) || !strings.Contains(r.Message, "more than starting_deadline")) {
						t.Errorf("missed record %+v", r)
					}
				}
				if missed != tt.missed {
					t.Errorf("missed %d fire times, want %d", missed, tt.missed)
				}
				for _, r := range h.st.started() {
					if !r.run.Scheduled.Equal(at(t, "2024-06-04 02:00:00 +0000")) || !r.at.Equal(at(t, tt.restart)) {
						t.Errorf("catch-up %+v at %s", r.run, r.at)
					}
				}
				// The schedule goes on as usual afterwards.
				next := spec.Schedule.Next(at(t, tt.restart))
				h.stepTo(next.Add(time.Hour))
				if r := h.st.last(t); r.run.Trigger != cron.TriggerSchedule || !r.at.Equal(next) {
					t.Errorf("next run %+v at %s, want at %s", r.run, r.at, next)
				}
			})
		})
	}
}

// TestJob_HostAsleep jumps the clock over several fire times while glmd runs (a suspended VM, a clock step).
func TestJob_HostAsleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, at(t, "2024-06-01 00:30:00 +0000"), cron.Spec{Schedule: sched(t, "@hourly", nil)}, "")
		h.st.auto = func(cron.Run) *cron.Result { return success }
		h.run()
		h.clock.Set(at(t, "2024-06-01 04:02:00 +0000"))
		synctest.Wait()
		equal(t, "records", h.records(), []string{"1.0 schedule missed", "2.1 catch-up success"})
		if r := h.history().Runs[0]; r.Missed != 3 || !strings.HasPrefix(r.Message, "3 fire time(s) from 2024-06-01T01:00:00Z missed") {
			t.Errorf("missed record %+v", r)
		}
		if st := h.job.Status(); !st.Next.Equal(at(t, "2024-06-01 05:00:00 +0000")) || st.Runs[cron.ReasonMissed] != 3 {
			t.Errorf("status next %s counts %v", st.Next, st.Runs)
		}
	})
}

func TestJob_MissedEverySecondForDays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := cron.Spec{Schedule: sched(t, "* * * * * *", nil), Concurrency: cron.Allow}
		first := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"), spec, "")
		first.st.auto = func(cron.Run) *cron.Result { return success }
		first.run()
		first.step(time.Second)
		first.stop()
		h := newHarness(t, at(t, "2024-06-04 00:00:00 +0000"), spec, first.hist.Dir())
		h.st.auto = first.st.auto
		h.run()
		recs := h.history().Runs
		last := recs[len(recs)-1]
		missed := recs[len(recs)-2]
		if missed.Reason != cron.ReasonMissed || !strings.HasPrefix(missed.Message, "more than 9999 fire time(s)") {
			t.Errorf("missed record %+v", missed)
		}
		if last.Trigger != cron.TriggerCatchUp || !last.Scheduled.Equal(at(t, "2024-06-04 00:00:00 +0000")) {
			t.Errorf("catch-up record %+v", last)
		}
	})
}

func TestJob_Jitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"),
			cron.Spec{Schedule: sched(t, "0 3 * * *", nil), Jitter: 10 * time.Minute}, "")
		h.st.auto = func(cron.Run) *cron.Result { return success }
		h.run()
		for day := range 5 {
			st := h.job.Status()
			want := at(t, "2024-06-01 03:00:00 +0000").AddDate(0, 0, day)
			if !st.Next.Equal(want) || st.NextStart.Before(want) || !st.NextStart.Before(want.Add(10*time.Minute)) {
				t.Fatalf("next %s start %s", st.Next, st.NextStart)
			}
			h.stepTo(want.Add(12 * time.Hour))
			r := h.st.last(t)
			if !r.at.Equal(st.NextStart) || !r.run.Scheduled.Equal(want) {
				t.Errorf("day %d: started %s for %s, want %s", day, r.at, r.run.Scheduled, st.NextStart)
			}
		}
	})
}

func TestJob_HistoryPersists(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := cron.Spec{Schedule: sched(t, "@hourly", nil), History: 3}
		first := newHarness(t, at(t, "2024-06-01 00:30:00 +0000"), spec, "")
		first.st.auto = func(r cron.Run) *cron.Result {
			if r.ID == 2 {
				return &cron.Result{ExitCode: 2}
			}
			if r.ID == 6 {
				return nil // still running when glmd stops
			}
			return success
		}
		first.run()
		first.stepTo(at(t, "2024-06-01 06:30:00 +0000"))
		// 6 runs, 3 kept, and the last failure although older.
		equal(t, "records", first.records(), []string{"2.1 schedule failed", "4.1 schedule success", "5.1 schedule success", "6.1 schedule active"})
		first.stop()

		h := newHarness(t, at(t, "2024-06-01 06:40:00 +0000"), spec, first.hist.Dir())
		h.st.auto = func(cron.Run) *cron.Result { return success }
		h.run()
		equal(t, "records after restart", h.records(), []string{"2.1 schedule failed", "4.1 schedule success", "5.1 schedule success", "6.1 schedule unknown"})
		if r, err := h.job.RunNow(t.Context()); err != nil || r.ID != 7 {
			t.Errorf("RunNow = %+v, %v: want ID 7 after the restart", r, err)
		}
		synctest.Wait()
		th := h.history()
		if got := th.Runs[len(th.Runs)-1]; got.ID != 7 || got.Reason != cron.ReasonSuccess || got.Logs.Stdout != "logs/7.1.stdout.log" {
			t.Errorf("manual record %+v", got)
		}
		if !th.LastSuccess.Equal(at(t, "2024-06-01 06:40:00 +0000")) || !th.LastScheduled.Equal(at(t, "2024-06-01 06:00:00 +0000")) {
			t.Errorf("last success %s, last scheduled %s", th.LastSuccess, th.LastScheduled)
		}
		tasks, err := h.hist.Tasks()
		if err != nil || len(tasks) != 1 || tasks[0] != "export" {
			t.Errorf("Tasks() = %v, %v", tasks, err)
		}
	})
}

func TestJob_Suspend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := cron.Spec{Schedule: sched(t, "@hourly", nil), Suspend: true}
		h := newHarness(t, at(t, "2024-06-01 00:30:00 +0000"), spec, "")
		h.st.auto = func(cron.Run) *cron.Result { return success }
		h.run()
		h.step(3 * time.Hour)
		if n := len(h.st.started()); n != 0 {
			t.Fatalf("%d runs while suspended", n)
		}
		if st := h.job.Status(); !st.Next.IsZero() || !st.Suspended {
			t.Errorf("status while suspended: next %s suspended %v", st.Next, st.Suspended)
		}
		r, err := h.job.RunNow(t.Context())
		if err != nil || r.Trigger != cron.TriggerManual || !r.Scheduled.Equal(h.clock.Now()) {
			t.Fatalf("RunNow while suspended = %+v, %v", r, err)
		}
		synctest.Wait()
		equal(t, "records", h.records(), []string{"1.1 manual success"})

		// Unsuspending does not catch up what passed meanwhile.
		spec.Suspend = false
		if err := h.job.SetSpec(spec); err != nil {
			t.Fatal(err)
		}
		if st := h.job.Status(); !st.Next.Equal(at(t, "2024-06-01 04:00:00 +0000")) {
			t.Errorf("next after unsuspend %s", st.Next)
		}
		h.step(time.Hour)
		equal(t, "records", h.records(), []string{"1.1 manual success", "2.1 schedule success"})
	})
}

func TestJob_SetSpec(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := cron.Spec{Schedule: sched(t, "0 3 * * *", nil), Timeout: time.Hour}
		h := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"), spec, "").run()
		h.stepTo(at(t, "2024-06-01 03:00:00 +0000"))
		active := h.st.last(t)

		// A new schedule and zone: next is recomputed, the active run keeps its timeout.
		berlin := zone(t, "Europe/Berlin")
		spec.Schedule = sched(t, "30 6 * * *", berlin)
		spec.Timeout = 5 * time.Minute
		if err := h.job.SetSpec(spec); err != nil {
			t.Fatal(err)
		}
		st := h.job.Status()
		if !st.Next.Equal(at(t, "2024-06-01 06:30:00 +0200")) || st.Schedule != "30 6 * * *" || st.Timezone != "Europe/Berlin" {
			t.Errorf("status after SetSpec: %+v", st)
		}
		h.step(30 * time.Minute)
		if len(active.stopReasons()) != 0 {
			t.Error("the new timeout stopped the run that started before")
		}
		h.step(30 * time.Minute)
		equal(t, "stops", active.stopReasons(), []string{"timeout"})

		// Suspend drops the next fire time; a bad spec is refused and changes nothing.
		spec.Suspend = true
		if err := h.job.SetSpec(spec); err != nil {
			t.Fatal(err)
		}
		if st := h.job.Status(); !st.Next.IsZero() {
			t.Errorf("next %s while suspended", st.Next)
		}
		if err := h.job.SetSpec(cron.Spec{}); !errors.Is(err, cron.ErrInvalidSpec) {
			t.Errorf("SetSpec(empty) = %v", err)
		}
	})
}

func TestJob_Kill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"), cron.Spec{
			Schedule:    sched(t, "@hourly", nil),
			Concurrency: cron.Allow,
			Retry:       cron.Retry{Attempts: 1, Delay: 3 * time.Hour},
		}, "")
		h.st.auto = func(r cron.Run) *cron.Result {
			if r.ID == 1 {
				return &cron.Result{ExitCode: 1}
			}
			return nil
		}
		h.run()
		h.step(2 * time.Hour) // run 1 failed and waits for its retry; run 2 runs
		r2 := h.st.last(t)
		r2.killOnStop = false
		errc := make(chan error, 1)
		go func() { errc <- h.job.Kill(t.Context(), "task removed") }()
		synctest.Wait()
		select {
		case err := <-errc:
			t.Fatalf("Kill returned before the run ended: %v", err)
		default:
		}
		equal(t, "stops", r2.stopReasons(), []string{"task removed"})
		r2.end(cron.Result{ExitCode: 143, Signal: "SIGTERM"})
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		equal(t, "records", h.records(), []string{"1.1 schedule failed", "2.1 schedule stopped"})
		th := h.history()
		if th.Runs[0].Message != "exit code 1; retry dropped: stopped: task removed" || th.Runs[1].Message != "stopped: task removed" {
			t.Errorf("messages %q, %q", th.Runs[0].Message, th.Runs[1].Message)
		}
		if len(h.job.Status().Active) != 0 {
			t.Error("runs still active after Kill")
		}
	})
}

func TestJob_NotRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, at(t, "2024-06-01 00:00:00 +0000"), cron.Spec{Schedule: sched(t, "@hourly", nil)}, "")
		if _, err := h.job.RunNow(t.Context()); !errors.Is(err, cron.ErrNotRunning) {
			t.Errorf("RunNow before Run: %v", err)
		}
		if err := h.job.Kill(t.Context(), "x"); !errors.Is(err, cron.ErrNotRunning) {
			t.Errorf("Kill before Run: %v", err)
		}
		spec := cron.Spec{Schedule: sched(t, "@daily", nil)}
		if err := h.job.SetSpec(spec); err != nil {
			t.Errorf("SetSpec before Run: %v", err)
		}
		h.run()
		if err := h.job.Run(t.Context()); err == nil {
			t.Error("a second Run at once was accepted")
		}
		if st := h.job.Status(); st.Schedule != "@daily" || !st.Next.Equal(at(t, "2024-06-02 00:00:00 +0000")) {
			t.Errorf("status %+v", st)
		}
		h.stop()
		if st := h.job.Status(); !st.Next.IsZero() {
			t.Errorf("next %s after Run returned", st.Next)
		}
	})
}

func TestNew_Errors(t *testing.T) {
	s, _ := cron.Parse("@daily", nil)
	good := cron.Options{Task: "t", Spec: cron.Spec{Schedule: s}, Starter: &fakeStarter{}, History: cron.NewHistory(t.TempDir())}
	for name, mutate := range map[string]func(*cron.Options){
		"no task":     func(o *cron.Options) { o.Task = "" },
		"no starter":  func(o *cron.Options) { o.Starter = nil },
		"no history":  func(o *cron.Options) { o.History = nil },
		"no schedule": func(o *cron.Options) { o.Spec.Schedule = cron.Schedule{} },
	} {
		o := good
		mutate(&o)
		if _, err := cron.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := cron.New(good); err != nil {
		t.Error(err)
	}
}

// startSignal is a Starter whose attempts end at once, telling each start on a channel.
type startSignal chan cron.Run

func (s startSignal) StartRun(_ context.Context, r cron.Run) (cron.Handle, error) {
	s <- r
	fr := &fakeRun{run: r, done: make(chan cron.Result, 1)}
	fr.end(cron.Result{})
	return fr, nil
}

// TestJob_RealClock runs a Job on the system clock: every second, two runs.
func TestJob_RealClock(t *testing.T) {
	starts := make(startSignal, 2)
	s, err := cron.Parse("@every 1s", nil)
	if err != nil {
		t.Fatal(err)
	}
	job, err := cron.New(cron.Options{Task: "tick", Spec: cron.Spec{Schedule: s, Concurrency: cron.Allow},
		Starter: starts, History: cron.NewHistory(t.TempDir()), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	var runs []cron.Run
	for len(runs) < 2 {
		select {
		case r := <-starts:
			runs = append(runs, r)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d runs in 10s of an every-second job", len(runs))
		}
	}
	if runs[1].Scheduled.Sub(runs[0].Scheduled) != time.Second || runs[1].ID != runs[0].ID+1 {
		t.Errorf("runs %+v", runs)
	}
}
