package config

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// keySet describes the keys one table may hold.
type keySet struct {
	keys map[string]*keySet // a nil entry is a value, not a table
	free bool               // any key may appear (env, ports); the decoder checks names and values
	// array: the key holds an array of tables ([[resources.io]]) whose
	// entries have these keys. The decoder checks them, so that an error can
	// name the entry ("resources.io[1].read_bps"); checkKeys stops there.
	array bool
	// later names keys that a later version of glmd will know, so that a
	// file written for it fails with a clear word instead of a typo hint.
	later map[string]bool
	// alias maps names other tools use for a key (systemd, Docker), squashed
	// (see squash), to ours: too far from ours for a typo hint, too common
	// to leave without one.
	alias map[string]string
}

// checkKeys reports every key the schema does not know, in document order.
// Keys below a value (a table where a value belongs) are left to the type
// check of that value; keys below an unknown table are not repeated.
func (d *document) checkKeys(root *keySet) {
	reported := map[string]bool{}
	for _, k := range d.keys {
		ks := root
		for i, part := range k {
			if ks.free {
				break
			}
			sub, known := ks.keys[part]
			if !known {
				name := k[:i+1].String()
				if !reported[name] {
					reported[name] = true
					d.errorAt(name, "", &unknownKeyError{key: name, hint: keyHint(root, ks, k[:i].String(), part)})
				}
				break
			}
			if sub == nil || sub.array {
				break
			}
			ks = sub
		}
	}
}

// keyHint suggests the key the writer probably meant. parent is the
// dotted name of table as the error shows it ("" at the top,
// "resources.io[0]" in an array entry).
func keyHint(root, table *keySet, parent, part string) string {
	if table.later[part] {
		return "not supported by this version of glmd"
	}
	if best, ok := table.alias[squash(part)]; ok {
		return fmt.Sprintf("did you mean %q?", joinKey(parent, best))
	}
	if best := closest(part, sortedKeys(table.keys)); best != "" {
		return fmt.Sprintf("did you mean %q?", joinKey(parent, best))
	}
	// A table and key run together: restart_policy for restart.policy.
	for i := range len(part) {
		if part[i] != '_' {
			continue
		}
		if sub := table.keys[part[:i]]; sub != nil {
			if _, ok := sub.keys[part[i+1:]]; ok {
				t := joinKey(parent, part[:i])
				return fmt.Sprintf("did you mean %q? it belongs in %s", joinKey(t, part[i+1:]), tableHeader(t, sub.array))
			}
		}
	}
	// A key of another table written in the wrong place, e.g. delay at the
	// top, or cpus after [[resources.io]] (where it belongs to the entry).
	type place struct {
		table string // dotted; "" = the top of the file
		array bool
	}
	var elsewhere []place
	var walk func(ks *keySet, at toml.Key)
	walk = func(ks *keySet, at toml.Key) {
		for name, sub := range ks.keys {
			k := append(append(toml.Key{}, at...), name)
			if name == part && ks != table {
				elsewhere = append(elsewhere, place{at.String(), ks.array})
			}
			if sub != nil && !sub.free {
				walk(sub, k)
			}
		}
	}
	walk(root, nil)
	// A plain table first: timeout at the top is stop.timeout more likely
	// than the timeout of a [[health]] check.
	sort.Slice(elsewhere, func(i, j int) bool {
		a, b := elsewhere[i], elsewhere[j]
		if a.array != b.array {
			return !a.array
		}
		return a.table < b.table
	})
	if len(elsewhere) > 0 {
		p := elsewhere[0]
		k := joinKey(p.table, part)
		if entry, _, isEntry := strings.Cut(parent, "["); isEntry && (entry == p.table || strings.HasPrefix(entry, p.table+".")) {
			// TOML puts every key after [[x]] into that entry of x.
			return fmt.Sprintf("did you mean %q? it belongs in %s, before the first [[%s]]: the keys after [[%s]] belong to its entry",
				k, tableHeader(p.table, p.array), entry, entry)
		}
		if p.table != "" {
			return fmt.Sprintf("did you mean %q? it belongs in %s", k, tableHeader(p.table, p.array))
		}
		return fmt.Sprintf("did you mean %q? it belongs at the top of the file, before any [table]", k)
	}
	return ""
}

// joinKey appends one key to a dotted key as written in errors.
func joinKey(parent, name string) string {
	k := toml.Key{name}.String()
	if parent == "" {
		return k
	}
	return parent + "." + k
}

// tableHeader is how the table is opened in a file: [restart] or [[resources.io]].
func tableHeader(table string, array bool) string {
	if array {
		return "[[" + table + "]]"
	}
	return "[" + table + "]"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// closest returns the candidate nearest to s when it is near enough to be a typo.
func closest(s string, candidates []string) string {
	limit := 2
	if len(s) <= 4 {
		limit = 1
	}
	best, bestDist := "", math.MaxInt
	for _, c := range candidates {
		if squash(s) == squash(c) {
			return c // MaxSize, max-size, MAX_SIZE
		}
		if abs(len(s)-len(c)) > limit {
			continue // too far apart to be a typo; spares a long key the quadratic distance
		}
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist > limit || bestDist >= len(s) {
		return ""
	}
	return best
}

var squasher = strings.NewReplacer("_", "", "-", "")

func squash(s string) string { return strings.ToLower(squasher.Replace(s)) }

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours cost 1 each.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
