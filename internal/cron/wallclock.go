package cron

import "time"

// civil returns the wall time of t (in its location) as the same date and clock fields in UTC.
func civil(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// offsetAt returns loc's UTC offset at the instant unix, in seconds.
func offsetAt(unix int64, loc *time.Location) int64 {
	_, off := time.Unix(unix, 0).In(loc).Zone()
	return int64(off)
}

// nextPeriod returns the start of the zone period (constant UTC offset) after t's, or the zero time when t's period
// never ends. It may also return a boundary where the offset does not change (Go splits periods at year ends past a
// zone's table), which costs its callers nothing.
func nextPeriod(t time.Time) time.Time {
	_, stop := t.ZoneBounds()
	switch {
	case stop.IsZero():
		return stop
	case stop.After(t):
		return stop.In(t.Location())
	}
	// Go's ZoneBounds can end a period before t itself: for the last day of a year past the table of a zone whose
	// DST spans the new year (Australia/Lord_Howe, 2212-12-31). Step an hour, finding any offset change on the way
	// by bisection with Zone, which is right there.
	lo, hi := t.Unix(), t.Unix()+3600
	o := offsetAt(lo, t.Location())
	if offsetAt(hi, t.Location()) == o {
		return time.Unix(hi, 0).In(t.Location())
	}
	for lo+1 < hi {
		if mid := lo + (hi-lo)/2; offsetAt(mid, t.Location()) == o {
			lo = mid
		} else {
			hi = mid
		}
	}
	return time.Unix(hi, 0).In(t.Location())
}
