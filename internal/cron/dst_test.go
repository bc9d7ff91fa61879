package cron

import (
	"testing"
	"time"
)

// bruteNext is the DST rule of the package doc written out second by second, as an oracle for Next: an hourly
// schedule fires at each instant whose wall time matches; a fixed-hour one at the first instant showing a matching
// wall time, and at a forward jump that skipped a matching wall time. It gives up after window.
func bruteNext(f *fields, after time.Time, loc *time.Location, window time.Duration) (time.Time, bool) {
	matches := func(w int64) bool {
		if f.second&(1<<uint(w%60)) == 0 || f.minute&(1<<uint(w/60%60)) == 0 { // cheap first (2024: w > 0)
			return false
		}
		c := time.Unix(w, 0).UTC()
		return f.civilNext(c, c).Equal(c)
	}
	prev := offsetAt(after.Unix(), loc)
	for x := after.Unix() + 1; x <= after.Unix()+int64(window/time.Second); x++ {
		off, old := offsetAt(x, loc), prev
		prev = off
		if !f.hourly && off > old { // a forward jump at x skipped the wall times [x+old, x+off)
			for w := x + old; w < x+off; w++ {
				if matches(w) {
					return time.Unix(x, 0).In(loc), true
				}
			}
		}
		wall := x + off
		if !matches(wall) {
			continue
		}
		if f.hourly {
			return time.Unix(x, 0).In(loc), true
		}
		shown := false // did an earlier instant (within a day) show this wall time?
		for y := x - 26*3600; y < x; y += 600 {
			if o := offsetAt(y, loc); o != off && wall-o < x && offsetAt(wall-o, loc) == o {
				shown = true
				break
			}
		}
		if !shown {
			return time.Unix(x, 0).In(loc), true
		}
	}
	return time.Time{}, false
}

// TestSchedule_MatchesBruteForce compares Next with the oracle around every transition of 2024 in zones with
// 1-hour, 30-minute and midnight transitions.
func TestSchedule_MatchesBruteForce(t *testing.T) {
	exprs := []string{"30 2 * * *", "30 1 * * *", "*/15 2 * * *", "30 * * * *", "*/20 30 1 * * *", "0 */30 * * * *",
		"45 1 * * *", "15 * * * *", "0 0 * * *", "0 2-3 * * *", "*/10 1-2 * * *"}
	const window = 3 * time.Hour
	for _, zone := range []string{"America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Havana"} {
		loc := mustZone(t, zone)
		var transitions []time.Time
		for p := time.Date(2024, 1, 1, 0, 0, 0, 0, loc); ; {
			p = nextPeriod(p)
			if p.Year() > 2024 {
				break
			}
			transitions = append(transitions, p)
		}
		if len(transitions) != 2 {
			t.Fatalf("%s: transitions %v", zone, transitions)
		}
		for _, expr := range exprs {
			s := mustParse(t, expr, loc)
			for _, tr := range transitions {
				for _, d := range []time.Duration{-90 * time.Minute, -30 * time.Minute, -time.Second, 0, 30 * time.Minute} {
					after := tr.Add(d)
					got := s.Next(after)
					want, ok := bruteNext(&s.f, after, loc, window)
					if !ok {
						want = after.Add(window)
						if got.After(want) {
							continue
						}
					}
					if !got.Equal(want) {
						t.Errorf("%s in %s, Next(%s) = %s, want %s", expr, zone, after.Format(layout), got.Format(layout), want.Format(layout))
					}
				}
			}
		}
	}
}
