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
	// later names keys that a later version of glmd will know, so that a
	// file written for it fails with a clear word instead of a typo hint.
	later map[string]bool
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
					d.errorAt(name, "", &unknownKeyError{key: name, hint: keyHint(root, ks, k[:i], part)})
				}
				break
			}
			if sub == nil {
				break
			}
			ks = sub
		}
	}
}

// keyHint suggests the key the writer probably meant.
func keyHint(root, table *keySet, parent toml.Key, part string) string {
	if table.later[part] {
		return "not supported by this version of glmd"
	}
	if best := closest(part, sortedKeys(table.keys)); best != "" {
		return fmt.Sprintf("did you mean %q?", append(append(toml.Key{}, parent...), best).String())
	}
	// A table and key run together: restart_policy for restart.policy.
	for i := range len(part) {
		if part[i] != '_' {
			continue
		}
		if sub := table.keys[part[:i]]; sub != nil {
			if _, ok := sub.keys[part[i+1:]]; ok {
				k := append(append(toml.Key{}, parent...), part[:i], part[i+1:])
				return fmt.Sprintf("did you mean %q? it belongs in [%s]", k.String(), k[:len(k)-1].String())
			}
		}
	}
	// A key of another table written in the wrong place, e.g. delay at the top.
	var elsewhere []string
	var walk func(ks *keySet, at toml.Key)
	walk = func(ks *keySet, at toml.Key) {
		for name, sub := range ks.keys {
			k := append(append(toml.Key{}, at...), name)
			if name == part && ks != table {
				elsewhere = append(elsewhere, k.String())
			}
			if sub != nil && !sub.free {
				walk(sub, k)
			}
		}
	}
	walk(root, nil)
	sort.Strings(elsewhere)
	if len(elsewhere) > 0 {
		k := elsewhere[0]
		if dot := strings.LastIndexByte(k, '.'); dot > 0 {
			return fmt.Sprintf("did you mean %q? it belongs in [%s]", k, k[:dot])
		}
		return fmt.Sprintf("did you mean %q? it belongs at the top of the file, before any [table]", k)
	}
	return ""
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
