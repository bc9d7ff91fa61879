package cgroup

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/open-autoglm/glmd/internal/resources"
)

// The conversions below turn resources.Limits into the files of a v1 or v2
// group, in the order they must be written. They are pure: what they need to
// know about the group's directory comes in a host value, so that they are
// tested without root. They write every file they manage on every call, also
// to reset a limit the task file no longer asks for, because Update applies
// the whole [resources] table, not a difference.
//
// The library's own converters are not used: cgroup2.ToResources drops a CPU
// quota without period, mangles swap -1 and blkio weights; cgroup1's memory
// Update swaps the wrong two writes (limit_in_bytes and soft_limit instead of
// limit and memsw), so raising memory with swap, or removing the limit,
// fails with EINVAL (reproduced with v3.1.3); and neither can write "max"
// for every file that takes it (notes, cgroups.md section 10).

// setting is one value written to one file of a group.
type setting struct {
	ctrl  string // v1: the controller whose hierarchy holds the file; v2: ""
	file  string
	value string
}

func (s setting) String() string {
	if s.ctrl == "" {
		return s.file + "=" + s.value
	}
	return s.ctrl + "/" + s.file + "=" + s.value
}

// Kernel conventions shared by the conversions.
const (
	cpuPeriod      = 100000 // µs, the kernel's default CFS period
	cpuMinQuota    = 1000   // µs, the kernel's minimum quota
	defaultWeight  = 100    // cpu.weight and io.weight default (v2 scale 1..10000)
	defaultShares  = 1024   // v1 cpu.shares default
	maxWeight      = 10000
	maxWord        = "max" // "no limit" in v2 files and in v1 pids.max
	bfqWeightMax   = 1000  // io.bfq.weight before Linux 5.16 accepts 1..1000
	blkioWeightMin = 10
	blkioWeightMax = 1000
)

// cpuQuota converts cores to a CFS quota per cpuPeriod; 0 means no limit.
func cpuQuota(cpus float64) (int64, error) {
	if cpus < 0 || math.IsNaN(cpus) || math.IsInf(cpus, 0) {
		return 0, fmt.Errorf("cpus: %v is not a number of cores >= 0", cpus)
	}
	if cpus == 0 {
		return 0, nil
	}
	return max(int64(math.Round(cpus*cpuPeriod)), cpuMinQuota), nil
}

// checkWeight accepts 0 (the default) or 1..10000.
func checkWeight(key string, w int) error {
	if w < 0 || w > maxWeight {
		return fmt.Errorf("%s: %d is out of range: want 1 to %d (default %d)", key, w, maxWeight, defaultWeight)
	}
	return nil
}

// sharesToWeight is the cpu.shares -> cpu.weight conversion of runc >= 1.3.2,
// crun 1.23 and containerd/cgroups >= 3.1.0 (runc#4772): a quadratic in
// log2(shares) that maps 2 -> 1, 1024 -> 100 and 262144 -> 10000.
func sharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return maxWeight
	}
	l := math.Log2(float64(shares))
	return uint64(math.Ceil(math.Pow(10, (l*l+125*l)/612.0-7.0/34.0)))
}

// weightToShares inverts sharesToWeight (solving the quadratic for log2 of
// the shares), so that a cpu_weight means the same share on v1 and v2:
// 1 -> 2, 100 -> 1024, 10000 -> 262144.
func weightToShares(w int) uint64 {
	if w <= 0 {
		return defaultShares
	}
	c := math.Log10(float64(w)) + 7.0/34.0
	l := (-125 + math.Sqrt(125*125+4*612*c)) / 2
	return uint64(min(max(math.Round(math.Exp2(l)), 2), 262144))
}

// bfqWeight maps an io_weight (1..10000, default 100) to the BFQ scale:
// the same numbers, capped at 1000 because kernels before 5.16 refuse more.
func bfqWeight(w int) int {
	if w <= 0 {
		w = defaultWeight
	}
	return min(w, bfqWeightMax)
}

// blkioWeight maps an io_weight to the v1 CFQ blkio.weight (10..1000,
// default 500): five times the value, clamped, so that the defaults match.
func blkioWeight(w int) int {
	if w <= 0 {
		w = defaultWeight
	}
	return min(max(5*w, blkioWeightMin), blkioWeightMax)
}

// ioDevice is one disk's limits; 0 means no limit.
type ioDevice struct {
	major, minor            uint32
	rbps, wbps, riops, wiop uint64
}

func (d ioDevice) key() string { return fmt.Sprintf("%d:%d", d.major, d.minor) }

