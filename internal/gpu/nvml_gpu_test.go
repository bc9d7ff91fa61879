//go:build linux && cgo

package gpu_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/gpu"
)

// gpuEnv turns on the tests that need a real NVIDIA GPU and driver.
const gpuEnv = "GLMD_TEST_GPU"

// TestNVML_RealGPU runs the NVML inventory on the machine's GPUs and logs
// what it saw, for comparison with nvidia-smi (run with -v). It runs only
// with GLMD_TEST_GPU=1, set on GPU runners.
func TestNVML_RealGPU(t *testing.T) {
	if os.Getenv(gpuEnv) != "1" {
		t.Skipf("set %s=1 on a machine with an NVIDIA GPU and driver to run NVML for real", gpuEnv)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	start := time.Now()
	inv, err := gpu.OpenNVML(log)
	if err != nil {
		t.Fatalf("OpenNVML: %v", err)
	}
	t.Logf("NVML init took %v; driver %s", time.Since(start), inv.(gpu.DriverVersioner).DriverVersion())
	defer func() {
		if err := inv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	ctx := context.Background()

	start = time.Now()
	devs, links, err := inv.Devices(ctx)
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	t.Logf("Devices took %v", time.Since(start))
	if len(devs) == 0 {
		t.Fatal("NVML lists no GPUs")
	}
	for _, d := range devs {
		t.Logf("gpu %d: %+v", d.Index, d)
		if d.UUID == "" || d.Memory <= 0 || d.PCIBusID == "" || d.Name == "" {
			t.Errorf("gpu %d is missing identity: %+v", d.Index, d)
		}
	}
	for p, l := range links {
		t.Logf("link %s - %s: level %d, nvlink lanes %d", p[0], p[1], l.Level, l.NVLink)
	}

	start = time.Now()
	samples, err := inv.Sample(ctx)
	t.Logf("Sample took %v", time.Since(start))
	if err != nil {
		t.Errorf("Sample: %v", err)
	}
	for _, s := range samples {
		t.Logf("sample: %+v", s)
	}
	if len(samples) != len(devs) {
		t.Errorf("%d samples for %d GPUs", len(samples), len(devs))
	}
	for _, d := range devs {
		procs, err := inv.Processes(ctx, d.UUID)
		if err != nil {
			t.Errorf("Processes(%s): %v", d.UUID, err)
		}
		t.Logf("gpu %d processes: %+v", d.Index, procs)
	}

	// Watch for two seconds (events are unlikely), then measure how long it
	// takes to notice the cancellation.
	deadline := time.Now().Add(2 * time.Second)
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	events := make(chan gpu.XIDEvent, 16)
	err = inv.Watch(wctx, events)
	t.Logf("Watch returned %v, %v after its context ended", err, time.Since(deadline).Round(time.Millisecond))
	if err != nil && !errors.Is(err, gpu.ErrNotSupported) {
		t.Errorf("Watch: %v", err)
	}
	close(events)
	for ev := range events {
		t.Logf("event: %+v", ev)
	}
	t.Logf("call errors: %v", inv.(gpu.CallErrorCounter).CallErrors())

	if out, err := exec.Command("nvidia-smi", "topo", "-m").CombinedOutput(); err == nil {
		t.Logf("nvidia-smi topo -m, to compare:\n%s", out)
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
