package cron

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests need the zones even on a machine without a zoneinfo directory

	robfig "github.com/robfig/cron/v3"
)

const layout = "2006-01-02 15:04:05 -0700"

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := ValidateZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustParse(t testing.TB, expr string, loc *time.Location) Schedule {
	t.Helper()
	s, err := Parse(expr, loc)
	if err != nil {
		t.Fatalf("Parse(%q): %v", expr, err)
	}
	return s
}

func nextN(s Schedule, from time.Time, n int) []string {
	var got []string
	for t := from; len(got) < n; {
		t = s.Next(t)
		if t.IsZero() {
			got = append(got, "never")
			break
		}
		got = append(got, t.Format(layout))
	}
	return got
}

// TestSchedule_Next walks fire times in several zones, across the DST transitions of 2024:
// New York 03-10 02:00->03:00 and 11-03 02:00->01:00; Berlin 03-31 02:00->03:00 and 10-27 03:00->02:00;
// Lord Howe (30 minutes) 04-07 02:00->01:30 and 10-06 02:00->02:30; Havana at midnight, 03-10 00:00->01:00 and
// 11-03 01:00->00:00; Kolkata has none.
func TestSchedule_Next(t *testing.T) {
	tests := []struct {
		name, zone, expr, from string
		want                   []string
	}{
		// Fixed-hour schedules: a skipped wall time runs at the end of the gap, a repeated one once.
		{"ny daily spring", "America/New_York", "30 2 * * *", "2024-03-09 12:00:00 -0500",
			[]string{"2024-03-10 03:00:00 -0400", "2024-03-11 02:30:00 -0400"}},
		{"ny daily fall", "America/New_York", "30 1 * * *", "2024-11-02 12:00:00 -0400",
			[]string{"2024-11-03 01:30:00 -0400", "2024-11-04 01:30:00 -0500"}},
		{"ny daily fall from the repeated hour", "America/New_York", "30 1 * * *", "2024-11-03 01:15:00 -0500",
			[]string{"2024-11-04 01:30:00 -0500"}},
		{"ny skipped times collapse into one run", "America/New_York", "*/15 2 * * *", "2024-03-10 01:00:00 -0500",
			[]string{"2024-03-10 03:00:00 -0400", "2024-03-11 02:00:00 -0400", "2024-03-11 02:15:00 -0400"}},
		{"ny seconds in a fixed hour, fall", "America/New_York", "*/20 30 1 * * *", "2024-11-03 01:00:00 -0400",
			[]string{"2024-11-03 01:30:00 -0400", "2024-11-03 01:30:20 -0400", "2024-11-03 01:30:40 -0400", "2024-11-04 01:30:00 -0500"}},
		{"ny minutes in a fixed hour, from the first pass", "America/New_York", "*/5 1 * * *", "2024-11-03 01:50:00 -0400",
			[]string{"2024-11-03 01:55:00 -0400", "2024-11-04 01:00:00 -0500"}},
		{"ny daily at midnight unaffected", "America/New_York", "@daily", "2024-03-09 12:00:00 -0500",
			[]string{"2024-03-10 00:00:00 -0500", "2024-03-11 00:00:00 -0400"}},
		// Hourly schedules follow real time: nothing in the gap, both passes of the repeated hour.
		{"ny hourly spring", "America/New_York", "30 * * * *", "2024-03-10 00:00:00 -0500",
			[]string{"2024-03-10 00:30:00 -0500", "2024-03-10 01:30:00 -0500", "2024-03-10 03:30:00 -0400", "2024-03-10 04:30:00 -0400"}},
		{"ny hourly fall", "America/New_York", "30 * * * *", "2024-11-03 00:00:00 -0400",
			[]string{"2024-11-03 00:30:00 -0400", "2024-11-03 01:30:00 -0400", "2024-11-03 01:30:00 -0500", "2024-11-03 02:30:00 -0500"}},
		{"ny every 5 minutes, from the first pass", "America/New_York", "*/5 * * * *", "2024-11-03 01:50:00 -0400",
			[]string{"2024-11-03 01:55:00 -0400", "2024-11-03 01:00:00 -0500", "2024-11-03 01:05:00 -0500"}},
		{"ny seconds hourly, fall", "America/New_York", "0 */30 * * * *", "2024-11-03 00:45:00 -0400",
			[]string{"2024-11-03 01:00:00 -0400", "2024-11-03 01:30:00 -0400", "2024-11-03 01:00:00 -0500", "2024-11-03 01:30:00 -0500", "2024-11-03 02:00:00 -0500"}},
		{"ny seconds hourly, spring", "America/New_York", "0 */30 * * * *", "2024-03-10 01:15:00 -0500",
			[]string{"2024-03-10 01:30:00 -0500", "2024-03-10 03:00:00 -0400", "2024-03-10 03:30:00 -0400"}},
		{"ny @hourly fall", "America/New_York", "@hourly", "2024-11-03 00:30:00 -0400",
			[]string{"2024-11-03 01:00:00 -0400", "2024-11-03 01:00:00 -0500", "2024-11-03 02:00:00 -0500"}},
		// @every counts real time.
		{"ny every hour spring", "America/New_York", "@every 1h", "2024-03-10 01:30:00 -0500",
			[]string{"2024-03-10 03:30:00 -0400", "2024-03-10 04:30:00 -0400"}},
		{"every drops nanoseconds", "UTC", "@every 90s", "2024-01-01 00:00:00 +0000",
			[]string{"2024-01-01 00:01:30 +0000", "2024-01-01 00:03:00 +0000"}},
		{"berlin daily spring", "Europe/Berlin", "30 2 * * *", "2024-03-30 12:00:00 +0100",
			[]string{"2024-03-31 03:00:00 +0200", "2024-04-01 02:30:00 +0200"}},
		{"berlin daily fall", "Europe/Berlin", "30 2 * * *", "2024-10-26 12:00:00 +0200",
			[]string{"2024-10-27 02:30:00 +0200", "2024-10-28 02:30:00 +0100"}},
		{"berlin hourly fall", "Europe/Berlin", "0 * * * *", "2024-10-27 01:30:00 +0200",
			[]string{"2024-10-27 02:00:00 +0200", "2024-10-27 02:00:00 +0100", "2024-10-27 03:00:00 +0100"}},
		{"lord howe daily spring", "Australia/Lord_Howe", "15 2 * * *", "2024-10-05 12:00:00 +1030",
			[]string{"2024-10-06 02:30:00 +1100", "2024-10-07 02:15:00 +1100"}},
		{"lord howe daily fall", "Australia/Lord_Howe", "45 1 * * *", "2024-04-06 12:00:00 +1100",
			[]string{"2024-04-07 01:45:00 +1100", "2024-04-08 01:45:00 +1030"}},
		{"lord howe hourly fall", "Australia/Lord_Howe", "45 * * * *", "2024-04-07 00:00:00 +1100",
			[]string{"2024-04-07 00:45:00 +1100", "2024-04-07 01:45:00 +1100", "2024-04-07 01:45:00 +1030", "2024-04-07 02:45:00 +1030"}},
		{"lord howe hourly spring", "Australia/Lord_Howe", "15 * * * *", "2024-10-06 01:00:00 +1030",
			[]string{"2024-10-06 01:15:00 +1030", "2024-10-06 03:15:00 +1100"}},
		{"havana midnight gap", "America/Havana", "@daily", "2024-03-09 12:00:00 -0500",
			[]string{"2024-03-10 01:00:00 -0400", "2024-03-11 00:00:00 -0400"}},
		{"havana midnight repeated", "America/Havana", "0 0 * * *", "2024-11-02 12:00:00 -0400",
			[]string{"2024-11-03 00:00:00 -0400", "2024-11-04 00:00:00 -0500"}},
		{"kolkata weekdays", "Asia/Kolkata", "0 9 * * 1-5", "2024-06-07 10:00:00 +0530",
			[]string{"2024-06-10 09:00:00 +0530", "2024-06-11 09:00:00 +0530"}},
		{"kolkata half-hour offset, hourly", "Asia/Kolkata", "0 * * * *", "2024-06-07 10:10:00 +0530",
			[]string{"2024-06-07 11:00:00 +0530", "2024-06-07 12:00:00 +0530"}},
		{"utc february 29", "UTC", "0 0 29 2 *", "2024-03-01 00:00:00 +0000",
			[]string{"2028-02-29 00:00:00 +0000"}},
		{"utc day-of-month or day-of-week", "UTC", "0 0 1 * 1", "2024-06-01 00:00:00 +0000",
			[]string{"2024-06-03 00:00:00 +0000", "2024-06-10 00:00:00 +0000", "2024-06-17 00:00:00 +0000", "2024-06-24 00:00:00 +0000", "2024-07-01 00:00:00 +0000"}},
		{"utc yearly", "UTC", "@yearly", "2024-06-01 00:00:00 +0000",
			[]string{"2025-01-01 00:00:00 +0000"}},
		{"utc last second of the year", "UTC", "59 59 23 31 12 *", "2024-12-31 23:59:59 +0000",
			[]string{"2025-12-31 23:59:59 +0000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustZone(t, tt.zone)
			from, err := time.Parse(layout, tt.from)
			if err != nil {
				t.Fatal(err)
			}
			got := nextN(mustParse(t, tt.expr, loc), from, len(tt.want))
			if strings.Join(got, ", ") != strings.Join(tt.want, ", ") {
				t.Errorf("%s in %s after %s:\n got %s\nwant %s", tt.expr, tt.zone, tt.from, strings.Join(got, ", "), strings.Join(tt.want, ", "))
			}
		})
	}
}

