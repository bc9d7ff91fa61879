package config

import (
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/open-autoglm/glmd/internal/resources"
)

// Limits of [resources] checked by validation. The host's own CPUs and
// NUMA nodes are not checked: one task file may serve hosts of different
// sizes, and the kernel refuses what a host lacks when the cgroup is set up.
const (
	// minCPUs: the kernel's smallest CFS quota is 1 ms per period, and
	// glmd uses the default period of 100 ms.
	minCPUs = 0.01
	// maxCPUIDs is NR_CPUS at its largest (x86-64 and powerpc MAXSMP):
	// no host has more CPUs, so a larger number is a typo.
	maxCPUIDs = 8192
	// maxNodeIDs is MAX_NUMNODES at its largest (NODES_SHIFT = 10).
	maxNodeIDs = 1024
	// minMemory catches a size written without its unit: 512 is bytes.
	minMemory = 1 << 20
	// minPids: the agent places a new process by moving its own forking
	// thread into the group for a moment, which counts 1 toward pids.max,
	// so 1 would leave the worker itself no room.
	minPids = 2
	// maxPids is the kernel's PID_MAX_LIMIT; pids.max refuses more.
	maxPids     = 4 << 20
	maxWeight   = 10000
	maxOOMScore = 1000
)

// resourceKeys is the schema of [resources].
var resourceKeys = &keySet{
	keys: map[string]*keySet{
		"cpus": nil, "cpu_weight": nil, "cpuset_cpus": nil, "cpuset_mems": nil,
		"memory_max": nil, "memory_high": nil, "memory_swap_max": nil,
		"pids_max": nil, "io_weight": nil, "oom_score_adj": nil,
		"io": ioKeys,
	},
	alias: map[string]string{
		// systemd
		"cpuquota": "cpus", "allowedcpus": "cpuset_cpus", "allowedmemorynodes": "cpuset_mems",
		"tasksmax": "pids_max", "oomscoreadjust": "oom_score_adj",
		// Docker and Nomad
		"cpu": "cpus", "cores": "cpus", "cpushares": "cpu_weight", "shares": "cpu_weight",
		"memory": "memory_max", "mem": "memory_max", "memorylimit": "memory_max",
		"memoryswap": "memory_swap_max", "swap": "memory_swap_max",
		"pids": "pids_max", "pidslimit": "pids_max", "blkioweight": "io_weight",
	},
}

// ioKeys is the schema of one [[resources.io]] entry.
var ioKeys = &keySet{
	array: true,
	keys: map[string]*keySet{
		"device": nil, "read_bps": nil, "write_bps": nil, "read_iops": nil, "write_iops": nil,
	},
	alias: map[string]string{
		"path": "device", "dev": "device", "disk": "device",
		// cgroup v2 io.max, and bytes spelled out
		"rbps": "read_bps", "wbps": "write_bps", "riops": "read_iops", "wiops": "write_iops",
		"readbytes": "read_bps", "writebytes": "write_bps",
		// systemd
		"readbandwidthmax": "read_bps", "writebandwidthmax": "write_bps",
		"readiopsmax": "read_iops", "writeiopsmax": "write_iops",
	},
}

// decodeResources reads [resources] into t.Resources.
func (f *taskFile) decodeResources() {
	if _, ok := f.table("resources"); !ok {
		return
	}
	r := &f.t.Resources
	if v, ok := f.cores("resources", "cpus"); ok {
		r.CPUs = v
	}
	if n, ok := f.integer("resources", "cpu_weight"); ok {
		r.CPUWeight = n
	}
	if s, ok := f.str("resources", "cpuset_cpus"); ok {
		r.CpusetCPUs = s
	}
	if s, ok := f.str("resources", "cpuset_mems"); ok {
		r.CpusetMems = s
	}
	if n, ok := f.size("resources", "memory_max"); ok {
		r.MemoryMax = n
	}
	if n, ok := f.size("resources", "memory_high"); ok {
		r.MemoryHigh = n
	}
	if n, ok := f.size("resources", "memory_swap_max"); ok {
		// 0 is "no swap at all", which Limits cannot hold in MemorySwapMax:
		// there 0 means "not set".
		r.MemorySwapMax, r.MemorySwapOff = n, n == 0
	}
	if n, ok := f.integer("resources", "pids_max"); ok {
		r.PidsMax = int64(n)
	}
	if n, ok := f.integer("resources", "io_weight"); ok {
		r.IOWeight = n
	}
	if n, ok := f.integer("resources", "oom_score_adj"); ok {
		r.OOMScoreAdj = &n
	}
	f.decodeIO()
}

