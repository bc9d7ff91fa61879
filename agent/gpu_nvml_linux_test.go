//go:build linux && cgo

package agent

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/gpu"
	"github.com/open-autoglm/glmd/internal/gpu/gputest"
)

// TestAgent_GPU_DGXMock runs the agent over the NVML inventory on go-nvml's
// DGX A100 mock: the same path as on a real host, down to the event set.
func TestAgent_GPU_DGXMock(t *testing.T) {
	dgx := gputest.NewDGX()
	inv, err := gpu.NewNVML(dgx.Interface(), gpu.NVMLOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ta := startGPUAgent(t, inv, nil)
	ta.write("tp.toml", ta.taskFile("[gpu]\ncount = 2\nmodel = \"A100\"", "-sleep"))
	r := ta.waitState("tp", 0, "running")
	uuids := dgx.UUIDs()
	a, b := slices.Index(uuids, r.GPUs[0]), slices.Index(uuids, r.GPUs[1])
	if len(r.GPUs) != 2 || a/2 != b/2 {
		t.Fatalf("GPUs %v (indices %d, %d): want one NVLink pair", r.GPUs, a, b)
	}
	gpus, err := ta.client.GPUs(t.Context())
	if err != nil || len(gpus) != 8 || gpus[a].Holders[0] != "tp:0" || gpus[a].NUMANode < 0 {
		t.Fatalf("gpus %+v, %v", gpus, err)
	}
	// The GPU falls off the bus: the pair's group moves to other GPUs.
	dgx.Lose(a)
	r = ta.waitRow("tp", 0, "moved off the lost GPU", func(r api.InstanceStatus) bool {
		return r.State == "running" && len(r.GPUs) == 2 && !slices.Contains(r.GPUs, uuids[a])
	})
	if r.LastExit.Reason != "gpu_unhealthy" {
		t.Errorf("last exit %+v", r.LastExit)
	}
	gpus, _ = ta.client.GPUs(t.Context())
	if gpus[a].Health != "lost" {
		t.Errorf("GPU %d health %q (%s), want lost", a, gpus[a].Health, gpus[a].Reason)
	}
}
