package cgroup

import (
	"slices"
	"testing"
)

func TestParseFlatKeyed(t *testing.T) {
	got := parseFlatKeyed("low 0\nhigh 3\noom 1\noom_kill 2\nbad\nx y\n")
	if got["oom_kill"] != 2 || got["high"] != 3 || len(got) != 4 {
		t.Errorf("parseFlatKeyed = %v", got)
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]int64{"max\n": -1, "9223372036854771712\n": -1, "67108864\n": 64 << 20, "0": 0} {
		if got, err := parseLimit(in); err != nil || got != want {
			t.Errorf("parseLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseLimit("x"); err == nil {
		t.Error("parseLimit(x) succeeded")
	}
}

func TestParseBlkioBytes(t *testing.T) {
	r, w := parseBlkioBytes("254:0 Read 4096\n254:0 Write 31457280\n254:0 Sync 1\n254:0 Async 2\n254:0 Total 31461376\n8:0 Write 10\nTotal 31461386\n")
	if r != 4096 || w != 31457290 {
		t.Errorf("parseBlkioBytes = %d, %d", r, w)
	}
}

func TestParsePids(t *testing.T) {
	got, err := parsePids("12\n\n34\n")
	if err != nil || !slices.Equal(got, []int{12, 34}) {
		t.Errorf("parsePids = %v, %v", got, err)
	}
	if _, err := parsePids("12\nx\n"); err == nil {
		t.Error("parsePids accepted x")
	}
}

func TestParseDeviceKeys(t *testing.T) {
	got := parseDeviceKeys("254:0 rbps=max wbps=10485760 riops=max wiops=max\n8:16 10\n")
	if !slices.Equal(got, []string{"254:0", "8:16"}) {
		t.Errorf("parseDeviceKeys = %v", got)
	}
}