// cores reads a number of CPU cores: a float or an integer.
func (d *document) cores(path ...string) (float64, bool) {
	key := toml.Key(path).String()
	v, ok := d.lookup(path...)
	if !ok {
		return 0, false
	}
	switch v := v.(type) {
	case float64:
		d.given[key] = true
		return v, true
	case int64:
		d.given[key] = true
		return float64(v), true
	case string:
		if pct, isPct := strings.CutSuffix(v, "%"); isPct {
			if n, err := strconv.ParseFloat(pct, 64); err == nil {
				d.errorf(key, "must be a number of cores, not a percentage (try %v)", n/100)
				return 0, false
			}
		}
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			d.errorf(key, "must be a number, not a string (write %s without quotes)", v)
			return 0, false
		}
		d.wrongType(key, v, "a number of cores such as 2.5")
	default:
		d.wrongType(key, v, "a number of cores such as 2.5")
	}
	return 0, false
}

// decodeIO reads the [[resources.io]] entries into t.Resources.IO, one
// IODevice per entry, so that entry i is IO[i] also when it is bad. The
// device is resolved later, on every load (loadDevices).
func (f *taskFile) decodeIO() {
	v, ok := f.lookup("resources", "io")
	if !ok {
		return
	}
	var entries []any
	switch v := v.(type) {
	case []map[string]any: // [[resources.io]]
		for _, e := range v {
			entries = append(entries, e)
		}
	case []any: // io = [{ device = ... }]
		entries = v
	case map[string]any:
		f.errorf("resources.io", "must be an array of tables, not a table (write [[resources.io]], with two brackets, before each device's keys)")
		return
	default:
		f.wrongType("resources.io", v, "an array of tables ([[resources.io]] before each device's keys)")
		return
	}
	f.given["resources.io"] = true
	io := make([]resources.IODevice, len(entries))
	for i, e := range entries {
		entry := fmt.Sprintf("resources.io[%d]", i)
		m, ok := e.(map[string]any)
		if !ok {
			f.errorAt(f.ioPos(entry), entry, fmt.Errorf("must be a table with device and its limits, not %s", tomlType(e)))
			continue
		}
		f.given[entry] = true
		for _, name := range sortedKeys(m) {
			if _, known := ioKeys.keys[name]; !known {
				key := entry + "." + joinKey("", name)
				f.errorAt(f.ioPos(key, entry), "", &unknownKeyError{key: key, hint: keyHint(taskKeys, ioKeys, entry, name)})
			}
		}
		d := &io[i]
		if s, ok := f.entryString(entry, "device", m); ok {
			d.Path = s
		}
		for _, l := range []struct {
			name string
			dst  *uint64
			size bool
		}{
			{"read_bps", &d.ReadBPS, true}, {"write_bps", &d.WriteBPS, true},
			{"read_iops", &d.ReadIOPS, false}, {"write_iops", &d.WriteIOPS, false},
		} {
			if n, ok := f.entryLimit(entry, l.name, m, l.size); ok {
				*l.dst = n
			}
		}
	}
	f.t.Resources.IO = io
}

// ioEntry returns the raw table of entry i of [[resources.io]].
func (d *document) ioEntry(i int) (map[string]any, bool) {
	v, _ := d.lookup("resources", "io")
	switch v := v.(type) {
	case []map[string]any:
		if i < len(v) {
			return v[i], true
		}
	case []any:
		if i < len(v) {
			m, ok := v[i].(map[string]any)
			return m, ok
		}
	}
	return nil, false
}

// posOf returns the first of keys whose position is known, else the last:
// an error about an entry of an inline array points at the array at least.
func (d *document) posOf(keys ...string) string {
	for _, k := range keys {
		if _, ok := d.where[k]; ok {
			return k
		}
	}
	return keys[len(keys)-1]
}

// ioPos is posOf for [[resources.io]] entries.
func (d *document) ioPos(keys ...string) string {
	return d.posOf(append(keys, "resources.io")...)
}

func (f *taskFile) entryString(entry, name string, m map[string]any) (string, bool) {
	v, ok := m[name]
	if !ok {
		return "", false
	}
	key := entry + "." + name
	s, ok := v.(string)
	if !ok {
		f.errorAt(f.ioPos(key, entry), key, fmt.Errorf("must be a string, not %s", tomlType(v)))
		return "", false
	}
	f.given[key] = true
	return s, true
}

