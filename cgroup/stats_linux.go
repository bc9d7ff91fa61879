package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/open-autoglm/glmd/internal/resources"
)

// Stats reads what the group used, from the few files that hold it.
func (g *group) Stats() (resources.Stats, error) {
	if g.m.v1 != nil {
		return g.statsV1()
	}
	return g.statsV2()
}

// statsV2 reads cpu.stat, memory.current and memory.peak, memory.events,
// pids.current and io.stat through the library (StatFiltered, so that the
// rest of memory.stat's siblings, hugetlb and rdma stay unread).
func (g *group) statsV2() (resources.Stats, error) {
	if !exists(g.unified) {
		return resources.Stats{}, fmt.Errorf("cgroup %s: stats: %s does not exist", g.name, g.unified)
	}
	mgr, err := cgroup2.Load(strings.TrimPrefix(g.unified, cgroupRoot), cgroup2.WithMountpoint(cgroupRoot))
	if err != nil {
		return resources.Stats{}, fmt.Errorf("cgroup %s: stats: %w", g.name, err)
	}
	m, err := mgr.StatFiltered(cgroup2.StatCPU | cgroup2.StatMemory | cgroup2.StatMemoryEvents | cgroup2.StatPids | cgroup2.StatIO)
	if err != nil {
		return resources.Stats{}, fmt.Errorf("cgroup %s: stats: %w", g.name, err)
	}
	var st resources.Stats
	if c := m.CPU; c != nil {
		st.CPU = time.Duration(c.UsageUsec) * time.Microsecond
		st.CPUThrottled = time.Duration(c.ThrottledUsec) * time.Microsecond
		st.NrThrottled = c.NrThrottled
	}
	if mem := m.Memory; mem != nil {
		st.MemoryCurrent, st.MemoryPeak = mem.Usage, mem.MaxUsage
	}
	if e := m.MemoryEvents; e != nil {
		st.OOMKills = e.OomKill
	}
	if p := m.Pids; p != nil {
		st.Pids = p.Current
	}
	if io := m.Io; io != nil {
		for _, e := range io.Usage {
			st.IOReadBytes += e.Rbytes
			st.IOWriteBytes += e.Wbytes
		}
	}
	return st, nil
}

// statsV1 reads cpuacct.usage, cpu.stat, memory.usage_in_bytes,
// memory.max_usage_in_bytes, memory.oom_control, pids.current and the blkio
// byte counters. A controller the host lacks leaves its fields 0.
func (g *group) statsV1() (resources.Stats, error) {
	if !exists(g.dirs["memory"]) {
		return resources.Stats{}, fmt.Errorf("cgroup %s: stats: %s does not exist", g.name, g.dirs["memory"])
	}
	var st resources.Stats
	var errs []error
	read := func(ctrl, file string) (string, bool) {
		dir := g.dirs[ctrl]
		if dir == "" {
			return "", false
		}
		data, err := readString(filepath.Join(dir, file))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return "", false
		}
		return data, true
	}
	number := func(ctrl, file string) uint64 {
		s, ok := read(ctrl, file)
		if !ok {
			return 0
		}
		v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a number", file, strings.TrimSpace(s)))
		}
		return v
	}
	st.CPU = time.Duration(number("cpuacct", "cpuacct.usage"))
	if s, ok := read("cpu", "cpu.stat"); ok {
		kv := parseFlatKeyed(s)
		st.NrThrottled = kv["nr_throttled"]
		st.CPUThrottled = time.Duration(kv["throttled_time"])
	}
	st.MemoryCurrent = number("memory", "memory.usage_in_bytes")
	st.MemoryPeak = number("memory", "memory.max_usage_in_bytes")
	if s, ok := read("memory", "memory.oom_control"); ok {
		st.OOMKills = parseFlatKeyed(s)["oom_kill"]
	}
	st.Pids = number("pids", "pids.current")
	// blk-throttle counts every bio; the CFQ-era counters exist on old
	// kernels only.
	if s, ok := read("blkio", "blkio.throttle.io_service_bytes_recursive"); ok {
		st.IOReadBytes, st.IOWriteBytes = parseBlkioBytes(s)
	} else if s, ok := read("blkio", "blkio.io_service_bytes_recursive"); ok {
		st.IOReadBytes, st.IOWriteBytes = parseBlkioBytes(s)
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("cgroup %s: stats: %w", g.name, errors.Join(errs...))
	}
	return st, nil
}
