package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// markedInventory is an Inventory that tests can recognise.
type markedInventory struct{ noneInventory }

func newLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func TestOpen(t *testing.T) {
	nvmlOK := &markedInventory{}
	working := func(*slog.Logger) (Inventory, error) { return nvmlOK, nil }
	missing := func(*slog.Logger) (Inventory, error) {
		return nil, fmt.Errorf("%w: %w", ErrNoNVML, &NVMLError{Call: "init", Code: 12, Name: "ERROR_LIBRARY_NOT_FOUND", Text: "cannot be loaded"})
	}
	broken := func(*slog.Logger) (Inventory, error) { return nil, errors.New("something else") }
	static := []Device{{Index: 0, UUID: "GPU-a", Memory: 1 << 30, NUMANode: 0}}

	tests := []struct {
		name     string
		provider string
		static   []Device
		open     func(*slog.Logger) (Inventory, error)
		want     string   // "nvml", "static", "none", or "error"
		errHas   []string // with want "error"
		logHas   []string // the one info line, if any
	}{
		{"auto with nvml", ProviderAuto, nil, working, "nvml", nil, nil},
		{"empty is auto", "", nil, working, "nvml", nil, nil},
		{"auto with nvml ignores static", ProviderAuto, static, working, "nvml", nil,
			[]string{"level=INFO", "static [[gpu.devices]] list is not used"}},
		{"auto without nvml", ProviderAuto, nil, missing, "none", nil,
			[]string{"level=INFO", `msg="no GPUs: NVML is not available"`, `reason="nvml init: ERROR_LIBRARY_NOT_FOUND"`}},
		{"auto without nvml, static", ProviderAuto, static, missing, "static", nil,
			[]string{"level=INFO", "gpus from the static", "gpus=1", `reason="nvml init: ERROR_LIBRARY_NOT_FOUND"`}},
		{"auto without nvml, bad static", ProviderAuto, []Device{{UUID: "GPU-a"}}, missing, "error",
			[]string{"NVML is not available (nvml init: ERROR_LIBRARY_NOT_FOUND)", "memory 0"}, nil},
		{"auto, nvml broken otherwise", ProviderAuto, nil, broken, "error", []string{"something else"}, nil},
		{"nvml", ProviderNVML, nil, working, "nvml", nil, nil},
		{"nvml without nvml", ProviderNVML, nil, missing, "error",
			[]string{`gpu provider "nvml"`, "nvml init: ERROR_LIBRARY_NOT_FOUND", "nvidia-smi", `provider = "auto"`}, nil},
		{"static", ProviderStatic, static, working, "static", nil, nil},
		{"static without devices", ProviderStatic, nil, working, "error", []string{"no [[gpu.devices]]"}, nil},
		{"static invalid", ProviderStatic, []Device{{UUID: "GPU-a"}}, working, "error", []string{"memory 0"}, nil},
		{"none", ProviderNone, static, working, "none", nil, nil},
		{"unknown", "cuda", nil, working, "error", []string{`"cuda": unknown`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, buf := newLog()
			inv, err := open(tt.provider, tt.static, log, tt.open)
			if tt.want == "error" {
				if err == nil {
					t.Fatalf("open succeeded with %T", inv)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got string
			switch inv.(type) {
			case *markedInventory:
				got = "nvml"
			case *staticInventory:
				got = "static"
			case noneInventory:
				got = "none"
			}
			if got != tt.want {
				t.Errorf("inventory = %T, want %s", inv, tt.want)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(tt.logHas) == 0 {
				if buf.Len() > 0 {
					t.Errorf("logged %q, want nothing", buf)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want one: %q", len(lines), buf)
			}
			for _, s := range tt.logHas {
				if !strings.Contains(lines[0], s) {
					t.Errorf("log line %q does not say %q", lines[0], s)
				}
			}
		})
	}
}

// TestOpen_AutoOnThisHost runs provider "auto" for real. On a host
// without the NVIDIA driver (or a binary without cgo) it must find no GPUs,
// say so in one line at info, and not fail.
func TestOpen_AutoOnThisHost(t *testing.T) {
	if inv, err := OpenNVML(nil); err == nil {
		_ = inv.Close()
		t.Skip("NVML works on this host: TestNVML_RealGPU covers it")
	}
	log, buf := newLog()
	inv, err := Open(ProviderAuto, nil, log)
	if err != nil {
		t.Fatalf("Open(auto) on a host without NVML: %v", err)
	}
	t.Cleanup(func() { _ = inv.Close() })
	devs, _, err := inv.Devices(context.Background())
	if err != nil || len(devs) != 0 {
		t.Errorf("Devices = %v, %v; want none", devs, err)
	}
	line := strings.TrimSpace(buf.String())
	t.Logf("logged: %s", line)
	if strings.Count(line, "\n") != 0 || !strings.Contains(line, "level=INFO") ||
		!strings.Contains(line, `msg="no GPUs: NVML is not available"`) || !strings.Contains(line, "reason=") {
		t.Errorf("want one info line saying why there are no GPUs, got %q", line)
	}
}
