package gpu_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/open-autoglm/glmd/internal/gpu"
)

const gib = int64(1) << 30

func staticDevs() []gpu.Device {
	return []gpu.Device{
		{Index: 2, UUID: "GPU-c", Name: "NVIDIA H100 80GB HBM3", Memory: 80 * gib, NUMANode: 1},
		{Index: 0, UUID: "GPU-a", Name: "NVIDIA H100 80GB HBM3", Memory: 80 * gib, NUMANode: 0},
		{Index: 1, UUID: "GPU-b", Name: "NVIDIA H100 80GB HBM3", Memory: 80 * gib, NUMANode: 0},
		{Index: 3, UUID: "GPU-d", Name: "NVIDIA H100 80GB HBM3", Memory: 80 * gib, NUMANode: -1},
	}
}

func TestStatic_Devices(t *testing.T) {
	in := staticDevs()
	inv, err := gpu.NewStatic(in)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inv.Close() })
	devs, links, err := inv.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var uuids []string
	for i, d := range devs {
		if d.Index != i {
			t.Errorf("devs[%d].Index = %d: not in index order", i, d.Index)
		}
		uuids = append(uuids, d.UUID)
	}
	if got := strings.Join(uuids, " "); got != "GPU-a GPU-b GPU-c GPU-d" {
		t.Errorf("uuids = %s", got)
	}
	want := map[gpu.Pair]gpu.Link{
		gpu.PairOf("GPU-a", "GPU-b"): {Level: gpu.LevelNode},
		gpu.PairOf("GPU-a", "GPU-c"): {Level: gpu.LevelSystem},
		gpu.PairOf("GPU-b", "GPU-c"): {Level: gpu.LevelSystem},
	}
	if !maps.Equal(links, want) {
		t.Errorf("links = %v, want %v (GPU-d's node is unknown: no links)", links, want)
	}

	// The inventory owns its copy: neither the input nor a result changes it.
	in[0].UUID = "GPU-changed"
	devs[0].Name = "changed"
	links[gpu.PairOf("GPU-a", "GPU-b")] = gpu.Link{NVLink: 9}
	again, links2, _ := inv.Devices(context.Background())
	if again[0].Name == "changed" || again[2].UUID != "GPU-c" || !maps.Equal(links2, want) {
		t.Errorf("static inventory changed through a caller's slice or map: %v %v", again, links2)
	}
}

func TestStatic_NoDriver(t *testing.T) {
	ctx := context.Background()
	for name, inv := range map[string]gpu.Inventory{"static": must(gpu.NewStatic(staticDevs())), "none": gpu.None()} {
		t.Run(name, func(t *testing.T) {
			if _, err := inv.Processes(ctx, "GPU-a"); !errors.Is(err, gpu.ErrNotSupported) {
				t.Errorf("Processes error = %v, want ErrNotSupported", err)
			}
			if err := inv.Watch(ctx, make(chan gpu.XIDEvent)); !errors.Is(err, gpu.ErrNotSupported) {
				t.Errorf("Watch error = %v, want ErrNotSupported", err)
			}
			if err := inv.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
		})
	}
	if _, err := must(gpu.NewStatic(staticDevs())).Sample(ctx); !errors.Is(err, gpu.ErrNotSupported) {
		t.Errorf("static Sample error = %v, want ErrNotSupported", err)
	}
	devs, links, err := gpu.None().Devices(ctx)
	if len(devs) != 0 || len(links) != 0 || err != nil {
		t.Errorf("None().Devices = %v, %v, %v; want nothing", devs, links, err)
	}
	if samples, err := gpu.None().Sample(ctx); len(samples) != 0 || err != nil {
		t.Errorf("None().Sample = %v, %v; want nothing", samples, err)
	}
}

func must(inv gpu.Inventory, err error) gpu.Inventory {
	if err != nil {
		panic(err)
	}
	return inv
}

func TestStatic_Invalid(t *testing.T) {
	good := func() gpu.Device { return gpu.Device{Index: 0, UUID: "GPU-a", Memory: gib, NUMANode: 0} }
	tests := []struct {
		name string
		devs []gpu.Device
		want []string // each must appear in the error
	}{
		{"empty uuid", []gpu.Device{{Index: 0, Memory: gib}}, []string{"gpu.devices[0]: uuid is empty"}},
		{"blank uuid", []gpu.Device{{Index: 0, UUID: " GPU-a", Memory: gib}}, []string{`gpu.devices[0]: uuid " GPU-a" has blanks`}},
		{"duplicate uuid", []gpu.Device{good(), {Index: 1, UUID: "GPU-a", Memory: gib}},
			[]string{"gpu.devices[1]: uuid GPU-a is also gpu.devices[0]'s"}},
		{"duplicate index", []gpu.Device{good(), {Index: 0, UUID: "GPU-b", Memory: gib}},
			[]string{"gpu.devices[1]: index 0 is also gpu.devices[0]'s"}},
		{"negative index", []gpu.Device{{Index: -1, UUID: "GPU-a", Memory: gib}}, []string{"gpu.devices[0]: index -1 is negative"}},
		{"no memory", []gpu.Device{{Index: 0, UUID: "GPU-a"}}, []string{"gpu.devices[0]: memory 0"}},
		{"bad numa node", []gpu.Device{{Index: 0, UUID: "GPU-a", Memory: gib, NUMANode: -2}}, []string{"gpu.devices[0]: numa_node -2"}},
		{"all at once", []gpu.Device{good(), {Index: 0, UUID: "", Memory: -1}},
			[]string{"gpu.devices[1]: index 0", "gpu.devices[1]: uuid is empty", "gpu.devices[1]: memory -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := gpu.NewStatic(tt.devs)
			if err == nil {
				t.Fatalf("NewStatic accepted %v", tt.devs)
			}
			if inv != nil {
				t.Error("NewStatic returned an inventory with its error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