// entryLimit reads a limit of an IO entry: a size per second (a string in
// size syntax or an integer of bytes) or an integer of operations per
// second. A limit must be positive: leaving the key out means no limit.
func (f *taskFile) entryLimit(entry, name string, m map[string]any, size bool) (uint64, bool) {
	v, ok := m[name]
	if !ok {
		return 0, false
	}
	key := entry + "." + name
	fail := func(format string, args ...any) (uint64, bool) {
		f.errorAt(f.ioPos(key, entry), key, fmt.Errorf(format, args...))
		return 0, false
	}
	var n int64
	switch v := v.(type) {
	case int64:
		n = v
	case string:
		if !size {
			if _, err := strconv.Atoi(v); err == nil {
				return fail("must be an integer, not a string (write %s without quotes)", v)
			}
			return fail("must be an integer number of operations per second, not a string")
		}
		if perSec, ok := strings.CutSuffix(v, "/s"); ok {
			if _, err := ParseByteSize(perSec); err == nil {
				return fail("%q is not a size (write %q: the limit is per second already)", v, perSec)
			}
		}
		parsed, err := ParseByteSize(v)
		if err != nil {
			return fail("%w", err)
		}
		n = parsed
	default:
		if size {
			return fail("must be a size per second such as \"100MiB\", not %s", tomlType(v))
		}
		return fail("must be an integer, not %s", tomlType(v))
	}
	if n <= 0 {
		return fail("must be positive (leave the key out for no limit)")
	}
	f.given[key] = true
	return uint64(n), true
}

// validateResources checks the ranges of [resources] and how its keys fit
// together. The devices of [[resources.io]] are checked on every load
// (loadDevices), as they can change while the task file does not.
func (f *taskFile) validateResources() {
	r := &f.t.Resources
	given := func(key string) bool { return f.given[key] }

	if given("resources.cpus") {
		switch c := r.CPUs; {
		case math.IsNaN(c) || math.IsInf(c, 0):
			f.errorf("resources.cpus", "%v is not a number of cores (such as 2.5)", c)
		case c <= 0:
			f.errorf("resources.cpus", "must be positive: the cores the task may use, such as 2.5 (leave it out for no limit)")
		case c < minCPUs:
			f.errorf("resources.cpus", "%v is too small (at least %v: the kernel's smallest quota is 1ms per 100ms)", c, minCPUs)
		case c > maxCPUIDs:
			f.errorf("resources.cpus", "%v is more CPUs than a Linux host can have (at most %d)", c, maxCPUIDs)
		}
	}
	f.checkRange("resources.cpu_weight", r.CPUWeight, 1, maxWeight, "; the default is 100")
	f.checkRange("resources.io_weight", r.IOWeight, 1, maxWeight, "; the default is 100")
	if given("resources.cpuset_cpus") {
		if err := checkIDList(r.CpusetCPUs, "CPU", maxCPUIDs); err != nil {
			f.errorAt("resources.cpuset_cpus", "resources.cpuset_cpus", err)
		}
	}
	if given("resources.cpuset_mems") {
		if err := checkIDList(r.CpusetMems, "NUMA node", maxNodeIDs); err != nil {
			f.errorAt("resources.cpuset_mems", "resources.cpuset_mems", err)
		}
	}
	for _, m := range []struct {
		key string
		n   int64
	}{{"resources.memory_max", r.MemoryMax}, {"resources.memory_high", r.MemoryHigh}} {
		if !given(m.key) || m.n >= minMemory {
			continue
		}
		if m.n <= 0 {
			f.errorf(m.key, "must be positive (leave it out for no limit)")
			continue
		}
		hint := ""
		if raw, _ := f.lookup(strings.Split(m.key, ".")...); isInt(raw) {
			hint = fmt.Sprintf("; an integer is bytes, so write a unit: %q", fmt.Sprintf("%dMiB", m.n))
		}
		f.errorf(m.key, "%s is too small (at least 1MiB%s)", formatSize(m.n), hint)
	}
	if f.ok("resources.memory_max") && f.ok("resources.memory_high") &&
		r.MemoryHigh >= minMemory && r.MemoryMax >= minMemory && r.MemoryHigh > r.MemoryMax {
		f.errorf("resources.memory_high", "%s is above memory_max %s (memory_high throttles the task before it reaches memory_max, where the OOM killer acts)",
			formatSize(r.MemoryHigh), formatSize(r.MemoryMax))
	}
	if given("resources.memory_swap_max") && r.MemorySwapMax < 0 {
		f.errorf("resources.memory_swap_max", "must not be negative (0 = no swap)")
	}
	if given("resources.pids_max") {
		switch n := r.PidsMax; {
		case n < minPids:
			f.errorf("resources.pids_max", "%d is too small (at least %d: while glmd places a new process in the cgroup, its own forking thread counts toward pids_max too)", n, minPids)
		case n > maxPids:
			f.errorf("resources.pids_max", "%d is out of range (at most %d, the kernel's limit)", n, maxPids)
		}
	}
	if r.OOMScoreAdj != nil {
		f.checkRange("resources.oom_score_adj", *r.OOMScoreAdj, -maxOOMScore, maxOOMScore, "; -1000 means never OOM-killed")
	}
	f.validateIO()
}

