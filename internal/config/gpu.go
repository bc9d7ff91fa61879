package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
)

// GPU is the task file's [gpu] table: the whole GPUs each instance gets.
// The zero value asks for none.
type GPU struct {
	Count     int      // GPUs per instance; with IDs, len(IDs)
	IDs       []string // exactly these GPUs, as indices ("3") or UUIDs ("GPU-..."); only with instances = 1
	MinMemory int64    // bytes each GPU must have free when the instance starts
	Model     string   // a GPU's name must contain this (case-insensitive), e.g. "H100"
	// NUMAPin pins the instance's CPUs and memory to its GPUs' NUMA nodes
	// through its cgroup (cpuset). Default true; it takes effect only
	// where the agent uses cgroups.
	NUMAPin bool
	Shared  bool // may share GPUs with other tasks that also say shared = true
	// VisibleDevicesFormat is how CUDA_VISIBLE_DEVICES names the GPUs:
	// "uuid" (default: stable, immune to renumbering) or "index".
	VisibleDevicesFormat string
	// IsolateDevices keeps the instance from opening the other GPUs'
	// device files (/dev/nvidiaN) through its cgroup: CUDA_VISIBLE_DEVICES
	// is a convention, this is a fence. Needs cgroups.
	IsolateDevices bool
}

// Values of [gpu] visible_devices_format.
const (
	VisibleUUID  = "uuid"
	VisibleIndex = "index"
)

// maxGPUs bounds [gpu] count: no host holds more.
const maxGPUs = 64

var gpuUUIDRE = regexp.MustCompile(`^GPU-[0-9a-fA-F-]{8,}$`)

var gpuKeys = &keySet{
	keys: map[string]*keySet{
		"count": nil, "ids": nil, "min_memory": nil, "model": nil, "numa_pin": nil,
		"shared": nil, "visible_devices_format": nil, "isolate_devices": nil,
	},
	alias: map[string]string{"gpus": "count", "devices": "ids", "uuids": "ids", "memory": "min_memory"},
}

func (f *taskFile) decodeGPU() {
	if _, ok := f.table("gpu"); !ok {
		return
	}
	g := &f.t.GPU
	if n, ok := f.integer("gpu", "count"); ok {
		g.Count = n
	}
	if v, ok := f.lookup("gpu", "ids"); ok {
		arr, isArr := v.([]any)
		if !isArr {
			f.wrongType("gpu.ids", v, `an array of GPU indices or UUIDs, such as [0, 1] or ["GPU-8b7c..."]`)
		} else {
			ids := make([]string, 0, len(arr))
			good := true
			for i, e := range arr {
				switch e := e.(type) {
				case int64:
					ids = append(ids, strconv.FormatInt(e, 10))
				case string:
					ids = append(ids, e)
				default:
					f.errorf("gpu.ids", "element %d must be a GPU index or UUID, not %s", i, tomlType(e))
					good = false
				}
			}
			if good {
				g.IDs = ids
				f.given["gpu.ids"] = true
			}
		}
	}
	if n, ok := f.size("gpu", "min_memory"); ok {
		g.MinMemory = n
	}
	if s, ok := f.str("gpu", "model"); ok {
		g.Model = s
	}
	if b, ok := f.boolean("gpu", "numa_pin"); ok {
		g.NUMAPin = b
	}
	if b, ok := f.boolean("gpu", "shared"); ok {
		g.Shared = b
	}
	if s, ok := f.str("gpu", "visible_devices_format"); ok {
		g.VisibleDevicesFormat = s
	}
	if b, ok := f.boolean("gpu", "isolate_devices"); ok {
		g.IsolateDevices = b
	}
}

func (f *taskFile) defaultGPU() {
	g := &f.t.GPU
	if !f.given["gpu.numa_pin"] {
		g.NUMAPin = true
	}
	if !f.given["gpu.visible_devices_format"] {
		g.VisibleDevicesFormat = VisibleUUID
	}
	if f.given["gpu.ids"] && !f.given["gpu.count"] {
		g.Count = len(g.IDs)
	}
}

func (f *taskFile) validateGPU() {
	g := &f.t.GPU
	given := func(key string) bool { return f.given[key] }
	if given("gpu.count") && (g.Count < 0 || g.Count > maxGPUs) {
		f.errorf("gpu.count", "%d is out of range (0 to %d)", g.Count, maxGPUs)
	}
	if given("gpu.ids") {
		seen := map[string]bool{}
		for _, id := range g.IDs {
			n, err := strconv.Atoi(id)
			switch {
			case err == nil && (n < 0 || n >= maxGPUs):
				f.errorf("gpu.ids", "GPU index %d is out of range (0 to %d)", n, maxGPUs-1)
			case err != nil && !gpuUUIDRE.MatchString(id):
				f.errorf("gpu.ids", "%q is neither a GPU index nor a GPU UUID (such as 0 or \"GPU-8b7c1e4a-...\", as nvidia-smi -L shows)", id)
			case seen[id]:
				f.errorf("gpu.ids", "%q is listed twice", id)
			}
			seen[id] = true
		}
		if len(g.IDs) == 0 {
			f.errorf("gpu.ids", "must not be empty (leave it out and set count to take any GPUs)")
		}
		if given("gpu.count") && g.Count != len(g.IDs) && f.ok("gpu.count") {
			f.errorf("gpu.count", "is %d but gpu.ids lists %d GPUs (leave count out: the ids say how many)", g.Count, len(g.IDs))
		}
		if f.t.Instances > 1 && f.ok("instances") {
			f.errorf("gpu.ids", "names fixed GPUs, which %d instances cannot all hold (use count, or one task file per instance)", f.t.Instances)
		}
	}
	if given("gpu.min_memory") && g.MinMemory <= 0 {
		f.errorf("gpu.min_memory", "must be positive (leave it out for no minimum)")
	}
	formats := []string{VisibleUUID, VisibleIndex}
	if given("gpu.visible_devices_format") && !slices.Contains(formats, g.VisibleDevicesFormat) {
		hint := ""
		if best := closest(g.VisibleDevicesFormat, formats); best != "" {
			hint = fmt.Sprintf("did you mean %q? ", best)
		}
		f.errorf("gpu.visible_devices_format", "%q is not a format (%suse \"uuid\" or \"index\")", g.VisibleDevicesFormat, hint)
	}
	if g.Count == 0 {
		for _, k := range []string{"gpu.min_memory", "gpu.model", "gpu.shared", "gpu.isolate_devices"} {
			if given(k) && f.ok("gpu.count") && f.ok("gpu.ids") {
				f.errorf(k, "has no effect without GPUs (set gpu.count, e.g. count = 1)")
			}
		}
	}
}
