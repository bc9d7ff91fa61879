package gpu_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/open-autoglm/glmd/internal/gpu"
	"github.com/open-autoglm/glmd/internal/gpu/gputest"
)

const oneGiB = int64(1) << 30

// newAllocator returns an Allocator of the emulated host and the fake it
// came from (for UUIDs).
func newAllocator(t *testing.T, opts ...gputest.FakeOption) (*gpu.Allocator, *gputest.Fake) {
	t.Helper()
	f := gputest.NewFake(opts...)
	devs, links, err := f.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return gpu.NewAllocator(devs, links), f
}

func indices(g gpu.Grant) []int {
	out := []int{}
	for _, d := range g.Devices {
		out = append(out, d.Index)
	}
	return out
}

func owner(task string, i int) gpu.Owner { return gpu.Owner{Task: task, Instance: i} }

// step is one Allocate (or, with release, one Release) of a sequence.
type step struct {
	owner     gpu.Owner
	req       gpu.Request
	prefer    []int // GPU indices, turned into UUIDs
	release   bool
	want      []int  // GPU indices in allocation order
	wantCPUs  string // checked when not ""
	wantMems  string
	wantErr   string // substring of the ShortError
	permanent bool
}

func TestAllocator_Allocate(t *testing.T) {
	a1, b1, c1, d1 := owner("a", 0), owner("b", 0), owner("c", 0), owner("d", 0)
	tests := []struct {
		name    string
		opts    []gputest.FakeOption
		used    map[int]int64
		sick    []int
		steps   []step
		noCheck bool
	}{
		{
			name: "notes: fill the host pair by pair",
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 1}, want: []int{0}, wantCPUs: "0-55,112-167", wantMems: "0"},
				{owner: b1, req: gpu.Request{Count: 1}, want: []int{1}},
				{owner: c1, req: gpu.Request{Count: 2}, want: []int{2, 3}},
				{owner: d1, req: gpu.Request{Count: 4}, want: []int{4, 5, 6, 7}, wantCPUs: "56-111,168-223", wantMems: "1"},
				{owner: owner("e", 0), req: gpu.Request{Count: 1}, wantErr: "needs 1 GPU, 0 available (8 held)"},
			},
		},
		{
			name: "notes: without NVLink, 1 and 4 busy, 3 GPUs",
			opts: []gputest.FakeOption{gputest.FakeNoNVLink()},
			steps: []step{
				{owner: a1, req: gpu.Request{IDs: []string{"1"}}, want: []int{1}},
				{owner: b1, req: gpu.Request{IDs: []string{"4"}}, want: []int{4}},
				{owner: c1, req: gpu.Request{Count: 3}, want: []int{0, 2, 3}, wantCPUs: "0-55,112-167", wantMems: "0"},
			},
		},
		{
			name: "with NVLink, 1 and 4 busy, 3 GPUs",
			steps: []step{
				{owner: a1, req: gpu.Request{IDs: []string{"1"}}, want: []int{1}},
				{owner: b1, req: gpu.Request{IDs: []string{"4"}}, want: []int{4}},
				{owner: c1, req: gpu.Request{Count: 3}, want: []int{0, 2, 3}},
			},
		},
		{
			name: "a pair spans NUMA nodes only when it must",
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 6}, want: []int{0, 1, 2, 3, 4, 5}, wantCPUs: "0-223", wantMems: "0-1"},
			},
		},
		{
			name: "a nearly full GPU is skipped under MinMemory",
			used: map[int]int64{0: 70 * oneGiB},
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 1, MinMemory: 40 * oneGiB}, want: []int{1}},
				{owner: b1, req: gpu.Request{Count: 1}, want: []int{0}},
			},
		},
		{
			name: "memory short now, with the message of the brief",
			used: map[int]int64{0: 70 * oneGiB, 1: 70 * oneGiB, 2: 70 * oneGiB, 4: 70 * oneGiB, 5: 70 * oneGiB, 6: 70 * oneGiB, 7: 79 * oneGiB},
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 2, MinMemory: 40 * oneGiB},
					wantErr: "needs 2 GPUs with >= 40GiB free, 1 available (7 with less memory free)"},
				{owner: a1, req: gpu.Request{Count: 1, MinMemory: 40 * oneGiB}, want: []int{3}},
			},
		},
		{
			name: "more memory than any GPU has is permanent",
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 1, MinMemory: 100 * oneGiB}, permanent: true,
					wantErr: "needs 1 GPU with >= 100GiB free, 0 available; this host has only 0 such GPUs (8 with less memory in total)"},
			},
		},
		{
			name: "an unhealthy GPU is skipped",
			sick: []int{0},
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 1}, want: []int{1}},
				{owner: b1, req: gpu.Request{IDs: []string{"0"}}, wantErr: "needs GPU 0 (GPU-fa4e0000-0000-4000-8000-000000000000), unhealthy"},
				{owner: c1, req: gpu.Request{Count: 8}, wantErr: "needs 8 GPUs, 6 available (1 held, 1 unhealthy)"},
			},
		},
		{
			name: "single NUMA node",
			steps: []step{
				{owner: a1, req: gpu.Request{IDs: []string{"0", "1", "4", "5"}}, want: []int{0, 1, 4, 5}},
				{owner: d1, req: gpu.Request{IDs: []string{"2", "6"}, SingleNUMA: true}, permanent: true,
					wantErr: "needs GPUs 2,6 on one NUMA node"},
				{owner: b1, req: gpu.Request{Count: 3, SingleNUMA: true},
					wantErr: "needs 3 GPUs on one NUMA node, at most 2 available on a node (4 held)"},
				{owner: b1, req: gpu.Request{Count: 3}, want: []int{2, 3, 6}},
				{owner: c1, req: gpu.Request{Count: 5, SingleNUMA: true}, permanent: true,
					wantErr: "this host has at most 4 such GPUs on a node"},
			},
		},
		{
			name: "count beyond the host is permanent",
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 9}, permanent: true, wantErr: "needs 9 GPUs, 8 available; this host has only 8 such GPUs"},
				{owner: a1, req: gpu.Request{Count: -1}, permanent: true, wantErr: "must not be negative"},
			},
		},
		{
			name: "model",
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 1, Model: "h100 80gb"}, want: []int{0}},
				{owner: b1, req: gpu.Request{Count: 1, Model: "A100"}, permanent: true,
					wantErr: `needs 1 "A100" GPU, 0 available; this host has only 0 such GPUs (8 of another model)`},
				{owner: c1, req: gpu.Request{IDs: []string{"5"}, Model: "A100"}, permanent: true,
					wantErr: `needs GPU 5 (GPU-fa4e0000-0000-4000-8000-000000000005), a NVIDIA H100 80GB HBM3, not "A100"`},
			},
		},
		{
			name: "explicit IDs keep their order; indices and UUIDs",
			steps: []step{
				{owner: a1, req: gpu.Request{IDs: []string{"GPU-fa4e0000-0000-4000-8000-000000000006", "2"}}, want: []int{6, 2},
					wantCPUs: "0-223", wantMems: "0-1"},
				{owner: b1, req: gpu.Request{IDs: []string{"2"}},
					wantErr: "needs GPU 2 (GPU-fa4e0000-0000-4000-8000-000000000002), held by a:0"},
				{owner: b1, req: gpu.Request{IDs: []string{"9"}}, permanent: true, wantErr: `no such GPU "9"`},
				{owner: b1, req: gpu.Request{IDs: []string{"2", "9"}}, permanent: true,
					wantErr: `needs GPU 2 (GPU-fa4e0000-0000-4000-8000-000000000002), held by a:0; no such GPU "9"`},
				{owner: b1, req: gpu.Request{IDs: []string{"3", "3"}}, permanent: true, wantErr: `GPU "3" named twice`},
				{owner: a1, release: true},
				{owner: b1, req: gpu.Request{IDs: []string{"2"}}, want: []int{2}},
			},
		},
		{
			name: "shared GPUs pack; exclusive holders never share",
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 1, Shared: true}, want: []int{0}},
				{owner: b1, req: gpu.Request{Count: 1, Shared: true}, want: []int{0}},
				{owner: c1, req: gpu.Request{Count: 1}, want: []int{1}},
				{owner: d1, req: gpu.Request{IDs: []string{"1"}, Shared: true},
					wantErr: "needs GPU 1 (GPU-fa4e0000-0000-4000-8000-000000000001), held by c:0"},
				{owner: d1, req: gpu.Request{IDs: []string{"0"}}, wantErr: "held by a:0, b:0"},
				{owner: d1, req: gpu.Request{IDs: []string{"0"}, Shared: true}, want: []int{0}},
			},
		},
		{
			name: "prefer: the previous GPUs come back in their order when they fit",
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 2}, prefer: []int{7, 6}, want: []int{7, 6}},
				// 6 is taken: the best pair completes node 1, keeping node 0 whole.
				{owner: b1, req: gpu.Request{Count: 2}, prefer: []int{6, 5}, want: []int{4, 5}},
				{owner: c1, req: gpu.Request{Count: 1}, prefer: []int{4, 5}, want: []int{0}},
				{owner: d1, req: gpu.Request{Count: 1, MinMemory: 90 * oneGiB}, prefer: []int{3}, permanent: true, wantErr: "less memory in total"},
			},
		},
		{
			name: "an owner's new request replaces what it held",
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 1}, want: []int{0}},
				{owner: a1, req: gpu.Request{Count: 2}, want: []int{0, 1}},
				{owner: b1, req: gpu.Request{Count: 7}, wantErr: "needs 7 GPUs, 6 available (2 held)"},
				{owner: a1, req: gpu.Request{}, want: []int{}},
				{owner: b1, req: gpu.Request{Count: 7}, want: []int{0, 1, 2, 3, 4, 5, 6}},
			},
		},
		{
			name: "MIG GPUs are never handed out whole",
			opts: []gputest.FakeOption{gputest.FakeMIG(0)},
			steps: []step{
				{owner: a1, req: gpu.Request{Count: 1}, want: []int{1}},
				{owner: b1, req: gpu.Request{IDs: []string{"0"}}, permanent: true,
					wantErr: "needs GPU 0 (GPU-fa4e0000-0000-4000-8000-000000000000), in MIG mode, and glmd hands out whole GPUs only"},
				{owner: c1, req: gpu.Request{Count: 8}, permanent: true,
					wantErr: "needs 8 GPUs, 6 available; this host has only 7 such GPUs (1 held, 1 in MIG mode (glmd hands out whole GPUs only))"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, f := newAllocator(t, tt.opts...)
			for i, b := range tt.used {
				a.SetUsed(f.UUID(i), b)
			}
			for _, i := range tt.sick {
				a.SetHealthy(f.UUID(i), false)
			}
			for n, s := range tt.steps {
				if s.release {
					a.Release(s.owner)
					continue
				}
				var prefer []string
				for _, i := range s.prefer {
					prefer = append(prefer, f.UUID(i))
				}
				g, err := a.Allocate(s.owner, s.req, prefer)
				if s.wantErr != "" {
					var short *gpu.ShortError
					if !errors.As(fmt.Errorf("wrapped: %w", err), &short) {
						t.Fatalf("step %d: Allocate(%+v) = %v, %v; want a ShortError", n, s.req, indices(g), err)
					}
					if !strings.Contains(err.Error(), s.wantErr) {
						t.Errorf("step %d: error %q, want it to contain %q", n, err, s.wantErr)
					}
					if short.Permanent() != s.permanent {
						t.Errorf("step %d: %q: Permanent() = %v, want %v", n, err, short.Permanent(), s.permanent)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: Allocate(%+v): %v", n, s.req, err)
				}
				if got := indices(g); !slices.Equal(got, s.want) {
					t.Errorf("step %d: Allocate(%+v) = %v, want %v", n, s.req, got, s.want)
				}
				if s.wantCPUs != "" && g.CPUs != s.wantCPUs {
					t.Errorf("step %d: CPUs %q, want %q", n, g.CPUs, s.wantCPUs)
				}
				if s.wantMems != "" && g.Mems != s.wantMems {
					t.Errorf("step %d: Mems %q, want %q", n, g.Mems, s.wantMems)
				}
				if held := a.Held(s.owner); !slices.Equal(held, g.UUIDs()) {
					t.Errorf("step %d: Held = %v, want %v", n, held, g.UUIDs())
				}
			}
		})
	}
}

