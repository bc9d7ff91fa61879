package config

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// sizeUnits maps a unit, lower-cased, to its multiplier. As systemd does,
// a bare K, M, G, T or P counts in 1024s (so does KiB ... PiB), and KB ...
// PB count in 1000s. go-units reads "KB" as 1024 and accepts spaces and
// bare "k" for 1000, which is why glmd parses sizes itself.
var sizeUnits = map[string]uint64{
	"":  1,
	"b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	"p": 1 << 50, "pib": 1 << 50, "pb": 1e15,
}

// ParseByteSize parses a size such as "50MiB", "2G" (both 1024-based),
// "2GB" (1000-based), "1.5G" or "4096" (bytes). Units are case-insensitive;
// no space may stand between number and unit. A fraction of a byte is
// dropped. The result is at most math.MaxInt64.
func ParseByteSize(s string) (int64, error) {
	n, err := parseByteSize(s)
	if err != nil {
		if strings.ContainsAny(s, " \t") {
			compact := strings.Join(strings.Fields(s), "")
			if _, cerr := parseByteSize(compact); cerr == nil {
				return 0, fmt.Errorf("%q is not a size (try %s)", s, sizeSuggestions(compact))
			}
		}
		return 0, err
	}
	return n, nil
}

// sizeSuggestions offers the written size and, for "12GB", its 1024-based twin.
func sizeSuggestions(compact string) string {
	unitAt := strings.IndexFunc(compact, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	if unitAt > 0 {
		num, unit := compact[:unitAt], compact[unitAt:]
		if len(unit) == 2 && (unit[1] == 'B' || unit[1] == 'b') && unit[0] != 'b' && unit[0] != 'B' {
			return fmt.Sprintf("%q or %q", compact, num+unit[:1]+"iB")
		}
	}
	return fmt.Sprintf("%q", compact)
}

func parseByteSize(s string) (int64, error) {
	const help = `write bytes, or a number with a unit: "50MiB" or "2G" count in 1024s, "2GB" in 1000s`
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	whole := s[:i]
	var frac string
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		frac, i = s[i+1:j], j
		if frac == "" {
			return 0, fmt.Errorf("%q is not a size (%s)", s, help)
		}
	}
	if whole == "" {
		if strings.HasPrefix(s, "-") {
			return 0, fmt.Errorf("%q is not a size (a size cannot be negative)", s)
		}
		return 0, fmt.Errorf("%q is not a size (%s)", s, help)
	}
	unit := s[i:]
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("%q is not a size: unknown unit %q (use K, M, G, T, P or KiB ... PiB for 1024-based units, KB ... PB for 1000-based ones)", s, unit)
	}
	tooLarge := fmt.Errorf("%q is too large (at most %d bytes)", s, int64(math.MaxInt64))
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, tooLarge
	}
	hi, total := bits.Mul64(w, mult)
	if hi != 0 {
		return 0, tooLarge
	}
	if frac != "" {
		// frac*mult/10^len(frac), exactly; digits beyond 18 cannot matter
		// for a multiplier below 2^53 and are dropped.
		if len(frac) > 18 {
			frac = frac[:18]
		}
		f, _ := strconv.ParseUint(frac, 10, 64)
		fh, fl := bits.Mul64(f, mult)
		q, _ := bits.Div64(fh, fl, pow10(len(frac)))
		var carry uint64
		total, carry = bits.Add64(total, q, 0)
		if carry != 0 {
			return 0, tooLarge
		}
	}
	if total > math.MaxInt64 {
		return 0, tooLarge
	}
	return int64(total), nil
}

func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}
