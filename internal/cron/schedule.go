package cron

import (
	"math"
	"math/bits"
	"time"
)

// searchYears bounds the search for the next fire time. A schedule that parses always fires within it: the only
// sparse case is February 29, at most 8 years apart (2096, 2104).
const searchYears = 8

// Schedule says when a cron task fires: the fields of a cron expression read in a time zone, or a fixed interval
// (@every). It is immutable and safe for concurrent use. The zero Schedule never fires.
type Schedule struct {
	expr  string         // as written, whitespace normalized
	loc   *time.Location // where the fields are read; UTC when none was given
	every time.Duration  // @every; 0 for a field schedule
	f     fields
}

// fields holds one bit per allowed value of each cron field, as robfig/cron's SpecSchedule does (bit 63 of dom and
// dow marks a field written as "*" or "?", which decides how the two day fields combine, see dayMatches).
type fields struct {
	second, minute, hour, dom, month, dow uint64
	// hourly is set when the hour field allows every hour: the schedule then follows real time across DST
	// transitions instead of wall-clock dates (see the package doc).
	hourly bool
}

// starBit is robfig/cron's mark of a field written as "*" (or "?").
const starBit = 1 << 63

// allHours has the bits 0..23 set.
const allHours = 1<<24 - 1

// String returns the expression as parsed, e.g. "30 2 * * *" or "@every 1h0m0s".
func (s Schedule) String() string { return s.expr }

// Location returns the time zone the schedule is read in.
func (s Schedule) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// IsZero reports whether s is the zero Schedule, which never fires.
func (s Schedule) IsZero() bool { return s.expr == "" }

// Equal reports whether s and o fire at the same times: same expression and same zone name.
func (s Schedule) Equal(o Schedule) bool {
	return s.expr == o.expr && s.Location().String() == o.Location().String()
}

// Next returns the first fire time strictly after the given time, in the schedule's zone, or the zero time when the
// schedule never fires again within 8 years. It is pure: no clock is read. The DST rule is in the package doc.
func (s Schedule) Next(after time.Time) time.Time {
	switch {
	case s.IsZero():
		return time.Time{}
	case s.every > 0:
		// Whole seconds, as robfig/cron's ConstantDelaySchedule: fire times stay on second boundaries.
		return after.Add(s.every - time.Duration(after.Nanosecond())).In(s.Location())
	}
	return s.f.next(after, s.Location())
}

// shortestInterval estimates the shortest time between two fire times from the first 1000 from 2024 on (within ten
// years); 0 when it fires once or never in that time.
func (s Schedule) shortestInterval() time.Duration {
	if s.every > 0 {
		return s.every
	}
	var iv time.Duration
	prev := s.Next(time.Date(2024, 1, 1, 0, 0, 0, 0, s.Location()))
	for range 1000 {
		n := s.Next(prev)
		if n.IsZero() || n.Year() > 2034 {
			break
		}
		if d := n.Sub(prev); iv == 0 || d < iv {
			iv = d
		}
		prev = n
	}
	return iv
}

// next implements Next for a field schedule. It walks the zone's periods of constant UTC offset from the one holding
// the argument: within a period the wall clock runs straight, so the first matching wall time at or after the
// period's (or the argument's) wall time that the period reaches is the answer. Between periods it applies the DST
// rule of the package doc: a fixed-hour schedule fires the wall times that a forward jump skipped at the jump, and
// does not fire again the wall times that a backward jump repeats; an hourly schedule does neither.
func (f *fields) next(after time.Time, loc *time.Location) time.Time {
	lo := after.Unix() + 1 // fire times are whole seconds, strictly after
	limit := civil(after.In(loc)).AddDate(searchYears, 0, 0)
	// Start in the period holding the second before lo, so that a transition at lo itself is crossed below.
	cur := time.Unix(lo-1, 0).In(loc)
	_, o := cur.Zone()
	off := int64(o)
	// floor is the wall time at which the previous period ended: after a backward jump, the wall times from the
	// period's start up to it were shown before.
	floor := int64(math.MinInt64)
	if start, _ := cur.ZoneBounds(); !start.IsZero() && !start.After(cur) {
		floor = start.Unix() + offsetAt(start.Unix()-1, loc)
	}
	for {
		wall := lo + off
		if !f.hourly {
			wall = max(wall, floor)
		}
		c := f.civilNext(time.Unix(wall, 0).UTC(), limit)
		if c.IsZero() {
			return time.Time{}
		}
		end := nextPeriod(cur)
		if end.IsZero() || c.Unix()-off < end.Unix() {
			return time.Unix(c.Unix()-off, 0).In(loc)
		}
		// Nothing left in this period: on to the next, which starts at end.
		_, o2 := end.Zone()
		next := int64(o2)
		if !f.hourly && next > off {
			// A forward jump skipped the wall times [end+off, end+next): when one matches, it runs at the jump.
			if g := f.civilNext(time.Unix(end.Unix()+off, 0).UTC(), limit); !g.IsZero() && g.Unix() < end.Unix()+next {
				return end
			}
		}
		floor = end.Unix() + off
		lo, off, cur = end.Unix(), next, end
	}
}

// civilNext returns the first wall time at or after c (a civil time held in UTC, whole seconds) that matches the
// fields, or the zero time past limit. Calendar arithmetic in UTC has no DST, which is what makes it simple; next
// applies the zone. Each step jumps to the next allowed value of the first field that does
// not match and resets the smaller ones.
func (f *fields) civilNext(c, limit time.Time) time.Time {
	for !c.After(limit) {
		y, mo, d := c.Date()
		h, mi, s := c.Clock()
		if m, ok := nextBit(f.month, int(mo), 12); !ok {
			c = time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC)
			continue
		} else if m != int(mo) {
			c = time.Date(y, time.Month(m), 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !f.dayMatches(c) {
			c = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if v, ok := nextBit(f.hour, h, 23); !ok {
			c = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
			continue
		} else if v != h {
			c = time.Date(y, mo, d, v, 0, 0, 0, time.UTC)
			continue
		}
		if v, ok := nextBit(f.minute, mi, 59); !ok {
			c = time.Date(y, mo, d, h+1, 0, 0, 0, time.UTC)
			continue
		} else if v != mi {
			c = time.Date(y, mo, d, h, v, 0, 0, time.UTC)
			continue
		}
		if v, ok := nextBit(f.second, s, 59); !ok {
			c = time.Date(y, mo, d, h, mi+1, 0, 0, time.UTC)
			continue
		} else if v != s {
			c = time.Date(y, mo, d, h, mi, v, 0, time.UTC)
			continue
		}
		return c
	}
	return time.Time{}
}

// nextBit returns the smallest value v in [from, hi] whose bit is set in mask, and false when there is none.
func nextBit(mask uint64, from, hi int) (int, bool) {
	m := mask & (1<<uint(hi+1) - 1) &^ (1<<uint(from) - 1)
	if m == 0 {
		return 0, false
	}
	return bits.TrailingZeros64(m), true
}

// dayMatches applies cron's day rule as robfig/cron and Vixie cron do: when either day field is "*", both must
// match (so the other one decides); when both are restricted, either may match ("0 0 1 * 1": the 1st and Mondays).
func (f *fields) dayMatches(c time.Time) bool {
	domOK := f.dom&(1<<uint(c.Day())) != 0
	dowOK := f.dow&(1<<uint(c.Weekday())) != 0
	if f.dom&starBit != 0 || f.dow&starBit != 0 {
		return domOK && dowOK
	}
	return domOK || dowOK
}