// TestSchedule_Year checks the rule over a whole year of transitions: a fixed-hour daily schedule fires exactly
// once on every local date, an hourly one exactly every real hour (in zones whose transitions are whole hours).
func TestSchedule_Year(t *testing.T) {
	for _, zone := range []string{"America/New_York", "Europe/Berlin", "Australia/Sydney", "America/Havana", "Asia/Kolkata", "UTC"} {
		t.Run(zone, func(t *testing.T) {
			loc := mustZone(t, zone)
			from := time.Date(2024, 1, 1, 0, 0, 0, 0, loc)
			to := from.AddDate(1, 0, 0)
			for _, expr := range []string{"30 2 * * *", "30 1 * * *", "0 0 * * *", "0 3 * * *"} {
				days := map[string]int{}
				for at := mustParse(t, expr, loc).Next(from.Add(-time.Second)); at.Before(to); {
					days[at.Format("2006-01-02")]++
					next := mustParse(t, expr, loc).Next(at)
					if !next.After(at) {
						t.Fatalf("%s: Next(%s) = %s", expr, at, next)
					}
					at = next
				}
				if len(days) != 366 { // 2024 is a leap year
					t.Errorf("%s: fired on %d dates in 2024, want 366", expr, len(days))
				}
				for d, n := range days {
					if n != 1 {
						t.Errorf("%s: fired %d times on %s", expr, n, d)
					}
				}
			}
			s := mustParse(t, "30 * * * *", loc)
			prev := s.Next(from)
			for at := s.Next(prev); at.Before(to); prev, at = at, s.Next(at) {
				if at.Sub(prev) != time.Hour {
					t.Fatalf("30 * * * *: %s after %s, want one real hour", at.Format(layout), prev.Format(layout))
				}
			}
		})
	}
}

