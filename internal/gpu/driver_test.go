package gpu

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestNVMLError(t *testing.T) {
	lost := &NVMLError{Call: "GetMemoryInfo", UUID: "GPU-a", Code: nvmlCodeGPUIsLost, Name: "ERROR_GPU_IS_LOST", Text: "GPU is lost"}
	unsupported := &NVMLError{Call: "GetTemperature", Code: nvmlCodeNotSupported, Name: "ERROR_NOT_SUPPORTED", Text: "ERROR_NOT_SUPPORTED"}
	other := &NVMLError{Call: "init", Code: 12, Name: "ERROR_LIBRARY_NOT_FOUND"}

	tests := []struct {
		err       error
		msg       string
		isLost    bool
		isUnsupp  bool
		lostUUIDs []string
	}{
		{lost, "nvml GetMemoryInfo on GPU-a: ERROR_GPU_IS_LOST: GPU is lost", true, false, []string{"GPU-a"}},
		{unsupported, "nvml GetTemperature: ERROR_NOT_SUPPORTED", false, true, nil},
		{other, "nvml init: ERROR_LIBRARY_NOT_FOUND", false, false, nil},
		{fmt.Errorf("sample: %w", lost), "sample: " + lost.Error(), true, false, []string{"GPU-a"}},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.msg {
			t.Errorf("Error() = %q, want %q", got, tt.msg)
		}
		if got := errors.Is(tt.err, ErrGPULost); got != tt.isLost {
			t.Errorf("%v: Is(ErrGPULost) = %v", tt.err, got)
		}
		if got := errors.Is(tt.err, ErrNotSupported); got != tt.isUnsupp {
			t.Errorf("%v: Is(ErrNotSupported) = %v", tt.err, got)
		}
		if got := LostGPUs(tt.err); !slices.Equal(got, tt.lostUUIDs) {
			t.Errorf("%v: LostGPUs = %v, want %v", tt.err, got, tt.lostUUIDs)
		}
	}
}

func TestLostGPUs_Joined(t *testing.T) {
	lostB := &NVMLError{Call: "GetUtilizationRates", UUID: "GPU-b", Code: nvmlCodeGPUIsLost, Name: "ERROR_GPU_IS_LOST"}
	lostC := &NVMLError{Call: "GetMemoryInfo", UUID: "GPU-c", Code: nvmlCodeGPUIsLost, Name: "ERROR_GPU_IS_LOST"}
	noUUID := &NVMLError{Call: "EventSetWait", Code: nvmlCodeGPUIsLost, Name: "ERROR_GPU_IS_LOST"}
	err := fmt.Errorf("sample: %w", errors.Join(lostB, errors.New("other"), noUUID, fmt.Errorf("x: %w", lostC)))
	if got, want := LostGPUs(err), []string{"GPU-b", "GPU-c"}; !slices.Equal(got, want) {
		t.Errorf("LostGPUs = %v, want %v", got, want)
	}
	if got := LostGPUs(nil); got != nil {
		t.Errorf("LostGPUs(nil) = %v", got)
	}
	if !errors.Is(err, ErrGPULost) {
		t.Error("joined error is not ErrGPULost")
	}
}
