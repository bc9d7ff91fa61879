package cron

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	robfig "github.com/robfig/cron/v3"
)

// field describes one position of a cron expression, for parsing and for error messages.
type field struct {
	name string
	opt  robfig.ParseOption
	hint string
}

// cronFields are the six positions, seconds first; a 5-field expression has no seconds (they are 0).
var cronFields = [6]field{
	{"second", robfig.Second, `seconds are 0-59, e.g. "*/10 * * * * *" (every 10 seconds)`},
	{"minute", robfig.Minute, `minutes are 0-59, e.g. "*/15 * * * *" (every 15 minutes)`},
	{"hour", robfig.Hour, `hours are 0-23, e.g. "0 3 * * *" (03:00 every day)`},
	{"day-of-month", robfig.Dom, `days of the month are 1-31, e.g. "0 3 1 * *" (03:00 on the 1st)`},
	{"month", robfig.Month, `months are 1-12 or jan-dec, e.g. "0 3 1 1,7 *" (January and July)`},
	{"day-of-week", robfig.Dow, `days of the week are 0-6 or sun-sat (0 is Sunday, 7 is not allowed), e.g. "0 3 * * 1-5" (weekdays)`},
}

// descriptors are the named schedules, as 6-field expressions.
var descriptors = map[string]string{
	"@yearly":   "0 0 0 1 1 *",
	"@annually": "0 0 0 1 1 *",
	"@monthly":  "0 0 0 1 * *",
	"@weekly":   "0 0 0 * * 0",
	"@daily":    "0 0 0 * * *",
	"@midnight": "0 0 0 * * *",
	"@hourly":   "0 0 * * * *",
}

const descriptorList = "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>"

// Parse parses a schedule read in loc (nil: UTC). It accepts
//
//   - 5 fields: minute hour day-of-month month day-of-week ("30 2 * * *": 02:30 every day), with *, ?, lists (1,3),
//     ranges (1-5), steps (*/15, 10-50/20) and names (jan-dec, sun-sat), as robfig/cron's parser;
//   - 6 fields, the first being seconds ("*/10 * * * * *");
//   - @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly;
//   - @every <duration> ("@every 1h30m"), a whole number of seconds, at least 1s, counted in real time.
//
// A time zone prefix (CRON_TZ=, TZ=) is refused: the task's timezone key says where the schedule is read. An
// expression that can never fire ("0 0 30 2 *") is refused too. Errors satisfy errors.Is(err, ErrInvalidSchedule)
// and say which field is wrong, with an example.
func Parse(expr string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	words := strings.Fields(expr)
	norm := strings.Join(words, " ")
	if len(words) == 0 {
		return Schedule{}, invalid(`empty schedule: give 5 fields such as "30 2 * * *" (02:30 every day) or a descriptor such as "@daily"`)
	}
	for _, p := range []string{"CRON_TZ=", "TZ="} {
		if zone, ok := strings.CutPrefix(words[0], p); ok {
			return Schedule{}, invalid("schedule %q: a time zone prefix is not allowed in the schedule; remove %q and set timezone = %q",
				norm, words[0], zone)
		}
	}
	if strings.HasPrefix(words[0], "@") {
		return parseDescriptor(norm, words, loc)
	}
	if len(words) < 5 || len(words) > 6 {
		return Schedule{}, invalid(`schedule %q: %d fields, want 5 (minute hour day-of-month month day-of-week, e.g. "30 2 * * *") or 6 with a leading seconds field`,
			norm, len(words))
	}
	vals := words
	first := 0
	if len(words) == 5 {
		vals = append([]string{"0"}, words...)
		first = 1
	}
	f, err := parseFields(vals, first)
	if err != nil {
		return Schedule{}, invalid("schedule %q: %v", norm, err)
	}
	return Schedule{expr: norm, loc: loc, f: f}, nil
}

// parseFields parses six field values, seconds first; first is the index of the first field the operator wrote,
// so that the seconds of a 5-field expression are never blamed.
func parseFields(vals []string, first int) (fields, error) {
	var bits [6]uint64
	for i, v := range vals {
		fd := cronFields[i]
		if strings.ContainsAny(v, "=@") {
			// robfig/cron reads "TZ=" and "@" only at the start of a whole expression (and slices past the end of
			// "TZ=x" without a space): never hand it one.
			return fields{}, fmt.Errorf("%s field %q: unexpected %q; %s", fd.name, v, string(v[strings.IndexAny(v, "=@")]), fd.hint)
		}
		sched, err := robfig.NewParser(fd.opt).Parse(v)
		if err != nil {
			if i < first {
				return fields{}, fmt.Errorf("%v", err) // not reachable: the default seconds are "0"
			}
			return fields{}, fmt.Errorf("%s field %q: %s; %s", fd.name, v, explain(err), fd.hint)
		}
		ss := sched.(*robfig.SpecSchedule)
		bits[i] = [6]uint64{ss.Second, ss.Minute, ss.Hour, ss.Dom, ss.Month, ss.Dow}[i]
	}
	f := fields{second: bits[0], minute: bits[1], hour: bits[2], dom: bits[3], month: bits[4], dow: bits[5]}
	f.hourly = f.hour&allHours == allHours
	if why := f.never(); why != "" {
		return fields{}, fmt.Errorf("never fires: %s", why)
	}
	return f, nil
}

