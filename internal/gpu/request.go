package gpu

import (
	"slices"
	"strconv"
	"strings"
)

// Request is what one task instance asks for. Count and IDs are
// alternatives: IDs, when set, names the exact GPUs and Count is ignored.
type Request struct {
	Count      int      // whole GPUs wanted; 0 with no IDs asks for none
	IDs        []string // indices ("3") or UUIDs: exactly these, all free or an error
	MinMemory  int64    // bytes that must be free on each GPU (Total - Used)
	Model      string   // case-insensitive substring of Device.Name; "" for any
	Shared     bool     // may share GPUs with other Shared holders, never with an exclusive one
	SingleNUMA bool     // all GPUs on one NUMA node, or an error
}

// want is how many GPUs r asks for.
func (r Request) want() int {
	if len(r.IDs) > 0 {
		return len(r.IDs)
	}
	return r.Count
}

// Grant is what an instance got: its GPUs and where its threads and memory
// belong.
type Grant struct {
	Devices []Device // in allocation order: CUDA device i is Devices[i]
	CPUs    string   // union of the devices' local CPUs ("0-55,112-167"); "" when unknown
	Mems    string   // their NUMA nodes ("0", "0-1"); "" when unknown
}

// UUIDs returns the UUIDs of the granted GPUs in allocation order.
func (g Grant) UUIDs() []string {
	out := make([]string, len(g.Devices))
	for i, d := range g.Devices {
		out[i] = d.UUID
	}
	return out
}

// Env returns the worker's GPU environment as sorted KEY=VALUE lines:
// CUDA_VISIBLE_DEVICES (UUIDs, or indices when format is "index"; in
// allocation order), CUDA_DEVICE_ORDER=PCI_BUS_ID, NVIDIA_VISIBLE_DEVICES
// and GLMD_GPU_UUIDS (UUIDs). Any format other than "index" means UUIDs,
// the safe default: UUIDs survive device cgroups and renumbering, indices
// do not (notes: a cgroup renumbers the visible GPUs from 0).
//
// A zero Grant returns nil: whether a task without [gpu] sees no GPU
// (CUDA_VISIBLE_DEVICES="") or is left alone is the agent's decision, not
// the allocator's.
func (g Grant) Env(format string) []string {
	if len(g.Devices) == 0 {
		return nil
	}
	uuids := strings.Join(g.UUIDs(), ",")
	visible := uuids
	if format == "index" {
		idx := make([]string, len(g.Devices))
		for i, d := range g.Devices {
			idx[i] = strconv.Itoa(d.Index)
		}
		visible = strings.Join(idx, ",")
	}
	env := []string{
		"CUDA_DEVICE_ORDER=PCI_BUS_ID",
		"CUDA_VISIBLE_DEVICES=" + visible,
		"GLMD_GPU_UUIDS=" + uuids,
		"NVIDIA_VISIBLE_DEVICES=" + uuids,
	}
	slices.Sort(env)
	return env
}

// grantOf builds the Grant of devs. CPUs and Mems are left empty when any
// device does not know its CPUs or node, because pinning to a part of the
// truth would starve the GPUs whose locality is unknown. (parseCPUList and
// formatCPUList live in cpulist.go, shared with the inventories.)
func grantOf(devs []Device) Grant {
	g := Grant{Devices: slices.Clone(devs)}
	var cpus, nodes []int
	cpusKnown, nodesKnown := true, true
	for _, d := range devs {
		c, err := parseCPUList(d.CPUs)
		if d.CPUs == "" || err != nil {
			cpusKnown = false
		}
		cpus = append(cpus, c...)
		if d.NUMANode < 0 {
			nodesKnown = false
		}
		nodes = append(nodes, d.NUMANode)
	}
	if len(devs) == 0 {
		return g
	}
	if cpusKnown {
		g.CPUs = formatCPUList(cpus)
	}
	if nodesKnown {
		g.Mems = formatCPUList(nodes)
	}
	return g
}
