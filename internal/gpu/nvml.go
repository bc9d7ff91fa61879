//go:build linux && cgo

package gpu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NVMLOptions tunes the NVML inventory; the zero value is what glmd runs
// with.
type NVMLOptions struct {
	// SysfsRoot is where sysfs is mounted ("": /sys). A GPU's NUMA node and
	// local CPUs are read below it when NVML cannot tell.
	SysfsRoot string
	// Log receives what an operator may want to know: GPUs skipped, NVML
	// calls that failed. Nil discards.
	Log *slog.Logger
	// WaitTimeout bounds one wait for driver events, and so how late Watch
	// notices that its context ended (0: one second).
	WaitTimeout time.Duration
}

// The affinity calls size their buffers as (n-1)/8+1 words, dividing by
// sizeof(unsigned long) instead of its bits: n is a count of CPUs or nodes
// and the buffer comes back 8 times too large, never too small, as long as
// n covers every CPU (node) the host may have.
const (
	affinityNodes = 64
	affinityCPUs  = 1024
)

// watchedEvents are the driver events Watch asks for. Single-bit ECC
// errors are corrected by the hardware: the poller sees them in counters.
const watchedEvents = nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError

const defaultWaitTimeout = time.Second

// errClosed is what every method returns after Close: NVML is shut down,
// and calling it now could crash the process.
var errClosed = fmt.Errorf("%w: the NVML inventory is closed", ErrNoNVML)

// nvmlInventory is the Inventory over NVML. It exists only after a
// successful Init: NVML must not be called after a failed one.
type nvmlInventory struct {
	lib    nvml.Interface
	sysfs  string
	log    *slog.Logger
	wait   time.Duration
	driver string
	done   chan struct{} // closed by Close, so that running watches return

	closeOnce sync.Once
	// mu is held for reading by every method while it calls NVML, and for
	// writing by Close: Shutdown unloads the library, so it must never run
	// under a call in flight.
	mu     sync.RWMutex
	closed bool // guarded by mu

	handlesMu sync.Mutex
	handles   []gpuHandle // guarded by handlesMu: the GPUs Devices last returned; nil before the first enumeration

	errMu sync.Mutex
	errs  map[CallError]uint64 // guarded by errMu
}

// gpuHandle is one GPU as NVML knows it. The handle stays valid until
// Shutdown; keeping it lets Sample name a GPU that stopped answering.
type gpuHandle struct {
	index int
	uuid  string
	dev   nvml.Device
}

var (
	_ Inventory        = (*nvmlInventory)(nil)
	_ CallErrorCounter = (*nvmlInventory)(nil)
	_ DriverVersioner  = (*nvmlInventory)(nil)
)

// OpenNVML loads the NVIDIA management library (libnvidia-ml.so.1, opened
// at Init) and returns the Inventory over it. Without the library or the
// driver the error satisfies errors.Is(err, ErrNoNVML) and names NVML's
// code ("nvml init: ERROR_LIBRARY_NOT_FOUND: ...").
func OpenNVML(log *slog.Logger) (Inventory, error) {
	return NewNVML(nvml.New(), NVMLOptions{Log: log})
}

// NewNVML initialises lib and returns the Inventory over it; Close shuts
// it down. When Init fails, the error wraps ErrNoNVML and an *NVMLError
// with Init's code, and lib is never called again: after a failed Init
// the next call ends the process ("symbol lookup error", exit 127, which
// recover cannot catch).
func NewNVML(lib nvml.Interface, opts NVMLOptions) (Inventory, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("%w: %w", ErrNoNVML, &NVMLError{
			Call: "init", Code: int(ret), Name: returnName(ret), Text: initText(ret),
		})
	}
	inv := &nvmlInventory{
		lib:   lib,
		sysfs: opts.SysfsRoot,
		log:   opts.Log,
		wait:  opts.WaitTimeout,
		done:  make(chan struct{}),
		errs:  make(map[CallError]uint64),
	}
	if inv.sysfs == "" {
		inv.sysfs = DefaultSysfsRoot
	}
	if inv.log == nil {
		inv.log = slog.New(slog.DiscardHandler)
	}
	if inv.wait <= 0 {
		inv.wait = defaultWaitTimeout
	}
	if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		inv.driver = v
	} else {
		inv.log.Warn("nvml: driver version unknown", "err", inv.fail("SystemGetDriverVersion", "", ret))
	}
	return inv, nil
}