// parseDescriptor parses @name and @every.
func parseDescriptor(norm string, words []string, loc *time.Location) (Schedule, error) {
	name := words[0]
	if name == "@every" {
		if len(words) != 2 {
			return Schedule{}, invalid(`schedule %q: @every takes one duration, e.g. "@every 1h30m"`, norm)
		}
		d, err := time.ParseDuration(words[1])
		switch {
		case err != nil:
			return Schedule{}, invalid(`schedule %q: %q is not a duration (units h, m, s), e.g. "@every 1h30m"`, norm, words[1])
		case d < time.Second:
			return Schedule{}, invalid(`schedule %q: the interval must be at least 1s`, norm)
		case d%time.Second != 0:
			return Schedule{}, invalid(`schedule %q: the interval must be a whole number of seconds, e.g. "@every %s"`, norm, d.Round(time.Second))
		}
		return Schedule{expr: "@every " + d.String(), loc: loc, every: d}, nil
	}
	exp, ok := descriptors[name]
	switch {
	case !ok && descriptors[strings.ToLower(name)] != "" || strings.ToLower(name) == "@every":
		return Schedule{}, invalid("schedule %q: descriptors are lower case: %q", norm, strings.ToLower(name))
	case name == "@reboot":
		return Schedule{}, invalid(`schedule %q: @reboot is not supported: use a task of kind "job" to run once at start`, norm)
	case !ok:
		return Schedule{}, invalid("schedule %q: unknown descriptor %q (known: %s)", norm, name, descriptorList)
	case len(words) != 1:
		return Schedule{}, invalid("schedule %q: %s takes no fields after it", norm, name)
	}
	f, err := parseFields(strings.Fields(exp), 0)
	if err != nil {
		panic("cron: bad descriptor table: " + err.Error())
	}
	return Schedule{expr: name, loc: loc, f: f}, nil
}

// never says why the fields can never match, or "". With "*" in day-of-week only day-of-month and month decide
// (see dayMatches), and some selected day must exist in some selected month; February counts 29 days, which
// occur within the 8 years Next searches.
func (f *fields) never() string {
	if f.dow&starBit == 0 || f.dom&starBit != 0 {
		return "" // a weekday field that restricts, or any day of the month: always some day
	}
	minDay := 0
	for d := 1; d <= 31; d++ {
		if f.dom&(1<<uint(d)) != 0 {
			minDay = d
			break
		}
	}
	var months []string
	for m := time.January; m <= time.December; m++ {
		if f.month&(1<<uint(m)) == 0 {
			continue
		}
		if minDay <= daysIn(m) {
			return ""
		}
		months = append(months, m.String())
	}
	if len(months) == 0 { // not reachable: robfig/cron refuses an empty field
		return "no month selected"
	}
	verb := "has"
	list := months[0]
	if n := len(months); n > 1 {
		verb = "have"
		list = strings.Join(months[:n-1], ", ") + " and " + months[n-1]
	}
	return fmt.Sprintf("%s %s no day %d", list, verb, minDay)
}

// daysIn returns the most days month m can have.
func daysIn(m time.Month) int {
	switch m {
	case time.February:
		return 29
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// robfigErrors rewrites robfig/cron's field errors into plain words; anything else is shown as it comes.
var robfigErrors = []struct {
	re   *regexp.Regexp
	text string
}{
	{regexp.MustCompile(`^end of range \((\d+)\) above maximum \((\d+)\)`), "$1 is above the maximum $2"},
	{regexp.MustCompile(`^beginning of range \((\d+)\) below minimum \((\d+)\)`), "$1 is below the minimum $2"},
	{regexp.MustCompile(`^beginning of range \((\d+)\) beyond end of range \((\d+)\)`), "the range $1-$2 runs backwards"},
	{regexp.MustCompile(`^failed to parse int from (.*?): .*`), `"$1" is not a number or name`},
	{regexp.MustCompile(`^step of range should be a positive number.*`), "the step after / must be at least 1"},
	{regexp.MustCompile(`^too many (hyphens|slashes).*`), "too many $1"},
}

func explain(err error) string {
	msg := err.Error()
	for _, r := range robfigErrors {
		if m := r.re.FindStringSubmatchIndex(msg); m != nil {
			return string(r.re.ExpandString(nil, r.text, msg, m))
		}
	}
	return msg
}

func invalid(format string, args ...any) error {
	return &operatorError{msg: fmt.Sprintf(format, args...), kind: ErrInvalidSchedule}
}
