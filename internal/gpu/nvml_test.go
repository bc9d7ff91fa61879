//go:build linux && cgo

package gpu_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/open-autoglm/glmd/internal/gpu"
	"github.com/open-autoglm/glmd/internal/gpu/gputest"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// waitLimit is how long a test waits for something that should happen
// at once: generous, since CI machines are slow and shared.
const waitLimit = 10 * time.Second

func open(t *testing.T, dgx *gputest.DGX, opts gpu.NVMLOptions) gpu.Inventory {
	t.Helper()
	inv, err := gpu.NewNVML(dgx.Interface(), opts)
	if err != nil {
		t.Fatalf("NewNVML on %v: %v", dgx, err)
	}
	t.Cleanup(func() { _ = inv.Close() })
	return inv
}

func mockDevice(dgx *gputest.DGX, i int) *server.Device {
	return dgx.Server.Devices[i].(*server.Device)
}

func TestNVML_Devices(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name   string
		opts   []gputest.DGXOption
		nvlink func(i, j int) int
	}{
		{"nvlink pairs", nil, func(i, j int) int {
			if i/2 == j/2 {
				return gputest.DGXNVLinkLanes
			}
			return 0
		}},
		{"no nvlink", []gputest.DGXOption{gputest.DGXNoNVLink()}, func(int, int) int { return 0 }},
		{"nvswitch", []gputest.DGXOption{gputest.DGXNVSwitch()}, func(int, int) int { return gputest.DGXNVSwitchLanes }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dgx := gputest.NewDGX(tt.opts...)
			inv := open(t, dgx, gpu.NVMLOptions{SysfsRoot: t.TempDir()}) // an empty sysfs: NVML must answer
			devs, links, err := inv.Devices(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(devs) != gputest.DGXGPUs {
				t.Fatalf("got %d devices, want %d", len(devs), gputest.DGXGPUs)
			}
			for i, d := range devs {
				want := gpu.Device{
					Index: i, UUID: dgx.UUID(i), Name: "Mock NVIDIA A100-SXM4-40GB", Memory: 40960 * mib,
					PCIBusID: gputest.DGXBusIDs[i], NUMANode: i / 4, CPUs: gputest.DGXNodeCPUs[i/4], Minor: i,
				}
				if d != want {
					t.Errorf("device %d:\n got %+v\nwant %+v", i, d, want)
				}
			}
			if len(links) != gputest.DGXGPUs*(gputest.DGXGPUs-1)/2 {
				t.Errorf("got %d links, want one per pair", len(links))
			}
			for i := range devs {
				for j := i + 1; j < len(devs); j++ {
					level := gpu.LevelSystem
					switch {
					case i/2 == j/2:
						level = gpu.LevelSingle
					case i/4 == j/4:
						level = gpu.LevelNode
					}
					want := gpu.Link{Level: level, NVLink: tt.nvlink(i, j)}
					if got := links[gpu.PairOf(devs[i].UUID, devs[j].UUID)]; got != want {
						t.Errorf("link %d-%d = %+v, want %+v", i, j, got, want)
					}
				}
			}
		})
	}
}

func TestNVML_Devices_MIG(t *testing.T) {
	dgx := gputest.NewDGX()
	dgx.SetMIG(3, true)
	devs, _, err := open(t, dgx, gpu.NVMLOptions{}).Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range devs {
		if d.MIG != (i == 3) {
			t.Errorf("device %d: MIG = %v", i, d.MIG)
		}
	}
}