// DriverVersion returns the driver's version as NVML reported it at Init.
func (inv *nvmlInventory) DriverVersion() string { return inv.driver }

// CallErrors returns how often each NVML call failed, by code.
func (inv *nvmlInventory) CallErrors() map[CallError]uint64 {
	inv.errMu.Lock()
	defer inv.errMu.Unlock()
	out := make(map[CallError]uint64, len(inv.errs))
	for k, v := range inv.errs {
		out[k] = v
	}
	return out
}

// fail counts a failed call and returns it as an *NVMLError.
func (inv *nvmlInventory) fail(call, uuid string, ret nvml.Return) error {
	name := returnName(ret)
	inv.errMu.Lock()
	inv.errs[CallError{Call: call, Code: name}]++
	inv.errMu.Unlock()
	return &NVMLError{Call: call, UUID: uuid, Code: int(ret), Name: name, Text: ret.Error()}
}

// Devices enumerates the GPUs and measures the links between them. A GPU
// that is lost, or hidden from glmd (NO_PERMISSION: a device cgroup), is
// left out with a warning, so that one dead GPU does not hide the others.
func (inv *nvmlInventory) Devices(ctx context.Context) ([]Device, map[Pair]Link, error) {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	if inv.closed {
		return nil, nil, errClosed
	}
	found, err := inv.enumerate(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("devices: %w", err)
	}
	devs := make([]Device, 0, len(found))
	handles := make([]gpuHandle, 0, len(found))
	for _, h := range found {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("devices: %w", err)
		}
		d, err := inv.device(h)
		if errors.Is(err, ErrGPULost) {
			inv.log.Warn("gpu left out: it is lost", "gpu", h.index, "uuid", h.uuid, "err", err)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("devices: gpu %d: %w", h.index, err)
		}
		devs = append(devs, d)
		handles = append(handles, h)
	}
	links := inv.links(handles, devs)
	inv.handlesMu.Lock()
	inv.handles = handles
	inv.handlesMu.Unlock()
	return devs, links, nil
}

// enumerate lists the GPUs NVML counts, with their UUIDs.
func (inv *nvmlInventory) enumerate(ctx context.Context) ([]gpuHandle, error) {
	n, ret := inv.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, inv.fail("DeviceGetCount", "", ret)
	}
	handles := make([]gpuHandle, 0, n)
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dev, ret := inv.lib.DeviceGetHandleByIndex(i)
		if ret == nvml.ERROR_GPU_IS_LOST || ret == nvml.ERROR_NO_PERMISSION {
			inv.log.Warn("gpu left out", "gpu", i, "err", inv.fail("DeviceGetHandleByIndex", "", ret))
			continue
		}
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("gpu %d: %w", i, inv.fail("DeviceGetHandleByIndex", "", ret))
		}
		uuid, ret := dev.GetUUID()
		if ret == nvml.ERROR_GPU_IS_LOST {
			inv.log.Warn("gpu left out", "gpu", i, "err", inv.fail("GetUUID", "", ret))
			continue
		}
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("gpu %d: %w", i, inv.fail("GetUUID", "", ret))
		}
		handles = append(handles, gpuHandle{index: i, uuid: uuid, dev: dev})
	}
	return handles, nil
}

// cached returns the GPUs Devices last returned, enumerating them when
// Devices has not run yet.
func (inv *nvmlInventory) cached(ctx context.Context) ([]gpuHandle, error) {
	inv.handlesMu.Lock()
	handles := inv.handles
	inv.handlesMu.Unlock()
	if handles != nil {
		return handles, nil
	}
	handles, err := inv.enumerate(ctx)
	if err != nil {
		return nil, err
	}
	inv.handlesMu.Lock()
	if inv.handles == nil {
		inv.handles = handles
	}
	inv.handlesMu.Unlock()
	return handles, nil
}

