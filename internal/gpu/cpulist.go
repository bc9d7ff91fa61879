package gpu

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// maxCPUList bounds the CPU numbers parseCPUList accepts, so that a
// corrupt "0-4294967295" cannot allocate the machine away.
const maxCPUList = 1 << 16

// maskBits returns the numbers of the bits set in an NVML affinity mask,
// lowest first. Each word holds bits.UintSize bits, bit 0 of word 0 being
// CPU (or node) 0, as the C API's unsigned long arrays.
func maskBits(words []uint) []int {
	var set []int
	for w, word := range words {
		for word != 0 {
			b := bits.TrailingZeros(word)
			set = append(set, w*bits.UintSize+b)
			word &^= 1 << b
		}
	}
	return set
}

// formatCPUList writes CPU numbers as the kernel's list format
// ("0-55,112-167"), sorted and with duplicates removed; "" for none.
func formatCPUList(cpus []int) string {
	cpus = slices.Clone(cpus)
	slices.Sort(cpus)
	cpus = slices.Compact(cpus)
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// parseCPUList reads the kernel's list format ("0-3,8,10-11", as in
// local_cpulist or cpuset.cpus); blank means none.
func parseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		first, err := parseCPU(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %w", s, err)
		}
		last := first
		if isRange {
			if last, err = parseCPU(hi); err != nil {
				return nil, fmt.Errorf("cpu list %q: %w", s, err)
			}
			if last < first {
				return nil, fmt.Errorf("cpu list %q: range %s runs backwards", s, part)
			}
		}
		for c := first; c <= last; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

func parseCPU(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= maxCPUList {
		return 0, fmt.Errorf("%q is not a CPU number", s)
	}
	return n, nil
}
