//go:build linux && cgo

package gpu

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Sample reads memory, load, temperature, power, energy and memory health
// of every GPU Devices last returned. Values NVML does not support are -1
// (false for the remap flags); other failed reads are -1 too, counted in
// CallErrors and logged at debug. A lost GPU gets no Sample: the error
// then joins one *NVMLError per lost GPU (errors.Is(err, ErrGPULost);
// LostGPUs(err) lists their UUIDs), next to the samples of the others.
func (inv *nvmlInventory) Sample(ctx context.Context) ([]Sample, error) {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	if inv.closed {
		return nil, errClosed
	}
	handles, err := inv.cached(ctx)
	if err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	samples := make([]Sample, 0, len(handles))
	var lost []error
	for _, h := range handles {
		if err := ctx.Err(); err != nil {
			return samples, fmt.Errorf("sample: %w", errors.Join(append(lost, err)...))
		}
		s, err := inv.sample(h)
		if err != nil {
			lost = append(lost, err)
			continue
		}
		samples = append(samples, s)
	}
	if len(lost) > 0 {
		return samples, fmt.Errorf("sample: %w", errors.Join(lost...))
	}
	return samples, nil
}

// sampler reads one GPU call by call, and stops calling once the GPU is
// lost: NVML may then block on every call.
type sampler struct {
	inv  *nvmlInventory
	uuid string
	lost error
}

// read runs one NVML call; f stores its result when it returns SUCCESS.
func (s *sampler) read(call string, f func() nvml.Return) {
	if s.lost != nil {
		return
	}
	switch ret := f(); ret {
	case nvml.SUCCESS, nvml.ERROR_NOT_SUPPORTED:
	case nvml.ERROR_GPU_IS_LOST:
		s.lost = s.inv.fail(call, s.uuid, ret)
	default:
		s.inv.log.Debug("gpu sample: value unknown", "uuid", s.uuid, "err", s.inv.fail(call, s.uuid, ret))
	}
}

func (inv *nvmlInventory) sample(h gpuHandle) (Sample, error) {
	out := Sample{
		UUID: h.uuid, MemoryUsed: -1, Utilization: -1, MemoryUtil: -1, Temperature: -1,
		Power: -1, Energy: -1, ECCUncorrected: -1, ECCCorrected: -1, SMClock: -1,
		ClockEventReasons: -1, PCIeReplays: -1, RemappedCorrectable: -1, RemappedUncorrectable: -1,
		RecoveryAction: -1,
	}
	dev := h.dev
	s := &sampler{inv: inv, uuid: h.uuid}
	s.read("GetMemoryInfo", func() nvml.Return {
		mem, ret := dev.GetMemoryInfo()
		if ret == nvml.SUCCESS {
			out.MemoryUsed = int64(mem.Used)
		}
		return ret
	})
	s.read("GetUtilizationRates", func() nvml.Return {
		u, ret := dev.GetUtilizationRates()
		if ret == nvml.SUCCESS {
			out.Utilization, out.MemoryUtil = float64(u.Gpu)/100, float64(u.Memory)/100
		}
		return ret
	})
	s.read("GetTemperature", func() nvml.Return {
		t, ret := dev.GetTemperature(nvml.TEMPERATURE_GPU)
		if ret == nvml.SUCCESS {
			out.Temperature = float64(t)
		}
		return ret
	})
	s.read("GetPowerUsage", func() nvml.Return {
		mw, ret := dev.GetPowerUsage()
		if ret == nvml.SUCCESS {
			out.Power = float64(mw) / 1000
		}
		return ret
	})
	s.read("GetTotalEnergyConsumption", func() nvml.Return {
		mj, ret := dev.GetTotalEnergyConsumption()
		if ret == nvml.SUCCESS {
			out.Energy = float64(mj) / 1000
		}
		return ret
	})
	s.read("GetClockInfo", func() nvml.Return {
		mhz, ret := dev.GetClockInfo(nvml.CLOCK_SM)
		if ret == nvml.SUCCESS {
			out.SMClock = float64(mhz) * 1e6
		}
		return ret
	})
	s.read("GetCurrentClocksEventReasons", func() nvml.Return {
		reasons, ret := dev.GetCurrentClocksEventReasons()
		if ret == nvml.SUCCESS {
			out.ClockEventReasons = int64(reasons & math.MaxInt64)
		}
		return ret
	})
	s.read("GetPcieReplayCounter", func() nvml.Return {
		n, ret := dev.GetPcieReplayCounter()
		if ret == nvml.SUCCESS {
			out.PCIeReplays = int64(n)
		}
		return ret
	})
	s.read("GetTotalEccErrors", func() nvml.Return {
		n, ret := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC)
		if ret == nvml.SUCCESS {
			out.ECCUncorrected = clampInt64(n)
		}
		return ret
	})
	s.read("GetTotalEccErrors", func() nvml.Return {
		n, ret := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.VOLATILE_ECC)
		if ret == nvml.SUCCESS {
			out.ECCCorrected = clampInt64(n)
		}
		return ret
	})
	s.read("GetRemappedRows", func() nvml.Return {
		corr, unc, pending, failed, ret := dev.GetRemappedRows()
		if ret == nvml.SUCCESS {
			out.RemappedCorrectable, out.RemappedUncorrectable = int64(corr), int64(unc)
			out.RemapPending, out.RemapFailed = pending, failed
		}
		return ret
	})
	s.read("GetFieldValues", func() nvml.Return {
		values := []nvml.FieldValue{{FieldId: nvml.FI_DEV_GET_GPU_RECOVERY_ACTION}}
		ret := dev.GetFieldValues(values)
		if ret != nvml.SUCCESS {
			return ret
		}
		// A field the driver does not know fails alone, inside the answer.
		if fret := nvml.Return(values[0].NvmlReturn); fret != nvml.SUCCESS {
			return fret
		}
		if v, ok := fieldInt(values[0]); ok {
			out.RecoveryAction = int(v)
		}
		return ret
	})
	if s.lost != nil {
		return Sample{}, s.lost
	}
	return out, nil
}

