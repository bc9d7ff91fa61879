package gpu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// staticInventory is the GPUs an operator listed in glmd.toml
// ([gpu] provider = "static", [[gpu.devices]]): for hosts where NVML
// cannot run in glmd's environment, or for tests of scheduling. It knows
// no driver: no samples, processes or events.
type staticInventory struct {
	devs  []Device // in index order; never modified after NewStatic
	links map[Pair]Link
}

// NewStatic returns an Inventory of devs, after checking that every GPU
// has a unique index and a unique non-empty UUID, a memory size, and a
// NUMA node of -1 (unknown) or more; all problems are reported at once.
// Links come from the NUMA nodes alone: LevelNode between GPUs of one
// node, LevelSystem across nodes, unknown where a node is unknown. Sample,
// Processes and Watch return ErrNotSupported: a static list has no driver
// to ask, so GPUs are never seen busy by others, hot or broken.
func NewStatic(devs []Device) (Inventory, error) {
	if err := validateStatic(devs); err != nil {
		return nil, err
	}
	s := &staticInventory{devs: slices.Clone(devs), links: make(map[Pair]Link)}
	slices.SortFunc(s.devs, func(a, b Device) int { return a.Index - b.Index })
	for i, a := range s.devs {
		for _, b := range s.devs[i+1:] {
			if a.NUMANode < 0 || b.NUMANode < 0 {
				continue
			}
			level := LevelSystem
			if a.NUMANode == b.NUMANode {
				level = LevelNode
			}
			s.links[PairOf(a.UUID, b.UUID)] = Link{Level: level}
		}
	}
	return s, nil
}

func validateStatic(devs []Device) error {
	var errs []error
	indices := make(map[int]int)
	uuids := make(map[string]int)
	for i, d := range devs {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("gpu.devices[%d]: %s", i, fmt.Sprintf(format, args...)))
		}
		if d.Index < 0 {
			bad("index %d is negative", d.Index)
		} else if j, dup := indices[d.Index]; dup {
			bad("index %d is also gpu.devices[%d]'s", d.Index, j)
		} else {
			indices[d.Index] = i
		}
		switch uuid := strings.TrimSpace(d.UUID); {
		case uuid == "":
			bad("uuid is empty: copy it from nvidia-smi -L (\"GPU-...\")")
		case uuid != d.UUID:
			bad("uuid %q has blanks around it", d.UUID)
		default:
			if j, dup := uuids[d.UUID]; dup {
				bad("uuid %s is also gpu.devices[%d]'s", d.UUID, j)
			} else {
				uuids[d.UUID] = i
			}
		}
		if d.Memory <= 0 {
			bad("memory %d: want the GPU's total memory, such as \"80GiB\"", d.Memory)
		}
		if d.NUMANode < -1 {
			bad("numa_node %d: want a node number, or -1 for unknown", d.NUMANode)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("static gpu inventory: %w", errors.Join(errs...))
	}
	return nil
}

func (s *staticInventory) Devices(context.Context) ([]Device, map[Pair]Link, error) {
	links := make(map[Pair]Link, len(s.links))
	for p, l := range s.links {
		links[p] = l
	}
	return slices.Clone(s.devs), links, nil
}

func (s *staticInventory) Sample(context.Context) ([]Sample, error) {
	return nil, fmt.Errorf("sample: %w", ErrNotSupported)
}

func (s *staticInventory) Processes(context.Context, string) ([]Process, error) {
	return nil, fmt.Errorf("processes: %w", ErrNotSupported)
}

func (s *staticInventory) Watch(context.Context, chan<- XIDEvent) error {
	return fmt.Errorf("watch: %w", ErrNotSupported)
}

func (s *staticInventory) Close() error { return nil }

// None returns the Inventory of a host without GPUs ([gpu] provider =
// "none", or "auto" without NVML and without a static list): Devices and
// Sample are empty; Processes and Watch return ErrNotSupported.
func None() Inventory { return noneInventory{} }

type noneInventory struct{}

func (noneInventory) Devices(context.Context) ([]Device, map[Pair]Link, error) {
	return nil, map[Pair]Link{}, nil
}

func (noneInventory) Sample(context.Context) ([]Sample, error) { return nil, nil }

func (noneInventory) Processes(_ context.Context, uuid string) ([]Process, error) {
	return nil, fmt.Errorf("processes of %s: no GPUs: %w", uuid, ErrNotSupported)
}

func (noneInventory) Watch(context.Context, chan<- XIDEvent) error {
	return fmt.Errorf("watch: no GPUs: %w", ErrNotSupported)
}

func (noneInventory) Close() error { return nil }