// TestNVML_Devices_Sysfs: where NVML cannot tell a GPU's NUMA node and
// CPUs, the inventory reads them from sysfs; where sysfs cannot either,
// they are unknown, not an error.
func TestNVML_Devices_Sysfs(t *testing.T) {
	root := t.TempDir()
	for i, busID := range gputest.DGXBusIDs {
		if i == 7 {
			break // GPU 7 has no sysfs entry
		}
		// NVML writes "00000000:AB:00.0"; sysfs names it "0000:ab:00.0".
		dir := filepath.Join(root, "bus", "pci", "devices", strings.ToLower(busID[4:]))
		writeFile(t, filepath.Join(dir, "numa_node"), []string{"0\n", "1\n"}[i/4])
		writeFile(t, filepath.Join(dir, "local_cpulist"), gputest.DGXNodeCPUs[i/4]+"\n")
	}
	dgx := gputest.NewDGX(gputest.DGXNoAffinity())
	devs, _, err := open(t, dgx, gpu.NVMLOptions{SysfsRoot: root}).Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range devs {
		wantNode, wantCPUs := i/4, gputest.DGXNodeCPUs[i/4]
		if i == 7 {
			wantNode, wantCPUs = -1, ""
		}
		if d.NUMANode != wantNode || d.CPUs != wantCPUs {
			t.Errorf("device %d: node %d, cpus %q; want %d, %q", i, d.NUMANode, d.CPUs, wantNode, wantCPUs)
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNVML_Devices_Lost: a GPU that fell off the bus is left out; the
// others are listed.
func TestNVML_Devices_Lost(t *testing.T) {
	dgx := gputest.NewDGX()
	dgx.Lose(2)
	devs, links, err := open(t, dgx, gpu.NVMLOptions{}).Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range devs {
		got = append(got, d.UUID)
	}
	want := slices.Delete(dgx.UUIDs(), 2, 3)
	if !slices.Equal(got, want) {
		t.Errorf("devices %v, want all but GPU 2 %v", got, want)
	}
	for p := range links {
		if p[0] == dgx.UUID(2) || p[1] == dgx.UUID(2) {
			t.Errorf("link %v to the lost GPU", p)
		}
	}
}

func TestNVML_Sample(t *testing.T) {
	dgx := gputest.NewDGX()
	dgx.SetUsed(1, 10*gib)
	dgx.SetECC(2, 3)
	dgx.SetRemap(3, true, false)
	dgx.SetRemap(4, false, true)
	dgx.SetRecoveryAction(5, nvml.GPU_RECOVERY_ACTION_GPU_RESET)
	inv := open(t, dgx, gpu.NVMLOptions{})
	// Sample works before Devices ever ran.
	samples, err := inv.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != gputest.DGXGPUs {
		t.Fatalf("got %d samples, want %d", len(samples), gputest.DGXGPUs)
	}
	for i, s := range samples {
		want := gpu.Sample{
			UUID: dgx.UUID(i), Utilization: 0.5, MemoryUtil: 0.2, Temperature: float64(30 + i),
			Power: float64(60 + i), Energy: float64(1000 * (i + 1)), SMClock: 1410e6,
			ClockEventReasons: int64(nvml.ClocksEventReasonGpuIdle),
		}
		switch i {
		case 1:
			want.MemoryUsed = 10 * gib
		case 2:
			want.ECCUncorrected = 3
		case 3:
			want.RemapPending, want.RemappedUncorrectable = true, 1
		case 4:
			want.RemapFailed, want.RemappedUncorrectable = true, 1
		case 5:
			want.RecoveryAction = int(nvml.GPU_RECOVERY_ACTION_GPU_RESET)
		}
		if s != want {
			t.Errorf("sample %d:\n got %+v\nwant %+v", i, s, want)
		}
	}
	if errs := inv.(gpu.CallErrorCounter).CallErrors(); len(errs) != 0 {
		t.Errorf("call errors on a healthy host: %v", errs)
	}
}

// TestNVML_Sample_Unanswered: values NVML does not support are -1 (false
// for flags) without an error; other failures are -1 too, and counted.
func TestNVML_Sample_Unanswered(t *testing.T) {
	dgx := gputest.NewDGX()
	d0 := mockDevice(dgx, 0)
	d0.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d0.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, true, true, nvml.ERROR_NOT_SUPPORTED }
	d0.GetFieldValuesFunc = func(v []nvml.FieldValue) nvml.Return {
		v[0].NvmlReturn = uint32(nvml.ERROR_NOT_SUPPORTED) // a driver without field 230
		return nvml.SUCCESS
	}
	d0.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	inv := open(t, dgx, gpu.NVMLOptions{})
	samples, err := inv.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := samples[0]
	if s.Temperature != -1 || s.Power != -1 || s.RecoveryAction != -1 || s.RemappedCorrectable != -1 ||
		s.RemappedUncorrectable != -1 || s.RemapPending || s.RemapFailed {
		t.Errorf("sample 0 = %+v: want -1 for temperature, power, recovery action, remapped rows; remap flags false", s)
	}
	if s.MemoryUsed != 0 || s.Utilization != 0.5 {
		t.Errorf("sample 0 = %+v: the answered values are lost", s)
	}
	want := map[gpu.CallError]uint64{{Call: "GetPowerUsage", Code: "ERROR_UNKNOWN"}: 1}
	if got := inv.(gpu.CallErrorCounter).CallErrors(); !reflect.DeepEqual(got, want) {
		t.Errorf("CallErrors = %v, want %v", got, want)
	}
}

// TestNVML_Sample_Lost: a lost GPU is named in the error, gets no sample,
// and is not asked again within the pass; the others are sampled.
func TestNVML_Sample_Lost(t *testing.T) {
	dgx := gputest.NewDGX()
	inv := open(t, dgx, gpu.NVMLOptions{})
	if _, _, err := inv.Devices(context.Background()); err != nil {
		t.Fatal(err)
	}
	dgx.Lose(5)
	samples, err := inv.Sample(context.Background())
	if !errors.Is(err, gpu.ErrGPULost) {
		t.Fatalf("Sample error = %v, want ErrGPULost", err)
	}
	if got := gpu.LostGPUs(err); !slices.Equal(got, []string{dgx.UUID(5)}) {
		t.Errorf("LostGPUs = %v, want GPU 5 %s", got, dgx.UUID(5))
	}
	var nerr *gpu.NVMLError
	if !errors.As(err, &nerr) || nerr.UUID != dgx.UUID(5) || nerr.Name != "ERROR_GPU_IS_LOST" {
		t.Errorf("error %v: want an *NVMLError naming GPU 5", err)
	}
	if len(samples) != gputest.DGXGPUs-1 {
		t.Errorf("got %d samples, want the %d GPUs not lost", len(samples), gputest.DGXGPUs-1)
	}
	for _, s := range samples {
		if s.UUID == dgx.UUID(5) {
			t.Error("a sample of the lost GPU")
		}
	}
	if n := len(mockDevice(dgx, 5).GetUtilizationRatesCalls()); n != 0 {
		t.Errorf("GetUtilizationRates called %d times on the lost GPU after GetMemoryInfo failed", n)
	}
}

func TestNVML_Processes(t *testing.T) {
	dgx := gputest.NewDGX()
	dgx.SetProcesses(2,
		nvml.ProcessInfo{Pid: 4242, UsedGpuMemory: 3 * uint64(gib)},
		nvml.ProcessInfo{Pid: 4343, UsedGpuMemory: math.MaxUint64}) // NVML_VALUE_NOT_AVAILABLE
	inv := open(t, dgx, gpu.NVMLOptions{})
	ctx := context.Background()

	procs, err := inv.Processes(ctx, dgx.UUID(2))
	want := []gpu.Process{{PID: 4242, Memory: 3 * gib}, {PID: 4343, Memory: -1}}
	if err != nil || !slices.Equal(procs, want) {
		t.Errorf("Processes(GPU 2) = %v, %v; want %v", procs, err, want)
	}
	if procs, err := inv.Processes(ctx, dgx.UUID(0)); err != nil || len(procs) != 0 {
		t.Errorf("Processes(GPU 0) = %v, %v; want none", procs, err)
	}
	if _, err := inv.Processes(ctx, "GPU-not-here"); err == nil || !strings.Contains(err.Error(), "GPU-not-here") {
		t.Errorf("Processes(unknown) error = %v, want one naming the UUID", err)
	}
	dgx.Lose(2)
	if _, err := inv.Processes(ctx, dgx.UUID(2)); !errors.Is(err, gpu.ErrGPULost) {
		t.Errorf("Processes(lost GPU) error = %v, want ErrGPULost", err)
	}
}

// startWatch runs Watch until the test ends, and returns its events and
// its result.
func startWatch(t *testing.T, ctx context.Context, inv gpu.Inventory) (<-chan gpu.XIDEvent, <-chan error) {
	t.Helper()
	events := make(chan gpu.XIDEvent)
	done := make(chan error, 1)
	go func() { done <- inv.Watch(ctx, events) }()
	return events, done
}

func nextEvent(t *testing.T, events <-chan gpu.XIDEvent, done <-chan error) gpu.XIDEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case err := <-done:
		t.Fatalf("Watch returned %v before the event", err)
	case <-time.After(waitLimit):
		t.Fatalf("no event after %v", waitLimit)
	}
	return gpu.XIDEvent{}
}