// device reads what does not change about one GPU.
func (inv *nvmlInventory) device(h gpuHandle) (Device, error) {
	d := Device{Index: h.index, UUID: h.uuid, NUMANode: -1, Minor: -1}
	var ret nvml.Return
	if d.Name, ret = h.dev.GetName(); ret != nvml.SUCCESS {
		return d, inv.fail("GetName", h.uuid, ret)
	}
	// Minors do not reliably follow NVML indices: ask.
	if minor, ret := h.dev.GetMinorNumber(); ret == nvml.SUCCESS {
		d.Minor = minor
	}
	mem, ret := h.dev.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return d, inv.fail("GetMemoryInfo", h.uuid, ret)
	}
	d.Memory = int64(mem.Total)
	pci, ret := h.dev.GetPciInfo()
	if ret != nvml.SUCCESS {
		return d, inv.fail("GetPciInfo", h.uuid, ret)
	}
	d.PCIBusID = pciBusID(pci)
	var err error
	if d.NUMANode, err = inv.numaNode(h, d.PCIBusID); err != nil {
		return d, err
	}
	if d.CPUs, err = inv.localCPUs(h, d.PCIBusID); err != nil {
		return d, err
	}
	if d.MIG, err = inv.migMode(h); err != nil {
		return d, err
	}
	return d, nil
}

// pciBusID returns NVML's bus id ("00000000:18:00.0"), built from the
// numeric fields where the string is empty.
func pciBusID(pci nvml.PciInfo) string {
	if id := cString(pci.BusId[:]); id != "" {
		return id
	}
	if pci.Domain == 0 && pci.Bus == 0 && pci.Device == 0 {
		return ""
	}
	return fmt.Sprintf("%08X:%02X:%02X.0", pci.Domain, pci.Bus, pci.Device)
}

// cString reads a NUL-terminated C char array.
func cString[T int8 | uint8](b []T) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// numaNode asks NVML for the node whose memory is closest to the GPU, and
// the kernel (sysfs) where NVML cannot tell. Only ERROR_GPU_IS_LOST is an
// error; otherwise an unknown node is -1.
func (inv *nvmlInventory) numaNode(h gpuHandle, busID string) (int, error) {
	words, ret := h.dev.GetMemoryAffinity(affinityNodes, nvml.AFFINITY_SCOPE_NODE)
	switch ret {
	case nvml.SUCCESS:
		// One node in practice; several would be a host that interleaves
		// memory, where the first is as good as any.
		if nodes := maskBits(words); len(nodes) > 0 {
			return nodes[0], nil
		}
	case nvml.ERROR_NOT_SUPPORTED:
	case nvml.ERROR_GPU_IS_LOST:
		return -1, inv.fail("GetMemoryAffinity", h.uuid, ret)
	default:
		inv.log.Debug("gpu numa node: asking sysfs", "uuid", h.uuid, "err", inv.fail("GetMemoryAffinity", h.uuid, ret))
	}
	node, err := sysfsNUMANode(inv.sysfs, busID)
	if err != nil {
		inv.log.Debug("gpu numa node unknown", "uuid", h.uuid, "err", err)
	}
	return node, nil
}

// localCPUs asks NVML for the CPUs of the GPU's node, and the kernel
// (sysfs local_cpulist) where NVML cannot tell.
func (inv *nvmlInventory) localCPUs(h gpuHandle, busID string) (string, error) {
	words, ret := h.dev.GetCpuAffinityWithinScope(affinityCPUs, nvml.AFFINITY_SCOPE_NODE)
	switch ret {
	case nvml.SUCCESS:
		if cpus := maskBits(words); len(cpus) > 0 {
			return formatCPUList(cpus), nil
		}
	case nvml.ERROR_NOT_SUPPORTED:
	case nvml.ERROR_GPU_IS_LOST:
		return "", inv.fail("GetCpuAffinityWithinScope", h.uuid, ret)
	default:
		inv.log.Debug("gpu local cpus: asking sysfs", "uuid", h.uuid, "err", inv.fail("GetCpuAffinityWithinScope", h.uuid, ret))
	}
	cpus, err := sysfsLocalCPUs(inv.sysfs, busID)
	if err != nil {
		inv.log.Debug("gpu local cpus unknown", "uuid", h.uuid, "err", err)
	}
	return cpus, nil
}

// migMode reports whether MIG is on. When NVML cannot say for a reason
// other than NOT_SUPPORTED (no MIG on this model), the GPU counts as MIG:
// handing out a partitioned GPU whole would break its tenants.
func (inv *nvmlInventory) migMode(h gpuHandle) (bool, error) {
	current, _, ret := h.dev.GetMigMode()
	switch ret {
	case nvml.SUCCESS:
		return current == nvml.DEVICE_MIG_ENABLE, nil
	case nvml.ERROR_NOT_SUPPORTED:
		return false, nil
	case nvml.ERROR_GPU_IS_LOST:
		return false, inv.fail("GetMigMode", h.uuid, ret)
	}
	inv.log.Warn("gpu mig mode unknown: not handed out whole", "uuid", h.uuid, "err", inv.fail("GetMigMode", h.uuid, ret))
	return true, nil
}

