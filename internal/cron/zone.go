package cron

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ValidateZone loads an IANA time zone ("Europe/Berlin", "UTC"). "" is UTC, as for time.LoadLocation. "Local" is
// refused: it is whatever zone the host happens to be set to (glmd's servers are kept in UTC), so a task file would
// mean different times on different machines. An unknown name satisfies errors.Is(err, ErrUnknownZone) and, when a
// close name exists, suggests it: "Europe/Pari" is not a known time zone (did you mean "Europe/Paris"?).
func ValidateZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, &operatorError{
			msg:  `"Local" is the host's own zone, which differs between machines: name an IANA zone such as "UTC" or "Europe/Berlin"`,
			kind: ErrUnknownZone,
		}
	}
	loc, err := time.LoadLocation(name)
	if err == nil {
		return loc, nil
	}
	msg := fmt.Sprintf("%q is not a known time zone", name)
	if s := suggestZone(name, zoneNames()); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else {
		msg += ` (IANA names such as "UTC", "Europe/Berlin", "America/New_York")`
	}
	return nil, &operatorError{msg: msg, kind: ErrUnknownZone}
}

// suggestZone returns the name in names closest to name, compared without case, when it is close enough to be a
// typo (edit distance at most 1 + len/6), or "".
func suggestZone(name string, names []string) string {
	want := strings.ToLower(name)
	best, bestD := "", 2+len(name)/6
	for _, n := range names {
		if d := editDistance(want, strings.ToLower(n), bestD); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or limit when it is limit or more.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

// zoneDirs are where time.LoadLocation looks on Unix ($ZONEINFO first).
var zoneDirs = []string{"/usr/share/zoneinfo/", "/usr/share/lib/zoneinfo/", "/usr/lib/locale/TZ/", "/etc/zoneinfo/"}

// zoneNames lists the zone names of the first zoneinfo directory found, once; nil when there is none (a binary
// that relies on the embedded time/tzdata then suggests nothing).
var zoneNames = sync.OnceValue(func() []string {
	dirs := zoneDirs
	if z := os.Getenv("ZONEINFO"); z != "" {
		dirs = append([]string{z}, dirs...)
	}
	for _, dir := range dirs {
		if names := listZones(os.DirFS(dir)); len(names) > 0 {
			return names
		}
	}
	return nil
})

// listZones returns the names of the zone files in fsys: regular files that begin with the TZif magic, outside
// the posix/ and right/ copies.
func listZones(fsys fs.FS) []string {
	var names []string
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil
		case d.IsDir() && (p == "posix" || p == "right"):
			return fs.SkipDir
		case d.IsDir() || strings.Contains(filepath.Base(p), "."):
			return nil
		}
		f, err := fsys.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		magic := make([]byte, 4)
		if n, _ := f.Read(magic); n == 4 && string(magic) == "TZif" {
			names = append(names, p)
		}
		return nil
	})
	return names
}
