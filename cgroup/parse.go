package cgroup

import (
	"fmt"
	"strconv"
	"strings"
)

// The parsers below read the kernel's cgroup file formats. They are pure
// and tested on every OS.

// parseFlatKeyed reads "key value" lines (cpu.stat, memory.events,
// memory.oom_control) into a map; lines that are not a key and a number are
// skipped, so that new kernel fields never break a read.
func parseFlatKeyed(data string) map[string]uint64 {
	out := map[string]uint64{}
	for line := range strings.Lines(data) {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out
}

// parseLimit reads a file holding one limit. The v1 "no limit" value
// (PAGE_COUNTER_MAX in bytes, 9223372036854771712 on 4 KiB pages) and
// "max" both read as -1.
func parseLimit(data string) (int64, error) {
	s := strings.TrimSpace(data)
	if s == "max" {
		return -1, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	if v >= 1<<62 {
		return -1, nil
	}
	return int64(v), nil
}

// parseBlkioBytes sums the Read and Write lines ("MAJ:MIN Read N") of a v1
// blkio.*io_service_bytes* file over all devices.
func parseBlkioBytes(data string) (read, write uint64) {
	for line := range strings.Lines(data) {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			continue
		}
		switch f[1] {
		case "Read":
			read += v
		case "Write":
			write += v
		}
	}
	return read, write
}

// parsePids reads a cgroup.procs or tasks file.
func parsePids(data string) ([]int, error) {
	var pids []int
	for line := range strings.Lines(data) {
		s := strings.TrimSpace(line)
		if s == "" {
			continue
		}
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("not a pid: %q", s)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