// links measures every pair of GPUs: the PCIe path from
// GetTopologyCommonAncestor and the NVLink lanes between them. A pair
// NVML cannot place stays out of the map (unknown) unless NVLink joins it.
func (inv *nvmlInventory) links(handles []gpuHandle, devs []Device) map[Pair]Link {
	byBus := make(map[string]int, len(devs))
	for i, d := range devs {
		if name, err := sysfsPCIName(d.PCIBusID); err == nil {
			byBus[name] = i
		}
	}
	direct := make([][]int, len(handles))
	switched := make([]int, len(handles))
	for i, h := range handles {
		direct[i] = make([]int, len(handles))
		switched[i] = inv.nvlinks(h, i, byBus, direct[i])
	}
	links := make(map[Pair]Link)
	for i := range handles {
		for j := i + 1; j < len(handles); j++ {
			link := Link{NVLink: max(direct[i][j], direct[j][i])}
			// Behind NVSwitches every GPU reaches every other at the
			// bandwidth of its lanes into the switch fabric.
			if link.NVLink == 0 && switched[i] > 0 && switched[j] > 0 {
				link.NVLink = min(switched[i], switched[j])
			}
			level, ret := handles[i].dev.GetTopologyCommonAncestor(handles[j].dev)
			if ret == nvml.SUCCESS {
				link.Level = Level(level)
			} else {
				err := inv.fail("GetTopologyCommonAncestor", handles[i].uuid, ret)
				inv.log.Debug("gpu pair: pcie path unknown", "uuid", handles[j].uuid, "err", err)
				if link.NVLink == 0 {
					continue
				}
				link.Level = LevelSystem
			}
			links[PairOf(handles[i].uuid, handles[j].uuid)] = link
		}
	}
	return links
}

// nvlinks counts GPU self's active NVLink lanes: into direct[j] for lanes
// whose far end is GPU j, and returned for lanes into an NVSwitch.
// NOT_SUPPORTED (no NVLink) and INVALID_ARGUMENT (past the GPU's last
// link) are normal answers.
func (inv *nvmlInventory) nvlinks(h gpuHandle, self int, byBus map[string]int, direct []int) (switched int) {
	for l := range nvml.NVLINK_MAX_LINKS {
		state, ret := h.dev.GetNvLinkState(l)
		if ret == nvml.ERROR_NOT_SUPPORTED || ret == nvml.ERROR_INVALID_ARGUMENT {
			continue
		}
		if ret != nvml.SUCCESS {
			inv.log.Debug("gpu nvlink unknown", "uuid", h.uuid, "link", l, "err", inv.fail("GetNvLinkState", h.uuid, ret))
			return switched
		}
		if state != nvml.FEATURE_ENABLED {
			continue
		}
		remote, ret := h.dev.GetNvLinkRemotePciInfo(l)
		if ret != nvml.SUCCESS {
			if ret != nvml.ERROR_NOT_SUPPORTED {
				inv.log.Debug("gpu nvlink peer unknown", "uuid", h.uuid, "link", l, "err", inv.fail("GetNvLinkRemotePciInfo", h.uuid, ret))
			}
			continue
		}
		if name, err := sysfsPCIName(pciBusID(remote)); err == nil {
			if j, ok := byBus[name]; ok {
				if j != self {
					direct[j]++
				}
				continue
			}
		}
		// Not a GPU of this host: an NVSwitch, or an NVLink bridge to a
		// CPU (IBM POWER), which does not join GPUs.
		if kind, ret := h.dev.GetNvLinkRemoteDeviceType(l); ret == nvml.SUCCESS && kind == nvml.NVLINK_DEVICE_TYPE_SWITCH {
			switched++
		}
	}
	return switched
}

// Close shuts NVML down once; later calls return nil. It stops running
// watches (within one wait timeout) and waits for calls in flight, since
// Shutdown unloads the library under them.
func (inv *nvmlInventory) Close() error {
	inv.closeOnce.Do(func() { close(inv.done) })
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.closed {
		return nil
	}
	inv.closed = true
	if ret := inv.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("close: %w", inv.fail("Shutdown", "", ret))
	}
	return nil
}