func (f *taskFile) checkRange(key string, n, lo, hi int, hint string) {
	if f.given[key] && (n < lo || n > hi) {
		f.errorf(key, "%d is out of range (%d to %d%s)", n, lo, hi, hint)
	}
}

func isInt(v any) bool {
	_, ok := v.(int64)
	return ok
}

func (f *taskFile) validateIO() {
	for i, d := range f.t.Resources.IO {
		entry := fmt.Sprintf("resources.io[%d]", i)
		if !f.given[entry] {
			continue // not a table: reported
		}
		dev := entry + ".device"
		switch {
		case !f.given[dev] && f.ok(dev):
			f.errorAt(f.ioPos(entry), entry, fmt.Errorf(`device missing: the block device to limit, such as device = "/dev/nvme0n1" (lsblk lists them)`))
		case f.given[dev] && !path.IsAbs(d.Path):
			try := "/dev/nvme0n1"
			if d.Path != "" && !strings.Contains(d.Path, "/") {
				try = "/dev/" + d.Path
			}
			f.errorAt(f.ioPos(dev, entry), dev, fmt.Errorf("%q is not an absolute path (try %q)", d.Path, try))
		}
		// A bad limit or an unknown key (probably a limit misspelt) is
		// reported already.
		limited := false
		for _, name := range []string{"read_bps", "write_bps", "read_iops", "write_iops"} {
			k := entry + "." + name
			limited = limited || f.given[k] || !f.ok(k)
		}
		if m, ok := f.ioEntry(i); ok {
			for name := range m {
				_, known := ioKeys.keys[name]
				limited = limited || !known
			}
		}
		if !limited {
			of := ""
			if d.Path != "" {
				of = " for " + d.Path
			}
			f.errorAt(f.ioPos(entry), entry, fmt.Errorf("sets no limit%s (set read_bps, write_bps, read_iops or write_iops)", of))
		}
	}
}

// checkIDList checks a list of CPU or NUMA node numbers in the kernel's
// list syntax: numbers and ranges separated by commas, "0-7,16".
func checkIDList(s, what string, limit int) error {
	if s == "" {
		return fmt.Errorf("must not be empty (leave it out to allow every %s)", what)
	}
	syntax := func() error {
		return fmt.Errorf("%q is not a %s list (numbers and ranges separated by commas, such as \"0-7,16\")", s, what)
	}
	if strings.ContainsAny(s, " \t") {
		compact := strings.Join(strings.Fields(s), "")
		if checkIDList(compact, what, limit) == nil {
			return fmt.Errorf("%q is not a %s list (no spaces: try %q)", s, what, compact)
		}
		return syntax()
	}
	for item := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		first, err1 := parseID(lo)
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = parseID(hi)
		}
		if err1 != nil || err2 != nil {
			return syntax()
		}
		if last < first {
			return fmt.Errorf("%q: the range %q runs backwards (try \"%d-%d\")", s, item, last, first)
		}
		if last >= limit {
			return fmt.Errorf("%q: %s %d is out of range (0 to %d)", s, what, last, limit-1)
		}
	}
	return nil
}

// parseID reads a CPU or node number: decimal digits only (no sign, no
// spaces, which strconv.Atoi would allow or the kernel would not).
func parseID(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" || len(s) > 9 {
		return 0, strconv.ErrSyntax
	}
	return strconv.Atoi(s)
}

// formatSize prints a byte count in the largest 1024-based unit that
// divides it: "4GiB", "1536MiB", "1000 bytes".
func formatSize(n int64) string {
	units := []string{"PiB", "TiB", "GiB", "MiB", "KiB"}
	for i, u := range units {
		m := int64(1) << (10 * (len(units) - i))
		if n != 0 && n%m == 0 {
			return strconv.FormatInt(n/m, 10) + u
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
