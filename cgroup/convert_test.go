package cgroup

import (
	"math"
	"strings"
	"testing"

	"github.com/open-autoglm/glmd/internal/resources"
)

const mib = 1 << 20

// v2Files is every file a v2 group with all controllers offers to the
// conversion.
var v2Files = []string{"cpu.max", "cpu.weight", "cpuset.cpus", "cpuset.mems", "memory.max", "memory.high",
	"memory.swap.max", "memory.oom.group", "pids.max", "io.weight", "io.max"}

func v2HostWith(files []string, ioMax ...string) v2Host {
	set := map[string]bool{}
	for _, f := range files {
		set[f] = true
	}
	return v2Host{has: func(f string) bool { return set[f] }, ioMax: ioMax}
}

func without(files []string, drop ...string) []string {
	var out []string
	for _, f := range files {
		if !strings.Contains(" "+strings.Join(drop, " ")+" ", " "+f+" ") {
			out = append(out, f)
		}
	}
	return out
}

func joinSettings(s []setting) string {
	var parts []string
	for _, x := range s {
		parts = append(parts, x.String())
	}
	return strings.Join(parts, "\n")
}

var representative = resources.Limits{
	CPUs: 0.5, CPUWeight: 200, CpusetCPUs: "0-1", CpusetMems: "0",
	MemoryMax: 64 * mib, MemoryHigh: 48 * mib, MemorySwapMax: 32 * mib,
	PidsMax: 50, IOWeight: 300,
	IO: []resources.IODevice{{Path: "/dev/vda", Major: 254, Minor: 0, WriteBPS: 10 * mib, ReadIOPS: 1000}},
}

func TestV2Settings(t *testing.T) {
	tests := []struct {
		name   string
		limits resources.Limits
		host   v2Host
		want   string // settings one per line, in write order
	}{
		{
			name:   "representative",
			limits: representative,
			host:   v2HostWith(v2Files),
			want: `cpu.max=50000 100000
cpu.weight=200
cpuset.cpus=0-1
cpuset.mems=0
memory.max=67108864
memory.high=50331648
memory.swap.max=33554432
memory.oom.group=1
pids.max=50
io.weight=default 300
io.max=254:0 rbps=max wbps=10485760 riops=1000 wiops=max`,
		},
		{
			name:   "nothing asked resets everything, clears the old io.max device",
			limits: resources.Limits{},
			host:   v2HostWith(append(v2Files, "io.bfq.weight"), "8:0"),
			want: `cpu.max=max 100000
cpu.weight=100
cpuset.cpus=
cpuset.mems=
memory.max=max
memory.high=max
memory.swap.max=max
memory.oom.group=1
pids.max=max
io.weight=default 100
io.bfq.weight=100
io.max=8:0 rbps=max wbps=max riops=max wiops=max`,
		},
		{
			name:   "swap off, tiny CPU share rounds up to the minimum quota, bfq weight capped",
			limits: resources.Limits{CPUs: 0.001, MemoryMax: 10 * mib, MemorySwapOff: true, IOWeight: 5000},
			host:   v2HostWith([]string{"cpu.max", "memory.max", "memory.swap.max", "io.bfq.weight"}),
			want: `cpu.max=1000 100000
memory.max=10485760
memory.swap.max=0
io.bfq.weight=1000`,
		},
		{
			name:   "no cpuset controller and no swap file: resets are skipped",
			limits: resources.Limits{CPUs: 2.5},
			host:   v2HostWith(without(v2Files, "cpuset.cpus", "cpuset.mems", "memory.swap.max")),
			want: `cpu.max=250000 100000
cpu.weight=100
memory.max=max
memory.high=max
memory.oom.group=1
pids.max=max
io.weight=default 100`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v2Settings(tt.limits, tt.host)
			if err != nil {
				t.Fatal(err)
			}
			if s := joinSettings(got); s != tt.want {
				t.Errorf("got\n%s\nwant\n%s", s, tt.want)
			}
		})
	}
}