func TestAllocator_FailedAllocateChangesNothing(t *testing.T) {
	a, f := newAllocator(t)
	if _, err := a.Allocate(owner("a", 0), gpu.Request{IDs: []string{"0"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Allocate(owner("a", 0), gpu.Request{Count: 9}, nil); err == nil {
		t.Fatal("9 GPUs allocated on an 8-GPU host")
	}
	if got := a.Holders(f.UUID(0)); !slices.Equal(got, []gpu.Owner{owner("a", 0)}) {
		t.Errorf("after a failed Allocate, GPU 0 holders = %v, want a:0 still", got)
	}
}

func TestAllocator_Holders(t *testing.T) {
	a, f := newAllocator(t)
	for _, o := range []gpu.Owner{owner("b", 1), owner("a", 2), owner("b", 0)} {
		if _, err := a.Allocate(o, gpu.Request{IDs: []string{"3"}, Shared: true}, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := []gpu.Owner{owner("a", 2), owner("b", 0), owner("b", 1)}
	if got := a.Holders(f.UUID(3)); !slices.Equal(got, want) {
		t.Errorf("Holders = %v, want %v", got, want)
	}
	a.Release(owner("b", 0))
	a.Release(owner("b", 0))
	if got := a.Holders(f.UUID(3)); len(got) != 2 {
		t.Errorf("after Release twice, Holders = %v", got)
	}
	if got := a.Holders("GPU-none"); got != nil {
		t.Errorf("Holders of an unknown GPU = %v", got)
	}
}

// TestAllocator_Deterministic replays one history twice.
func TestAllocator_Deterministic(t *testing.T) {
	run := func() [][]int {
		a, _ := newAllocator(t, gputest.FakeNoNVLink())
		var out [][]int
		for i, n := range []int{1, 3, 2, 1, 1} {
			g, err := a.Allocate(owner("t", i), gpu.Request{Count: n}, nil)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, indices(g))
		}
		return out
	}
	first := run()
	for range 5 {
		if again := run(); !slices.EqualFunc(first, again, slices.Equal) {
			t.Fatalf("history gave %v, then %v", first, again)
		}
	}
}

// bigHost is 4 NUMA nodes of 8 GPUs, NVLink pairs inside each switch pair.
func bigHost(n int) ([]gpu.Device, map[gpu.Pair]gpu.Link) {
	var devs []gpu.Device
	for i := range n {
		devs = append(devs, gpu.Device{Index: i, UUID: fmt.Sprintf("GPU-big-%02d", i), Name: "H200", Memory: 141 * oneGiB, NUMANode: i / 8})
	}
	links := map[gpu.Pair]gpu.Link{}
	for i := range devs {
		for j := i + 1; j < len(devs); j++ {
			l := gpu.Link{Level: gpu.LevelSystem}
			switch {
			case i/2 == j/2:
				l = gpu.Link{Level: gpu.LevelSingle, NVLink: 4}
			case i/8 == j/8:
				l.Level = gpu.LevelNode
			}
			links[gpu.PairOf(devs[i].UUID, devs[j].UUID)] = l
		}
	}
	return devs, links
}

// TestAllocator_Greedy checks the fallback of hosts too big to enumerate
// (8 of 31 free GPUs: 7.9 million subsets).
func TestAllocator_Greedy(t *testing.T) {
	devs, links := bigHost(32)
	a := gpu.NewAllocator(devs, links)
	if g, err := a.Allocate(owner("a", 0), gpu.Request{IDs: []string{"0"}}, nil); err != nil || len(g.Devices) != 1 {
		t.Fatal(g, err)
	}
	g, err := a.Allocate(owner("b", 0), gpu.Request{Count: 8}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := indices(g), []int{8, 9, 10, 11, 12, 13, 14, 15}; !slices.Equal(got, want) {
		t.Errorf("greedy 8 of 31 = %v, want the whole node 1 %v", got, want)
	}
	g, err = a.Allocate(owner("c", 0), gpu.Request{Count: 9, SingleNUMA: true}, nil)
	if err == nil {
		t.Errorf("9 GPUs on one 8-GPU node: %v", indices(g))
	}
	g, err = a.Allocate(owner("c", 0), gpu.Request{Count: 7, SingleNUMA: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := indices(g), []int{1, 2, 3, 4, 5, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("greedy 7 on one node = %v, want the rest of node 0 %v", got, want)
	}
}

func TestGrant_Env(t *testing.T) {
	g := gpu.Grant{Devices: []gpu.Device{{Index: 5, UUID: "GPU-b"}, {Index: 2, UUID: "GPU-a"}}}
	tests := []struct {
		format string
		want   []string
	}{
		{"uuid", []string{"CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=GPU-b,GPU-a", "GLMD_GPU_UUIDS=GPU-b,GPU-a", "NVIDIA_VISIBLE_DEVICES=GPU-b,GPU-a"}},
		{"index", []string{"CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=5,2", "GLMD_GPU_UUIDS=GPU-b,GPU-a", "NVIDIA_VISIBLE_DEVICES=GPU-b,GPU-a"}},
		{"", []string{"CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=GPU-b,GPU-a", "GLMD_GPU_UUIDS=GPU-b,GPU-a", "NVIDIA_VISIBLE_DEVICES=GPU-b,GPU-a"}},
	}
	for _, tt := range tests {
		if got := g.Env(tt.format); !slices.Equal(got, tt.want) {
			t.Errorf("Env(%q) = %q, want %q", tt.format, got, tt.want)
		}
	}
	if got := (gpu.Grant{}).Env("uuid"); got != nil {
		t.Errorf("zero Grant Env = %q, want nil", got)
	}
	if got := g.UUIDs(); !slices.Equal(got, []string{"GPU-b", "GPU-a"}) {
		t.Errorf("UUIDs = %v", got)
	}
}

// TestAllocator_UnknownLocality: a device without CPUs or node leaves the
// grant unpinned rather than pinned to half the truth.
func TestAllocator_UnknownLocality(t *testing.T) {
	devs := []gpu.Device{
		{Index: 0, UUID: "GPU-0", Memory: oneGiB, NUMANode: 0, CPUs: "0-3"},
		{Index: 1, UUID: "GPU-1", Memory: oneGiB, NUMANode: -1},
	}
	a := gpu.NewAllocator(devs, nil)
	g, err := a.Allocate(owner("a", 0), gpu.Request{Count: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.CPUs != "" || g.Mems != "" {
		t.Errorf("CPUs %q Mems %q, want both empty", g.CPUs, g.Mems)
	}
	g, err = a.Allocate(owner("a", 0), gpu.Request{IDs: []string{"0"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.CPUs != "0-3" || g.Mems != "0" {
		t.Errorf("CPUs %q Mems %q, want 0-3 and 0", g.CPUs, g.Mems)
	}
}

func BenchmarkAllocate(b *testing.B) {
	for _, n := range []struct{ gpus, count int }{{8, 4}, {16, 8}, {32, 8}} {
		b.Run(fmt.Sprintf("%dof%d", n.count, n.gpus), func(b *testing.B) {
			devs, links := bigHost(n.gpus)
			a := gpu.NewAllocator(devs, links)
			for b.Loop() {
				if _, err := a.Allocate(owner("a", 0), gpu.Request{Count: n.count}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
