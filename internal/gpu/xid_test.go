package gpu_test

import (
	"testing"

	"github.com/open-autoglm/glmd/internal/gpu"
)

func TestClassify(t *testing.T) {
	none := gpu.Overrides{}
	tests := []struct {
		name string
		xid  int
		ov   gpu.Overrides
		want gpu.Action
	}{
		{"graphics engine exception", 13, none, gpu.ActionRestartApp},
		{"page fault", 31, none, gpu.ActionRestartApp},
		{"contained ECC", 94, none, gpu.ActionRestartApp},
		{"NVDEC range", 100, none, gpu.ActionRestartApp},
		{"range end", 135, none, gpu.ActionRestartApp},
		{"stopped processing", 43, none, gpu.ActionIgnore},
		{"preemptive cleanup follows others", 45, none, gpu.ActionIgnore},
		{"row remap event", 63, none, gpu.ActionIgnore},
		{"high SBE rate", 92, none, gpu.ActionIgnore},
		{"double-bit ECC", 48, none, gpu.ActionResetGPU},
		{"remap failure", 64, none, gpu.ActionResetGPU},
		{"NVLink", 74, none, gpu.ActionResetGPU},
		{"NVLink range", 144, none, gpu.ActionResetGPU},
		{"NVLink range end", 150, none, gpu.ActionResetGPU},
		{"uncontained ECC", 95, none, gpu.ActionResetGPU},
		{"context switch timeout", 109, none, gpu.ActionResetGPU},
		{"GSP", 119, none, gpu.ActionResetGPU},
		{"recovery action changed", 154, none, gpu.ActionResetGPU},
		{"fallen off the bus", 79, none, gpu.ActionReboot},
		{"unknown is fail-safe", 999, none, gpu.ActionResetGPU},
		{"unknown zero", 0, none, gpu.ActionResetGPU},
		{"ignore override", 48, gpu.Overrides{IgnoreXIDs: []int{48}}, gpu.ActionIgnore},
		{"ignore an unknown", 999, gpu.Overrides{IgnoreXIDs: []int{999}}, gpu.ActionIgnore},
		{"fatal override", 13, gpu.Overrides{FatalXIDs: []int{13}}, gpu.ActionResetGPU},
		{"fatal of an ignored one", 43, gpu.Overrides{FatalXIDs: []int{43}}, gpu.ActionResetGPU},
		{"fatal wins over ignore", 31, gpu.Overrides{IgnoreXIDs: []int{31}, FatalXIDs: []int{31}}, gpu.ActionResetGPU},
		{"fatal never softens reboot", 79, gpu.Overrides{FatalXIDs: []int{79}}, gpu.ActionReboot},
		{"ignore all", 48, gpu.Overrides{IgnoreAll: true}, gpu.ActionIgnore},
		{"ignore all but fatal", 48, gpu.Overrides{IgnoreAll: true, FatalXIDs: []int{48}}, gpu.ActionResetGPU},
		{"other overrides leave it alone", 13, gpu.Overrides{IgnoreXIDs: []int{31}, FatalXIDs: []int{48}}, gpu.ActionRestartApp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gpu.Classify(tt.xid, tt.ov); got != tt.want {
				t.Errorf("Classify(%d, %+v) = %s, want %s", tt.xid, tt.ov, got, tt.want)
			}
		})
	}
}

func TestXIDName(t *testing.T) {
	if got := gpu.XIDName(79); got != "fallen off the bus" {
		t.Errorf("XIDName(79) = %q", got)
	}
	if got := gpu.XIDName(999); got != "" {
		t.Errorf("XIDName(999) = %q, want empty", got)
	}
}
