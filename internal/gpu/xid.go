package gpu

import "slices"

// Action is what glmd does about a driver event on a GPU.
type Action string

// Actions, from mildest to harshest.
const (
	// ActionIgnore counts the XID (metric, log) and does nothing else.
	ActionIgnore Action = "ignore"
	// ActionRestartApp: the GPU stays healthy and allocatable; the owners'
	// instances are restarted if they died or report CUDA errors.
	ActionRestartApp Action = "restart_app"
	// ActionResetGPU: the GPU leaves the pool, every instance on it is
	// stopped, then the GPU is reset once no compute process is left.
	ActionResetGPU Action = "reset_gpu"
	// ActionReboot: the GPU is lost until the node reboots (fallen off the
	// bus, or the driver asks for a node reboot).
	ActionReboot Action = "reboot"
)

// severity orders actions, so that an override never softens a harsher
// catalogue entry by accident.
func (a Action) severity() int {
	return slices.Index([]Action{ActionIgnore, ActionRestartApp, ActionResetGPU, ActionReboot}, a)
}

// Overrides are the operator's [gpu.health] corrections to the XID
// catalogue, with the semantics of the Kubernetes device plugin's
// DP_DISABLE_HEALTHCHECKS / DP_ENABLE_HEALTHCHECKS: an XID in both lists is
// fatal (enabling wins over disabling).
type Overrides struct {
	IgnoreXIDs []int // only counted, whatever the catalogue says
	FatalXIDs  []int // treated as reset_gpu at least (79 stays reboot)
	IgnoreAll  bool  // every XID is only counted, except FatalXIDs ("all" / "xids")
}

// Classify returns the action for an XID: the catalogue's (notes section
// 7, from NVIDIA's "immediate action" column), corrected by ov. Unknown
// XIDs reset the GPU: a new driver's new XID is more likely a fault than
// noise, and an idle GPU costs less than a corrupted job.
func Classify(xid int, ov Overrides) Action {
	a, known := xidActions[xid]
	if !known {
		a = ActionResetGPU
	}
	switch {
	case slices.Contains(ov.FatalXIDs, xid):
		if a.severity() < ActionResetGPU.severity() {
			a = ActionResetGPU
		}
	case ov.IgnoreAll, slices.Contains(ov.IgnoreXIDs, xid):
		a = ActionIgnore
	}
	return a
}

// XIDName returns the short name of an XID ("fallen off the bus"), or ""
// for one the catalogue does not name.
func XIDName(xid int) string { return xidNames[xid] }

// xidActions is the catalogue. Workflow XIDs are mapped by glmd's rules:
// 45 (preemptive cleanup) only follows other XIDs, which carry the action;
// 48 (double-bit ECC), 74 and 144-150 (NVLink) reset; 154 (recovery action
// changed) resets because the inventory cannot read the new action, and a
// reset is the fail-safe choice below a reboot; 54 (check mechanicals)
// resets likewise; 151 (restart VM) reboots.
var xidActions = func() map[int]Action {
	m := map[int]Action{}
	set := func(a Action, xids ...int) {
		for _, x := range xids {
			m[x] = a
		}
	}
	span := func(lo, hi int) []int {
		var s []int
		for x := lo; x <= hi; x++ {
			s = append(s, x)
		}
		return s
	}
	set(ActionRestartApp, 8, 11, 13, 25, 31, 32, 39, 40, 41, 60, 68, 69, 70, 71, 72, 75, 76, 77, 80,
		82, 83, 84, 85, 86, 88, 89, 94, 139)
	set(ActionRestartApp, span(96, 105)...)
	set(ActionRestartApp, span(126, 135)...)
	set(ActionIgnore, 37, 38, 43, 44, 45, 63, 66, 67, 92, 93, 106, 107, 121, 137, 141, 152, 153, 157, 160, 161)
	set(ActionResetGPU, 46, 48, 54, 62, 64, 74, 95, 109, 110, 119, 120, 136, 140, 143, 154, 155, 156, 158)
	set(ActionResetGPU, span(144, 150)...)
	set(ActionReboot, 79, 151)
	return m
}()

// xidNames names the XIDs an operator is most likely to meet.
var xidNames = map[int]string{
	8:   "GPU stopped processing",
	13:  "graphics engine exception",
	31:  "GPU memory page fault",
	32:  "invalid or corrupted push buffer stream",
	43:  "GPU stopped processing",
	45:  "preemptive cleanup, due to previous errors",
	48:  "double-bit ECC error",
	54:  "auxiliary power is not connected",
	61:  "internal micro-controller breakpoint/warning",
	62:  "internal micro-controller halt",
	63:  "ECC page retirement or row remapping recording event",
	64:  "ECC page retirement or row remapping recording failure",
	68:  "NVDEC0 exception",
	74:  "NVLink error",
	79:  "fallen off the bus",
	92:  "high single-bit ECC error rate",
	94:  "contained ECC error",
	95:  "uncontained ECC error",
	109: "context switch timeout",
	110: "security fault",
	119: "GSP RPC timeout",
	120: "GSP error",
	121: "C2C link corrected error",
	140: "unrecovered ECC error",
	143: "GPU initialization failure",
	144: "NVLink error",
	145: "NVLink error",
	146: "NVLink error",
	147: "NVLink error",
	148: "NVLink error",
	149: "NVLink error",
	150: "NVLink error",
	154: "GPU recovery action changed",
}