// fieldInt decodes an integer field value (the C union, native byte order).
func fieldInt(v nvml.FieldValue) (int64, bool) {
	b := v.Value[:]
	switch nvml.ValueType(v.ValueType) {
	case nvml.VALUE_TYPE_UNSIGNED_INT:
		return int64(binary.NativeEndian.Uint32(b)), true
	case nvml.VALUE_TYPE_SIGNED_INT:
		return int64(int32(binary.NativeEndian.Uint32(b))), true
	case nvml.VALUE_TYPE_UNSIGNED_LONG, nvml.VALUE_TYPE_UNSIGNED_LONG_LONG:
		return clampInt64(binary.NativeEndian.Uint64(b)), true
	case nvml.VALUE_TYPE_SIGNED_LONG_LONG:
		return int64(binary.NativeEndian.Uint64(b)), true
	case nvml.VALUE_TYPE_UNSIGNED_SHORT:
		return int64(binary.NativeEndian.Uint16(b)), true
	}
	return 0, false
}

func clampInt64(n uint64) int64 { return int64(min(n, math.MaxInt64)) }

// Processes lists the compute processes NVML sees on the GPU, with host
// PIDs. A lost GPU gives an error that satisfies errors.Is(err, ErrGPULost).
func (inv *nvmlInventory) Processes(ctx context.Context, uuid string) ([]Process, error) {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	if inv.closed {
		return nil, errClosed
	}
	handles, err := inv.cached(ctx)
	if err != nil {
		return nil, fmt.Errorf("processes of %s: %w", uuid, err)
	}
	for _, h := range handles {
		if h.uuid != uuid {
			continue
		}
		infos, ret := h.dev.GetComputeRunningProcesses()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("processes: %w", inv.fail("GetComputeRunningProcesses", uuid, ret))
		}
		procs := make([]Process, 0, len(infos))
		for _, p := range infos {
			mem := int64(-1)
			// NVML_VALUE_NOT_AVAILABLE is an unsigned -1.
			if p.UsedGpuMemory != math.MaxUint64 {
				mem = clampInt64(p.UsedGpuMemory)
			}
			procs = append(procs, Process{PID: int(p.Pid), Memory: mem})
		}
		return procs, nil
	}
	return nil, fmt.Errorf("processes: no GPU with uuid %s on this host", uuid)
}