// TestSchedule_MatchesRobfig compares Next with robfig/cron's in zones without DST, where robfig is right.
func TestSchedule_MatchesRobfig(t *testing.T) {
	parts := [][]string{
		{"0", "*/10", "5,35", "0-30/15"},
		{"*", "0", "*/7", "10-20", "59"},
		{"*", "0", "9-17", "*/5", "23"},
		{"*", "1", "15,31", "29", "1-7", "?"},
		{"*", "2", "1-6", "*/4", "feb,aug", "12"},
		{"*", "0", "1-5", "sat,sun", "?", "3"},
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	parser := robfig.NewParser(robfig.Second | robfig.Minute | robfig.Hour | robfig.Dom | robfig.Month | robfig.Dow)
	for _, zone := range []string{"UTC", "Asia/Kolkata"} {
		loc := mustZone(t, zone)
		for range 300 {
			var f []string
			for _, p := range parts {
				f = append(f, p[rnd.IntN(len(p))])
			}
			expr := strings.Join(f, " ")
			ours, err := Parse(expr, loc)
			if err != nil {
				continue // never fires, e.g. February 31
			}
			theirs, err := parser.Parse(expr)
			if err != nil {
				t.Fatalf("robfig refuses %q: %v", expr, err)
			}
			at := time.Date(2024, 1, 1, 0, 0, 0, 0, loc).Add(time.Duration(rnd.Int64N(int64(365 * 24 * time.Hour))))
			a, b := at, at.In(loc)
			for range 20 {
				a, b = ours.Next(a), theirs.Next(b)
				if !a.Equal(b) {
					t.Fatalf("%q in %s: ours %s, robfig %s", expr, zone, a.Format(layout), b.Format(layout))
				}
				if a.IsZero() {
					break
				}
			}
		}
	}
}

func TestParse_Errors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"", "empty schedule"},
		{"   ", "empty schedule"},
		{"0 0 * *", `schedule "0 0 * *": 4 fields, want 5 (minute hour day-of-month month day-of-week, e.g. "30 2 * * *") or 6 with a leading seconds field`},
		{"0 0 * * * * *", "7 fields, want 5"},
		{"0 25 * * *", `schedule "0 25 * * *": hour field "25": 25 is above the maximum 23; hours are 0-23, e.g. "0 3 * * *" (03:00 every day)`},
		{"61 * * * *", `minute field "61": 61 is above the maximum 59`},
		{"60 * * * * *", `second field "60": 60 is above the maximum 59`},
		{"0 0 0 * *", `day-of-month field "0": 0 is below the minimum 1`},
		{"0 0 * 13 *", `month field "13": 13 is above the maximum 12; months are 1-12 or jan-dec`},
		{"0 0 * * 7", `day-of-week field "7": 7 is above the maximum 6; days of the week are 0-6 or sun-sat (0 is Sunday, 7 is not allowed)`},
		{"0 0 * * mon-sun", `day-of-week field "mon-sun": the range 1-0 runs backwards`},
		{"x * * * *", `minute field "x": "x" is not a number or name`},
		{"*/0 * * * *", `minute field "*/0": the step after / must be at least 1`},
		{"1-2-3 * * * *", `minute field "1-2-3": too many hyphens`},
		{"1/2/3 * * * *", `minute field "1/2/3": too many slashes`},
		{"CRON_TZ=Europe/Berlin 0 3 * * *", `schedule "CRON_TZ=Europe/Berlin 0 3 * * *": a time zone prefix is not allowed in the schedule; remove "CRON_TZ=Europe/Berlin" and set timezone = "Europe/Berlin"`},
		{"TZ=UTC * * * * *", `set timezone = "UTC"`},
		{"TZ=", `a time zone prefix is not allowed`},
		{"0 3 * * TZ=x", `day-of-week field "TZ=x": unexpected "="`},
		{"0 @daily * * *", `hour field "@daily": unexpected "@"`},
		{"@dayly", `schedule "@dayly": unknown descriptor "@dayly" (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>)`},
		{"@Daily", `descriptors are lower case: "@daily"`},
		{"@daily 5", "@daily takes no fields after it"},
		{"@every", "@every takes one duration"},
		{"@every 500ms", "the interval must be at least 1s"},
		{"@every -1s", "the interval must be at least 1s"},
		{"@every 1.5s", `the interval must be a whole number of seconds, e.g. "@every 2s"`},
		{"@every x", `"x" is not a duration`},
		{"@reboot", "@reboot is not supported"},
		{"0 0 30 2 *", `schedule "0 0 30 2 *": never fires: February has no day 30`},
		{"0 0 30,31 feb *", "never fires: February has no day 30"},
		{"0 0 31 4,6,9,11 *", "never fires: April, June, September and November have no day 31"},
		{"0 0 31 2,4 ?", "never fires: February and April have no day 31"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s, err := Parse(tt.expr, time.UTC)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tt.expr, s)
			}
			if !errors.Is(err, ErrInvalidSchedule) {
				t.Errorf("error %v is not ErrInvalidSchedule", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q):\n got %v\nwant it to contain %s", tt.expr, err, tt.want)
			}
		})
	}
}