func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("Watch did not return within %v", waitLimit)
	}
	return nil
}

func TestNVML_Watch(t *testing.T) {
	dgx := gputest.NewDGX()
	inv := open(t, dgx, gpu.NVMLOptions{WaitTimeout: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, done := startWatch(t, ctx, inv)
	// GPU 6 is lost once the watch knows it; lost before, it is left out.
	testenv.Eventually(t, waitLimit, func() bool { created, _ := dgx.EventSets(); return created == 1 }, "watch created no event set")

	dgx.PushXID(3, 79)
	dgx.PushDoubleBit(1)
	dgx.Lose(6)
	dgx.PushXID(0, 13)
	want := []gpu.XIDEvent{
		{UUID: dgx.UUID(3), XID: 79, Kind: gpu.EventXID},
		{UUID: dgx.UUID(1), Kind: gpu.EventDoubleBit},
		{UUID: dgx.UUID(6), Kind: gpu.EventLost},
		{UUID: dgx.UUID(0), XID: 13, Kind: gpu.EventXID},
	}
	for i, w := range want {
		ev := nextEvent(t, events, done)
		if ev.Time.IsZero() {
			t.Errorf("event %d has no time", i)
		}
		ev.Time = time.Time{}
		if ev != w {
			t.Errorf("event %d = %+v, want %+v", i, ev, w)
		}
	}
	cancel()
	if err := waitDone(t, done); err != nil {
		t.Errorf("Watch after cancel = %v, want nil", err)
	}
	if created, freed := dgx.EventSets(); created != 1 || freed != 1 {
		t.Errorf("event sets created %d, freed %d; want 1, 1", created, freed)
	}
}

// TestNVML_Watch_Cancel: with nothing happening, Watch returns nil soon
// after its context ends (within one wait timeout, one second by default).
func TestNVML_Watch_Cancel(t *testing.T) {
	dgx := gputest.NewDGX()
	inv := open(t, dgx, gpu.NVMLOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	_, done := startWatch(t, ctx, inv)
	testenv.Eventually(t, waitLimit, func() bool { created, _ := dgx.EventSets(); return created == 1 }, "watch created no event set")
	cancel()
	if err := waitDone(t, done); err != nil {
		t.Errorf("Watch after cancel = %v, want nil", err)
	}
	if _, freed := dgx.EventSets(); freed != 1 {
		t.Error("event set not freed")
	}
}

// TestNVML_Watch_LostAtRegistration: a GPU lost before the watch starts is
// reported, and the others are still watched.
func TestNVML_Watch_LostAtRegistration(t *testing.T) {
	dgx := gputest.NewDGX()
	inv := open(t, dgx, gpu.NVMLOptions{WaitTimeout: 20 * time.Millisecond})
	if _, _, err := inv.Devices(context.Background()); err != nil {
		t.Fatal(err)
	}
	dgx.Lose(4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, done := startWatch(t, ctx, inv)
	if ev := nextEvent(t, events, done); ev.Kind != gpu.EventLost || ev.UUID != dgx.UUID(4) {
		t.Errorf("first event %+v, want GPU 4 lost", ev)
	}
	dgx.PushXID(2, 48)
	// The queued lost news of GPU 4 is not sent twice.
	if ev := nextEvent(t, events, done); ev.Kind != gpu.EventXID || ev.XID != 48 || ev.UUID != dgx.UUID(2) {
		t.Errorf("second event %+v, want XID 48 on GPU 2", ev)
	}
	cancel()
	if err := waitDone(t, done); err != nil {
		t.Errorf("Watch after cancel = %v", err)
	}
}

func TestNVML_Watch_Errors(t *testing.T) {
	tests := []struct {
		name     string
		decorate func(*gputest.DGX)
		check    func(t *testing.T, err error)
		sets     int
	}{
		{"wait fails", func(dgx *gputest.DGX) {
			dgx.Server.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) {
				return &mock.EventSet{
					WaitFunc: func(uint32) (nvml.EventData, nvml.Return) { return nvml.EventData{}, nvml.ERROR_UNKNOWN },
					FreeFunc: func() nvml.Return { return nvml.SUCCESS },
				}, nvml.SUCCESS
			}
		}, func(t *testing.T, err error) {
			var nerr *gpu.NVMLError
			if !errors.As(err, &nerr) || nerr.Call != "EventSetWait" || nerr.Name != "ERROR_UNKNOWN" {
				t.Errorf("Watch = %v, want the failed EventSetWait", err)
			}
		}, 0},
		{"no events", func(dgx *gputest.DGX) {
			for i := range gputest.DGXGPUs {
				mockDevice(dgx, i).GetSupportedEventTypesFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
			}
		}, func(t *testing.T, err error) {
			if !errors.Is(err, gpu.ErrNotSupported) {
				t.Errorf("Watch = %v, want ErrNotSupported", err)
			}
		}, 1},
		{"register fails", func(dgx *gputest.DGX) {
			mockDevice(dgx, 3).RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.ERROR_UNKNOWN }
		}, func(t *testing.T, err error) {
			var nerr *gpu.NVMLError
			if !errors.As(err, &nerr) || nerr.Call != "RegisterEvents" {
				t.Errorf("Watch = %v, want the failed RegisterEvents", err)
			}
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dgx := gputest.NewDGX()
			tt.decorate(dgx)
			inv := open(t, dgx, gpu.NVMLOptions{})
			_, done := startWatch(t, context.Background(), inv)
			err := waitDone(t, done)
			if err == nil {
				t.Fatal("Watch returned nil")
			}
			tt.check(t, err)
			if created, freed := dgx.EventSets(); created != tt.sets || freed != tt.sets {
				t.Errorf("event sets created %d, freed %d; want %d", created, freed, tt.sets)
			}
		})
	}
}

// TestNVML_Close: Close shuts NVML down once, stops a running watch, and
// after it no method calls NVML.
func TestNVML_Close(t *testing.T) {
	dgx := gputest.NewDGX()
	inv, err := gpu.NewNVML(dgx.Interface(), gpu.NVMLOptions{WaitTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, done := startWatch(t, context.Background(), inv)
	testenv.Eventually(t, waitLimit, func() bool { created, _ := dgx.EventSets(); return created == 1 }, "watch created no event set")
	if err := inv.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := waitDone(t, done); !errors.Is(err, gpu.ErrNoNVML) {
		t.Errorf("Watch after Close = %v, want ErrNoNVML", err)
	}
	if _, freed := dgx.EventSets(); freed != 1 {
		t.Error("event set not freed before Shutdown")
	}
	if err := inv.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if n := dgx.Shutdowns(); n != 1 {
		t.Errorf("Shutdown called %d times, want 1", n)
	}

	calls := len(dgx.Server.DeviceGetCountCalls())
	ctx := context.Background()
	if _, _, err := inv.Devices(ctx); !errors.Is(err, gpu.ErrNoNVML) {
		t.Errorf("Devices after Close = %v", err)
	}
	if _, err := inv.Sample(ctx); !errors.Is(err, gpu.ErrNoNVML) {
		t.Errorf("Sample after Close = %v", err)
	}
	if _, err := inv.Processes(ctx, dgx.UUID(0)); !errors.Is(err, gpu.ErrNoNVML) {
		t.Errorf("Processes after Close = %v", err)
	}
	if err := inv.Watch(ctx, make(chan gpu.XIDEvent)); !errors.Is(err, gpu.ErrNoNVML) {
		t.Errorf("Watch after Close = %v", err)
	}
	if n := len(dgx.Server.DeviceGetCountCalls()); n != calls {
		t.Errorf("NVML called after Close")
	}
}

// fatalInterface returns an nvml.Interface whose Init answers ret and
// whose every other function fails the test: after a failed Init, any
// NVML call ends a real process.
func fatalInterface(t *testing.T, ret nvml.Return) *mock.Interface {
	lib := &mock.Interface{}
	v := reflect.ValueOf(lib).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		if f.Kind() != reflect.Func || !f.CanSet() {
			continue
		}
		f.Set(reflect.MakeFunc(f.Type(), func([]reflect.Value) []reflect.Value {
			t.Fatalf("%s called after Init failed with %v", strings.TrimSuffix(name, "Func"), ret)
			return nil
		}))
	}
	lib.InitFunc = func() nvml.Return { return ret }
	return lib
}

func TestNVML_InitFails(t *testing.T) {
	tests := []struct {
		ret  nvml.Return
		want string
	}{
		{nvml.ERROR_LIBRARY_NOT_FOUND, "nvml init: ERROR_LIBRARY_NOT_FOUND: libnvidia-ml.so.1 cannot be loaded"},
		{nvml.ERROR_DRIVER_NOT_LOADED, "nvml init: ERROR_DRIVER_NOT_LOADED: the NVIDIA kernel module is not loaded"},
		{nvml.ERROR_UNKNOWN, "nvml init: ERROR_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			lib := fatalInterface(t, tt.ret)
			inv, err := gpu.NewNVML(lib, gpu.NVMLOptions{})
			if inv != nil || !errors.Is(err, gpu.ErrNoNVML) {
				t.Fatalf("NewNVML = %v, %v; want ErrNoNVML", inv, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			var nerr *gpu.NVMLError
			if !errors.As(err, &nerr) || nerr.Code != int(tt.ret) {
				t.Errorf("error %v: want an *NVMLError with code %d", err, tt.ret)
			}
			if n := len(lib.InitCalls()); n != 1 {
				t.Errorf("Init called %d times, want 1", n)
			}
		})
	}
}

// TestOpenNVML_ThisHost opens the real library. On a host without the
// NVIDIA driver it must fail cleanly (not crash) and say why.
func TestOpenNVML_ThisHost(t *testing.T) {
	inv, err := gpu.OpenNVML(nil)
	if err == nil {
		_ = inv.Close()
		t.Skip("NVML works on this host: TestNVML_RealGPU covers it")
	}
	t.Logf("OpenNVML: %v", err)
	if !errors.Is(err, gpu.ErrNoNVML) || !strings.Contains(err.Error(), "nvml init: ERROR_") {
		t.Errorf("OpenNVML error = %v, want ErrNoNVML naming Init's code", err)
	}
	// A second attempt is just as safe: nothing but Init was called.
	if _, err := gpu.OpenNVML(nil); !errors.Is(err, gpu.ErrNoNVML) {
		t.Errorf("second OpenNVML = %v", err)
	}
}
