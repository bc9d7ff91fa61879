package gpu

import (
	"errors"
	"fmt"
)

// ErrGPULost: NVML answered ERROR_GPU_IS_LOST, the GPU fell off the bus.
// Only a reboot (sometimes a GPU reset) brings it back.
var ErrGPULost = errors.New("gpu: GPU is lost")

// NVML return codes that the cgo-free code needs to classify errors.
const (
	nvmlCodeNotSupported = 3
	nvmlCodeGPUIsLost    = 15
)

// NVMLError is an NVML call that failed. It satisfies errors.Is(err,
// ErrGPULost) for ERROR_GPU_IS_LOST and errors.Is(err, ErrNotSupported)
// for ERROR_NOT_SUPPORTED, so callers need no NVML codes.
type NVMLError struct {
	Call string // the NVML call: "init", "GetMemoryInfo", "EventSetWait"
	UUID string // the GPU asked; "" for calls on the library
	Code int    // NVML's return code (nvmlReturn_t)
	Name string // the code's name: "ERROR_GPU_IS_LOST"
	Text string // the library's description: "GPU is lost"
}

// Error says which call failed where, and NVML's code and text.
func (e *NVMLError) Error() string {
	where := "nvml " + e.Call
	if e.UUID != "" {
		where += " on " + e.UUID
	}
	if e.Text == "" || e.Text == e.Name {
		return fmt.Sprintf("%s: %s", where, e.Name)
	}
	return fmt.Sprintf("%s: %s: %s", where, e.Name, e.Text)
}

// Is maps NVML codes to the package's sentinels.
func (e *NVMLError) Is(target error) bool {
	switch target {
	case ErrGPULost:
		return e.Code == nvmlCodeGPUIsLost
	case ErrNotSupported:
		return e.Code == nvmlCodeNotSupported
	}
	return false
}

// short is the call and the code, without the description: what a log
// line needs to say why ("nvml init: ERROR_LIBRARY_NOT_FOUND").
func (e *NVMLError) short() string { return fmt.Sprintf("nvml %s: %s", e.Call, e.Name) }

// LostGPUs returns the UUIDs of the GPUs that err reports lost (an
// NVMLError with ERROR_GPU_IS_LOST, alone, wrapped or joined), in the
// order err holds them. Sample joins one such error per lost GPU.
func LostGPUs(err error) []string {
	var uuids []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *NVMLError:
			if e.Code == nvmlCodeGPUIsLost && e.UUID != "" {
				uuids = append(uuids, e.UUID)
			}
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return uuids
}

// CallError names a kind of failed NVML call, as the labels of
// glmd_gpu_nvml_call_errors_total{call,code}.
type CallError struct {
	Call string // "GetTemperature"
	Code string // "ERROR_UNKNOWN"
}

// CallErrorCounter is implemented by inventories that count their failed
// driver calls (the NVML one). NOT_SUPPORTED answers and Wait timeouts are
// normal and not counted.
type CallErrorCounter interface {
	// CallErrors returns a copy of the counts since the inventory opened.
	CallErrors() map[CallError]uint64
}

// DriverVersioner is implemented by inventories that know the driver
// (the NVML one), for glmd_gpu_info{driver_version} and glmctl gpus.
type DriverVersioner interface {
	// DriverVersion returns the kernel driver's version ("550.54.15"),
	// "" when unknown.
	DriverVersion() string
}