func TestParse_Valid(t *testing.T) {
	for _, tt := range []struct{ expr, str string }{
		{"30  2 * * *", "30 2 * * *"},
		{"0 0 31 2 mon", "0 0 31 2 mon"}, // both day fields restricted: Mondays in February
		{"0 0 29 2 *", "0 0 29 2 *"},
		{"@every 1h30m", "@every 1h30m0s"},
		{"@midnight", "@midnight"},
		{"15,45 */3 1-15 jan,jul ?", "15,45 */3 1-15 jan,jul ?"},
	} {
		s, err := Parse(tt.expr, nil)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.expr, err)
			continue
		}
		if s.String() != tt.str || s.Location() != time.UTC {
			t.Errorf("Parse(%q) = %q in %s, want %q in UTC", tt.expr, s, s.Location(), tt.str)
		}
	}
	var zero Schedule
	if !zero.IsZero() || !zero.Next(time.Now()).IsZero() {
		t.Error("the zero Schedule fires")
	}
	a := mustParse(t, "0 3 * * *", mustZone(t, "Europe/Berlin"))
	b := mustParse(t, "0  3 * * *", mustZone(t, "Europe/Berlin"))
	c := mustParse(t, "0 3 * * *", mustZone(t, "Europe/Paris"))
	if !a.Equal(b) || a.Equal(c) {
		t.Errorf("Equal: same %v, other zone %v", a.Equal(b), a.Equal(c))
	}
}

