package gpu_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/open-autoglm/glmd/internal/gpu"
	"github.com/open-autoglm/glmd/internal/gpu/gputest"
)

// scrape gathers c through a pedantic registry (which checks Describe
// against Collect) and returns each series as name{labels} -> value, the
// labels in name order, without uuid, pci_bus_id and model, which every GPU series has.
func scrape(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "uuid", "pci_bus_id", "model":
				default:
					ls = append(ls, fmt.Sprintf("%s=%s", l.GetName(), l.GetValue()))
				}
			}
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}

func TestCollector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := gputest.NewFake()
		f.SetUsed(0, 30*oneGiB)
		f.SetSample(0, func(s *gpu.Sample) {
			s.Utilization, s.MemoryUtil, s.Temperature, s.Power, s.Energy = 0.5, 0.25, 41, 312.5, 1e6
		})
		f.SetSample(1, func(s *gpu.Sample) { // the driver answers nothing
			s.MemoryUsed, s.Utilization, s.MemoryUtil, s.Temperature, s.Power, s.Energy = -1, -1, -1, -1, -1, -1
		})
		r := startPool(t, f, gpu.PoolOptions{})
		for _, a := range []struct {
			o   gpu.Owner
			req gpu.Request
		}{
			{owner("llm", 0), gpu.Request{IDs: []string{"0"}}},
			{owner("embed", 0), gpu.Request{IDs: []string{"3"}, Shared: true}},
			{owner("embed", 1), gpu.Request{IDs: []string{"3"}, Shared: true}},
		} {
			if _, err := r.p.Allocate(a.o, a.req); err != nil {
				t.Fatal(err)
			}
		}
		f.PushXID(0, 13)
		f.PushXID(0, 13)
		f.PushXID(2, 43)
		r.p.SetStrays(f.UUID(0), []gpu.Process{{PID: 7, Memory: oneGiB}, {PID: 8, Memory: -1}})
		synctest.Wait()

		got := scrape(t, r.p.Collector())
		want := map[string]float64{
			"glmd_gpu_info{driver_version=,gpu=0,numa_node=0}":           1,
			"glmd_gpu_info{driver_version=,gpu=7,numa_node=1}":           1,
			"glmd_gpu_memory_total_bytes{gpu=0}":                         float64(80 * oneGiB),
			"glmd_gpu_memory_used_bytes{gpu=0}":                          float64(30 * oneGiB),
			"glmd_gpu_memory_free_bytes{gpu=0}":                          float64(50 * oneGiB),
			"glmd_gpu_memory_used_bytes{gpu=2}":                          0,
			"glmd_gpu_utilization_ratio{gpu=0}":                          0.5,
			"glmd_gpu_memory_bandwidth_utilization_ratio{gpu=0}":         0.25,
			"glmd_gpu_temperature_celsius{gpu=0,sensor=gpu}":             41,
			"glmd_gpu_power_watts{gpu=0}":                                312.5,
			"glmd_gpu_energy_joules_total{gpu=0}":                        1e6,
			"glmd_gpu_xid_errors_total{action=restart_app,gpu=0,xid=13}": 2,
			"glmd_gpu_xid_errors_total{action=ignore,gpu=2,xid=43}":      1,
			"glmd_gpu_last_xid{gpu=0}":                                   13,
			"glmd_gpu_health_state{gpu=0,state=restart_app}":             1,
			"glmd_gpu_health_state{gpu=0,state=healthy}":                 0,
			"glmd_gpu_health_state{gpu=2,state=healthy}":                 1,
			"glmd_gpu_health_state{gpu=2,state=unknown}":                 0,
			"glmd_gpu_allocated{gpu=0,instance=0,task=llm}":              1,
			"glmd_gpu_allocated{gpu=3,instance=0,task=embed}":            1,
			"glmd_gpu_allocated{gpu=3,instance=1,task=embed}":            1,
			"glmd_gpu_stray_memory_bytes{gpu=0}":                         float64(oneGiB),
			"glmd_gpu_stray_memory_bytes{gpu=1}":                         0,
			"glmd_gpu_row_remap_pending{gpu=0}":                          0,
			"glmd_gpu_row_remap_failed{gpu=0}":                           0,
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
			}
		}
		for _, absent := range []string{
			"glmd_gpu_memory_used_bytes{gpu=1}", "glmd_gpu_memory_free_bytes{gpu=1}", "glmd_gpu_utilization_ratio{gpu=1}",
			"glmd_gpu_memory_bandwidth_utilization_ratio{gpu=1}", "glmd_gpu_temperature_celsius{gpu=1,sensor=gpu}",
			"glmd_gpu_power_watts{gpu=1}", "glmd_gpu_energy_joules_total{gpu=1}", "glmd_gpu_last_xid{gpu=1}",
		} {
			if _, ok := got[absent]; ok {
				t.Errorf("%s present, want it left out (-1 or none)", absent)
			}
		}
		for i := range gputest.FakeGPUs {
			n := 0
			for _, h := range gpu.Healths {
				n += int(got[fmt.Sprintf("glmd_gpu_health_state{gpu=%d,state=%s}", i, h)])
			}
			if n != 1 {
				t.Errorf("GPU %d: health_state sums to %d, want one-hot", i, n)
			}
		}

		// The exposition of one family, labels and all.
		wantText := `
# HELP glmd_gpu_allocated 1 for each task instance holding the GPU.
# TYPE glmd_gpu_allocated gauge
glmd_gpu_allocated{gpu="0",instance="0",model="NVIDIA H100 80GB HBM3",pci_bus_id="00000000:18:00.0",task="llm",uuid="GPU-fa4e0000-0000-4000-8000-000000000000"} 1
glmd_gpu_allocated{gpu="3",instance="0",model="NVIDIA H100 80GB HBM3",pci_bus_id="00000000:5D:00.0",task="embed",uuid="GPU-fa4e0000-0000-4000-8000-000000000003"} 1
glmd_gpu_allocated{gpu="3",instance="1",model="NVIDIA H100 80GB HBM3",pci_bus_id="00000000:5D:00.0",task="embed",uuid="GPU-fa4e0000-0000-4000-8000-000000000003"} 1
`
		if err := testutil.CollectAndCompare(r.p.Collector(), strings.NewReader(wantText), "glmd_gpu_allocated"); err != nil {
			t.Error(err)
		}
		problems, err := testutil.CollectAndLint(r.p.Collector())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	})
}

// TestCollector_WatchBroken: every GPU shows unknown while the watch is
// broken.
func TestCollector_WatchBroken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := gputest.NewFake()
		r := startPool(t, f, gpu.PoolOptions{})
		f.FailWatch(fmt.Errorf("nvml: broken"))
		synctest.Wait()
		got := scrape(t, r.p.Collector())
		for i := range gputest.FakeGPUs {
			if v := got[fmt.Sprintf("glmd_gpu_health_state{gpu=%d,state=unknown}", i)]; v != 1 {
				t.Errorf("GPU %d: unknown = %v, want 1", i, v)
			}
		}
		f.FailWatch(nil) // let Run end cleanly
	})
}