func TestV2Settings_Errors(t *testing.T) {
	tests := []struct {
		name   string
		limits resources.Limits
		files  []string
		want   []string // substrings of the error
	}{
		{"cpuset without controller", resources.Limits{CpusetCPUs: "0"}, without(v2Files, "cpuset.cpus", "cpuset.mems"),
			[]string{"cpuset_cpus: needs the cpuset controller"}},
		{"swap without accounting", resources.Limits{MemoryMax: mib, MemorySwapMax: mib}, without(v2Files, "memory.swap.max"),
			[]string{"memory_swap_max: this kernel does not account swap"}},
		{"io weight without io.weight or bfq", resources.Limits{IOWeight: 10}, without(v2Files, "io.weight"),
			[]string{"io_weight: needs io.weight or io.bfq.weight"}},
		{"no memory controller", resources.Limits{MemoryMax: mib, PidsMax: 5}, []string{"cpu.max"},
			[]string{"memory_max: needs the memory controller", "pids_max: needs the pids controller"}},
		{"bad values", resources.Limits{CPUs: -1, CPUWeight: 20000, IOWeight: -3}, v2Files,
			[]string{"cpus: -1 is not", "cpu_weight: 20000 is out of range", "io_weight: -3 is out of range"}},
		{"two partitions of one disk", resources.Limits{IO: []resources.IODevice{
			{Path: "/dev/sda1", Major: 8, WriteBPS: 1}, {Path: "/dev/sda2", Major: 8, WriteBPS: 2}}}, v2Files,
			[]string{"io: /dev/sda1 and /dev/sda2 are the same disk 8:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v2Settings(tt.limits, v2HostWith(tt.files))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// v1Files maps each controller to the files a v1 group offers.
var v1Files = map[string][]string{
	"cpu":    {"cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares"},
	"cpuset": {"cpuset.cpus", "cpuset.mems"},
	"memory": {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes"},
	"pids":   {"pids.max"},
	"blkio":  {"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"},
}

func v1HostWith(files map[string][]string, drop ...string) v1Host {
	set := map[string]bool{}
	for ctrl, fs := range files {
		for _, f := range fs {
			set[ctrl+"/"+f] = true
		}
	}
	for _, d := range drop {
		delete(set, d)
	}
	return v1Host{
		has:      func(ctrl, file string) bool { return set[ctrl+"/"+file] },
		memLimit: -1, memswLimit: -1,
		parentCpus: "0-3", parentMems: "0",
	}
}

func TestV1Settings(t *testing.T) {
	raised := v1HostWith(v1Files)
	raised.memLimit, raised.memswLimit = 64*mib, 96*mib
	limited := v1HostWith(v1Files)
	limited.memLimit, limited.memswLimit = 64*mib, 64*mib
	limited.throttled = map[string][]string{"blkio.throttle.write_bps_device": {"254:0", "8:0"}}
	bfq := v1HostWith(v1Files)
	bfq.has = func(ctrl, file string) bool { return ctrl+"/"+file == "blkio/blkio.bfq.weight" || ctrl == "memory" }
	tests := []struct {
		name   string
		limits resources.Limits
		host   v1Host
		want   string
	}{
		{
			name:   "representative, from unlimited: limit first",
			limits: withoutIOWeight(representative),
			host:   v1HostWith(v1Files),
			want: `cpu/cpu.cfs_period_us=100000
cpu/cpu.cfs_quota_us=50000
cpu/cpu.shares=2452
cpuset/cpuset.cpus=0-1
cpuset/cpuset.mems=0
memory/memory.limit_in_bytes=67108864
memory/memory.memsw.limit_in_bytes=100663296
memory/memory.soft_limit_in_bytes=50331648
pids/pids.max=50
blkio/blkio.throttle.write_bps_device=254:0 10485760
blkio/blkio.throttle.read_iops_device=254:0 1000`,
		},
		{
			name:   "raising memory above the current memsw writes memsw first",
			limits: resources.Limits{MemoryMax: 256 * mib, MemorySwapMax: 256 * mib},
			host:   raised,
			want: `cpu/cpu.cfs_period_us=100000
cpu/cpu.cfs_quota_us=-1
cpu/cpu.shares=1024
cpuset/cpuset.cpus=0-3
cpuset/cpuset.mems=0
memory/memory.memsw.limit_in_bytes=536870912
memory/memory.limit_in_bytes=268435456
memory/memory.soft_limit_in_bytes=-1
pids/pids.max=max`,
		},
		{
			name:   "removing every limit: memsw first, throttled devices cleared",
			limits: resources.Limits{},
			host:   limited,
			want: `cpu/cpu.cfs_period_us=100000
cpu/cpu.cfs_quota_us=-1
cpu/cpu.shares=1024
cpuset/cpuset.cpus=0-3
cpuset/cpuset.mems=0
memory/memory.memsw.limit_in_bytes=-1
memory/memory.limit_in_bytes=-1
memory/memory.soft_limit_in_bytes=-1
pids/pids.max=max
blkio/blkio.throttle.write_bps_device=254:0 0
blkio/blkio.throttle.write_bps_device=8:0 0`,
		},
		{
			name:   "lowering memory under the current memsw: limit first; swap off",
			limits: resources.Limits{MemoryMax: 32 * mib, MemorySwapOff: true},
			host:   raised,
			want: `cpu/cpu.cfs_period_us=100000
cpu/cpu.cfs_quota_us=-1
cpu/cpu.shares=1024
cpuset/cpuset.cpus=0-3
cpuset/cpuset.mems=0
memory/memory.limit_in_bytes=33554432
memory/memory.memsw.limit_in_bytes=33554432
memory/memory.soft_limit_in_bytes=-1
pids/pids.max=max`,
		},
		{
			name:   "io weight on BFQ",
			limits: resources.Limits{IOWeight: 100, MemoryMax: mib},
			host:   bfq,
			want: `memory/memory.limit_in_bytes=1048576
memory/memory.memsw.limit_in_bytes=-1
memory/memory.soft_limit_in_bytes=-1
blkio/blkio.bfq.weight=100`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v1Settings(tt.limits, tt.host)
			if err != nil {
				t.Fatal(err)
			}
			if s := joinSettings(got); s != tt.want {
				t.Errorf("got\n%s\nwant\n%s", s, tt.want)
			}
		})
	}
}

func withoutIOWeight(l resources.Limits) resources.Limits {
	l.IOWeight = 0
	return l
}

func TestV1Settings_Errors(t *testing.T) {
	tests := []struct {
		name   string
		limits resources.Limits
		drop   []string
		want   string
	}{
		{"swap needs memory_max", resources.Limits{MemorySwapMax: mib}, nil, "memory_swap_max: needs memory_max on cgroup v1"},
		{"swap off needs memory_max", resources.Limits{MemorySwapOff: true}, nil, "memory_swap_max: needs memory_max on cgroup v1"},
		{"swap without accounting", resources.Limits{MemoryMax: mib, MemorySwapMax: mib}, []string{"memory/memory.memsw.limit_in_bytes"}, "swapaccount=1"},
		{"io weight without CFQ or BFQ", resources.Limits{IOWeight: 200}, nil, "io_weight: needs blkio.weight"},
		{"no pids controller", resources.Limits{PidsMax: 3}, []string{"pids/pids.max"}, "pids_max: needs the pids controller"},
		{"no cpuset controller", resources.Limits{CpusetMems: "1"}, []string{"cpuset/cpuset.mems"}, "cpuset_mems: needs the cpuset controller"},
		{"overflow", resources.Limits{MemoryMax: math.MaxInt64 - 1, MemorySwapMax: 10}, nil, "overflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v1Settings(tt.limits, v1HostWith(v1Files, tt.drop...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestWeightToShares(t *testing.T) {
	for _, tt := range []struct {
		weight int
		shares uint64
	}{{0, 1024}, {1, 2}, {100, 1024}, {10000, 262144}} {
		if got := weightToShares(tt.weight); got != tt.shares {
			t.Errorf("weightToShares(%d) = %d, want %d", tt.weight, got, tt.shares)
		}
	}
	// The notes' table of the forward formula, which the inverse must honour.
	for shares, weight := range map[uint64]uint64{2: 1, 512: 59, 1024: 100, 2048: 174, 262144: 10000} {
		if got := sharesToWeight(shares); got != weight {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, weight)
		}
	}
	// Round trip: the shares a weight maps to read back as that weight, give
	// or take the rounding of both directions, and the mapping is monotonic.
	prev := uint64(0)
	for w := 1; w <= maxWeight; w++ {
		s := weightToShares(w)
		if s < prev {
			t.Fatalf("weightToShares(%d) = %d < weightToShares(%d) = %d", w, s, w-1, prev)
		}
		prev = s
		if back := int(sharesToWeight(s)); back < w-1-w/100 || back > w+1+w/100 {
			t.Fatalf("weight %d -> shares %d -> weight %d", w, s, back)
		}
	}
}

func TestIOWeightMappings(t *testing.T) {
	for _, tt := range []struct{ w, bfq, blkio int }{
		{0, 100, 500}, {1, 1, 10}, {100, 100, 500}, {200, 200, 1000}, {10000, 1000, 1000},
	} {
		if got := bfqWeight(tt.w); got != tt.bfq {
			t.Errorf("bfqWeight(%d) = %d, want %d", tt.w, got, tt.bfq)
		}
		if got := blkioWeight(tt.w); got != tt.blkio {
			t.Errorf("blkioWeight(%d) = %d, want %d", tt.w, got, tt.blkio)
		}
	}
}