// seeds reads testdata/schedules.txt.
func seeds(t testing.TB) []string {
	f, err := os.Open("testdata/schedules.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

var fuzzZones = []string{"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "America/Havana", "Pacific/Apia"}

// FuzzParseSchedule: Parse never panics, and a schedule it accepts has a Next strictly after its argument (or
// none), again and again.
func FuzzParseSchedule(f *testing.F) {
	for i, s := range seeds(f) {
		f.Add(s, uint8(i), int64(1710050000+i*86400*37))
	}
	f.Fuzz(func(t *testing.T, expr string, zone uint8, unix int64) {
		loc := mustZone(t, fuzzZones[int(zone)%len(fuzzZones)])
		s, err := Parse(expr, loc)
		if err != nil {
			if !errors.Is(err, ErrInvalidSchedule) {
				t.Fatalf("Parse(%q): error %v is not ErrInvalidSchedule", expr, err)
			}
			return
		}
		at := time.Unix(unix%(1<<36), 0) // years 1970..4147 and back
		for range 5 {
			n := s.Next(at)
			if n.IsZero() {
				return
			}
			if !n.After(at) {
				t.Fatalf("%q in %s: Next(%s) = %s, not after", expr, loc, at, n)
			}
			at = n
		}
	})
}

func TestParse_Testdata(t *testing.T) {
	for _, expr := range seeds(t) {
		_, err := Parse(expr, time.UTC)
		if err != nil && !errors.Is(err, ErrInvalidSchedule) {
			t.Errorf("Parse(%q): %v", expr, err)
		}
	}
}

func BenchmarkNext(b *testing.B) {
	ny := mustZone(b, "America/New_York")
	for _, bc := range []struct{ expr, from string }{
		{"30 2 * * *", "2024-06-01 00:00:00 -0400"},
		{"*/5 * * * *", "2024-06-01 00:00:00 -0400"},
		{"*/10 * * * * *", "2024-06-01 00:00:00 -0400"},
		{"*/10 * * * * *", "2024-11-03 01:00:00 -0400"}, // the repeated hour: the worst case
		{"0 0 29 2 *", "2024-06-01 00:00:00 -0400"},
		{"@every 1h", "2024-06-01 00:00:00 -0400"},
	} {
		b.Run(bc.expr+" from "+bc.from[:16], func(b *testing.B) {
			s := mustParse(b, bc.expr, ny)
			from, _ := time.Parse(layout, bc.from)
			for b.Loop() {
				s.Next(from)
			}
		})
	}
}

func ExampleParse() {
	loc, _ := ValidateZone("America/New_York")
	s, _ := Parse("30 2 * * *", loc)
	at := time.Date(2024, 3, 9, 12, 0, 0, 0, loc)
	for range 2 {
		at = s.Next(at)
		fmt.Println(at)
	}
	// Output:
	// 2024-03-10 03:00:00 -0400 EDT
	// 2024-03-11 02:30:00 -0400 EDT
}