// ioDevices collects the task's IO limits per disk and refuses two entries
// for one disk (two partitions of one disk end up as the same disk).
func ioDevices(l resources.Limits) ([]ioDevice, error) {
	var out []ioDevice
	seen := map[string]string{}
	for _, d := range l.IO {
		dev := ioDevice{major: d.Major, minor: d.Minor, rbps: d.ReadBPS, wbps: d.WriteBPS, riops: d.ReadIOPS, wiop: d.WriteIOPS}
		if prev, ok := seen[dev.key()]; ok {
			return nil, fmt.Errorf("io: %s and %s are the same disk %s: give one [[resources.io]] entry per disk", prev, d.Path, dev.key())
		}
		seen[dev.key()] = d.Path
		out = append(out, dev)
	}
	return out, nil
}

// v2Host is what v2Settings needs to know about a group's directory.
type v2Host struct {
	has   func(file string) bool // the file exists: its controller is enabled for the group
	ioMax []string               // "MAJ:MIN" of the devices io.max limits now
}

// v2Settings converts l to cgroup v2 files (notes section 7). A limit whose
// controller the group lacks is an error; a reset of such a file is skipped.
func v2Settings(l resources.Limits, h v2Host) ([]setting, error) {
	var out []setting
	var errs []error
	add := func(asked bool, key, ctrl, file, value string) {
		switch {
		case h.has(file):
			out = append(out, setting{file: file, value: value})
		case asked:
			errs = append(errs, fmt.Errorf("%s: needs the %s controller, which this cgroup does not offer (%s is missing)", key, ctrl, file))
		}
	}

	quota, err := cpuQuota(l.CPUs)
	if err != nil {
		errs = append(errs, err)
	}
	cpuMax := maxWord + " " + strconv.Itoa(cpuPeriod)
	if quota > 0 {
		cpuMax = strconv.FormatInt(quota, 10) + " " + strconv.Itoa(cpuPeriod)
	}
	add(quota > 0, "cpus", "cpu", "cpu.max", cpuMax)
	if err := checkWeight("cpu_weight", l.CPUWeight); err != nil {
		errs = append(errs, err)
	}
	add(l.CPUWeight > 0, "cpu_weight", "cpu", "cpu.weight", strconv.Itoa(orDefault(l.CPUWeight, defaultWeight)))
	// An empty cpuset.cpus / cpuset.mems inherits the parent's: the reset.
	add(l.CpusetCPUs != "", "cpuset_cpus", "cpuset", "cpuset.cpus", l.CpusetCPUs)
	add(l.CpusetMems != "", "cpuset_mems", "cpuset", "cpuset.mems", l.CpusetMems)

	add(l.MemoryMax > 0, "memory_max", "memory", "memory.max", bytesOr(l.MemoryMax, maxWord))
	add(l.MemoryHigh > 0, "memory_high", "memory", "memory.high", bytesOr(l.MemoryHigh, maxWord))
	swap := bytesOr(l.MemorySwapMax, maxWord)
	if l.MemorySwapOff {
		swap = "0"
	}
	if asked := l.MemorySwapMax > 0 || l.MemorySwapOff; asked && h.has("memory.max") && !h.has("memory.swap.max") {
		errs = append(errs, errors.New("memory_swap_max: this kernel does not account swap (memory.swap.max is missing; boot with swapaccount=1 or enable CONFIG_SWAP)"))
	} else {
		add(asked, "memory_swap_max", "memory", "memory.swap.max", swap)
	}
	// The group is one worker: an OOM kill ends all of it, as Kubernetes
	// does for a container, rather than leaving it maimed.
	add(false, "memory_max", "memory", "memory.oom.group", "1")

	add(l.PidsMax > 0, "pids_max", "pids", "pids.max", countOr(l.PidsMax, maxWord))

	if err := checkWeight("io_weight", l.IOWeight); err != nil {
		errs = append(errs, err)
	}
	if l.IOWeight > 0 && !h.has("io.weight") && !h.has("io.bfq.weight") {
		errs = append(errs, errors.New("io_weight: needs io.weight or io.bfq.weight, which this cgroup does not offer (enable the io controller, and for io.bfq.weight the BFQ scheduler)"))
	} else {
		add(false, "io_weight", "io", "io.weight", "default "+strconv.Itoa(orDefault(l.IOWeight, defaultWeight)))
		add(false, "io_weight", "io", "io.bfq.weight", strconv.Itoa(bfqWeight(l.IOWeight)))
	}
	devs, err := ioDevices(l)
	if err != nil {
		errs = append(errs, err)
	}
	limited := map[string]bool{}
	for _, d := range devs {
		limited[d.key()] = true
		add(true, "io", "io", "io.max", fmt.Sprintf("%s rbps=%s wbps=%s riops=%s wiops=%s", d.key(),
			rateOr(d.rbps), rateOr(d.wbps), rateOr(d.riops), rateOr(d.wiop)))
	}
	for _, key := range h.ioMax {
		if !limited[key] {
			add(false, "io", "io", "io.max", key+" rbps=max wbps=max riops=max wiops=max")
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// v1Host is what v1Settings needs to know about a group's directories.
type v1Host struct {
	has func(ctrl, file string) bool // the controller's hierarchy holds the group and the file exists
	// memLimit and memswLimit are the group's memory.limit_in_bytes and
	// memory.memsw.limit_in_bytes now, -1 when unlimited: the kernel keeps
	// limit <= memsw at every write, which decides the order of the two.
	memLimit, memswLimit int64
	// throttled lists, per blkio.throttle.*_device file, the "MAJ:MIN" of
	// the devices it limits now (to clear those no longer asked).
	throttled map[string][]string
	// parentCpus and parentMems are the parent's cpuset, written to reset
	// the group's (v1 has no "inherit"; an empty cpuset stops every task).
	parentCpus, parentMems string
	// denied: the group's devices.list may hold exceptions from earlier
	// limits, to be reset even when none are asked now.
	denied bool
}

// v1Settings converts l to cgroup v1 files (notes section 7).
func v1Settings(l resources.Limits, h v1Host) ([]setting, error) {
	var out []setting
	var errs []error
	add := func(asked bool, key, ctrl, file, value string) {
		switch {
		case h.has(ctrl, file):
			out = append(out, setting{ctrl: ctrl, file: file, value: value})
		case asked:
			errs = append(errs, fmt.Errorf("%s: needs the %s controller's %s, which this host does not offer", key, ctrl, file))
		}
	}

	quota, err := cpuQuota(l.CPUs)
	if err != nil {
		errs = append(errs, err)
	}
	// The period first: the kernel checks a quota against the current period.
	add(quota > 0, "cpus", "cpu", "cpu.cfs_period_us", strconv.Itoa(cpuPeriod))
	add(quota > 0, "cpus", "cpu", "cpu.cfs_quota_us", strconv.FormatInt(orNone(quota), 10))
	if err := checkWeight("cpu_weight", l.CPUWeight); err != nil {
		errs = append(errs, err)
	}
	add(l.CPUWeight > 0, "cpu_weight", "cpu", "cpu.shares", strconv.FormatUint(weightToShares(l.CPUWeight), 10))
	add(l.CpusetCPUs != "", "cpuset_cpus", "cpuset", "cpuset.cpus", orString(l.CpusetCPUs, h.parentCpus))
	add(l.CpusetMems != "", "cpuset_mems", "cpuset", "cpuset.mems", orString(l.CpusetMems, h.parentMems))

	out, errs = v1Memory(l, h, out, errs)

	// Reset to "everything allowed" (the parent's), then the exceptions.
	// Only when there are exceptions: under a parent that restricts
	// devices (systemd's DevicePolicy=) "a" would be refused.
	if len(l.DenyDevices) > 0 || h.denied {
		add(true, "devices", "devices", "devices.allow", "a *:* rwm")
	}
	for _, d := range l.DenyDevices {
		add(true, "devices", "devices", "devices.deny", fmt.Sprintf("c %d:%d rwm", d.Major, d.Minor))
	}

	add(l.PidsMax > 0, "pids_max", "pids", "pids.max", countOr(l.PidsMax, maxWord))

	if err := checkWeight("io_weight", l.IOWeight); err != nil {
		errs = append(errs, err)
	}
	if l.IOWeight > 0 && !h.has("blkio", "blkio.weight") && !h.has("blkio", "blkio.bfq.weight") {
		errs = append(errs, errors.New("io_weight: needs blkio.weight (CFQ, kernels before 5.0) or blkio.bfq.weight (the BFQ scheduler), which this host does not offer"))
	} else {
		add(false, "io_weight", "blkio", "blkio.weight", strconv.Itoa(blkioWeight(l.IOWeight)))
		add(false, "io_weight", "blkio", "blkio.bfq.weight", strconv.Itoa(bfqWeight(l.IOWeight)))
	}
	devs, err := ioDevices(l)
	if err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct {
		file string
		rate func(ioDevice) uint64
	}{
		{"blkio.throttle.read_bps_device", func(d ioDevice) uint64 { return d.rbps }},
		{"blkio.throttle.write_bps_device", func(d ioDevice) uint64 { return d.wbps }},
		{"blkio.throttle.read_iops_device", func(d ioDevice) uint64 { return d.riops }},
		{"blkio.throttle.write_iops_device", func(d ioDevice) uint64 { return d.wiop }},
	} {
		now := map[string]bool{}
		for _, key := range h.throttled[f.file] {
			now[key] = true
		}
		// "MAJ:MIN 0" removes a device's limit from the file.
		for _, d := range devs {
			if r := f.rate(d); r > 0 || now[d.key()] {
				add(r > 0, "io", "blkio", f.file, d.key()+" "+strconv.FormatUint(r, 10))
			}
			delete(now, d.key())
		}
		for _, key := range h.throttled[f.file] {
			if now[key] {
				add(false, "io", "blkio", f.file, key+" 0")
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// v1Memory adds the memory settings: limit, swap as memsw = limit + swap,
// and memory_high as the soft limit (v1 has no throttling limit).
func v1Memory(l resources.Limits, h v1Host, out []setting, errs []error) ([]setting, []error) {
	if !h.has("memory", "memory.limit_in_bytes") {
		if l.MemoryMax > 0 || l.MemoryHigh > 0 || l.MemorySwapMax > 0 || l.MemorySwapOff {
			errs = append(errs, errors.New("memory_max: needs the memory controller, which this host does not offer"))
		}
		return out, errs
	}
	limit := orNone(l.MemoryMax)
	memsw := int64(-1) // no swap limit
	swapAsked := l.MemorySwapMax > 0 || l.MemorySwapOff
	switch {
	case swapAsked && l.MemoryMax <= 0:
		errs = append(errs, errors.New("memory_swap_max: needs memory_max on cgroup v1, where swap is limited as memory + swap"))
	case l.MemorySwapOff:
		memsw = limit
	case l.MemorySwapMax > 0:
		if l.MemorySwapMax > math.MaxInt64-limit {
			errs = append(errs, errors.New("memory_swap_max: memory_max + memory_swap_max overflows"))
		}
		memsw = limit + l.MemorySwapMax
	}
	hasMemsw := h.has("memory", "memory.memsw.limit_in_bytes")
	if swapAsked && !hasMemsw {
		errs = append(errs, errors.New("memory_swap_max: this kernel does not account swap (memory.memsw.* is missing; boot with swapaccount=1)"))
	}
	lim := setting{ctrl: "memory", file: "memory.limit_in_bytes", value: strconv.FormatInt(limit, 10)}
	sw := setting{ctrl: "memory", file: "memory.memsw.limit_in_bytes", value: strconv.FormatInt(memsw, 10)}
	switch {
	case !hasMemsw:
		out = append(out, lim)
	case lessEq(limit, h.memswLimit):
		// The new limit fits under the current memsw: limit first, then
		// memsw, which is >= the new limit.
		out = append(out, lim, sw)
	default:
		// Raising the limit above the current memsw: memsw first (it is
		// >= the new limit, so >= the current one too).
		out = append(out, sw, lim)
	}
	out = append(out, setting{ctrl: "memory", file: "memory.soft_limit_in_bytes", value: strconv.FormatInt(orNone(l.MemoryHigh), 10)})
	return out, errs
}

// lessEq compares byte limits where -1 is infinity.
func lessEq(a, b int64) bool {
	switch {
	case b < 0:
		return true
	case a < 0:
		return false
	}
	return a <= b
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func orString(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// bytesOr formats a positive byte count, or none.
func bytesOr(v int64, none string) string {
	if v > 0 {
		return strconv.FormatInt(v, 10)
	}
	return none
}

// countOr formats a positive count, or none.
func countOr(v int64, none string) string {
	if v > 0 {
		return strconv.FormatInt(v, 10)
	}
	return none
}

// rateOr formats a positive rate, or "max".
func rateOr(v uint64) string {
	if v > 0 {
		return strconv.FormatUint(v, 10)
	}
	return maxWord
}

// orNone is v, or -1 (v1's "no limit") when v is not positive.
func orNone(v int64) int64 {
	if v > 0 {
		return v
	}
	return -1
}

// parseDeviceKeys reads the "MAJ:MIN" at the start of every line of a
// blkio.throttle.*_device or io.max file.
func parseDeviceKeys(data string) []string {
	var keys []string
	for line := range strings.Lines(data) {
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], ":") {
			keys = append(keys, f[0])
		}
	}
	return keys
}
