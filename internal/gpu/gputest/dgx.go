//go:build linux && cgo

package gputest

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// DGXGPUs is how many GPUs the emulated host has.
const DGXGPUs = 8

// DGXBusIDs are the GPUs' PCI bus ids, as NVML writes them.
var DGXBusIDs = [DGXGPUs]string{
	"00000000:18:00.0", "00000000:2A:00.0", "00000000:3A:00.0", "00000000:5D:00.0",
	"00000000:9A:00.0", "00000000:AB:00.0", "00000000:BA:00.0", "00000000:DB:00.0",
}

// DGXNodeCPUs are the CPUs of the two NUMA nodes: GPUs 0-3 sit on node 0,
// GPUs 4-7 on node 1.
var DGXNodeCPUs = [2]string{"0-55,112-167", "56-111,168-223"}

// DGXNVLinkLanes is how many NVLink lanes join the two GPUs of a pair
// ({0,1} {2,3} {4,5} {6,7}), or each GPU to the NVSwitches.
const (
	DGXNVLinkLanes   = 4
	DGXNVSwitchLanes = 12
	dgxLinks         = 12 // an A100 has 12 NVLink links
)

// dgxSwitchBusIDs are the NVSwitches' bus ids under DGXNVSwitch.
var dgxSwitchBusIDs = []string{
	"00000000:C4:00.0", "00000000:C5:00.0", "00000000:C6:00.0",
	"00000000:C7:00.0", "00000000:C8:00.0", "00000000:C9:00.0",
}

// DGXOption changes the emulated host.
type DGXOption func(*DGX)

// DGXNoNVLink removes NVLink: every NVLink call answers NOT_SUPPORTED,
// so the pairs are joined by their PCIe switch alone.
func DGXNoNVLink() DGXOption { return func(d *DGX) { d.nvlink = dgxNVLinkNone } }

// DGXNVSwitch connects every GPU to six NVSwitches (12 lanes) instead of
// to its pair partner, as a real DGX A100.
func DGXNVSwitch() DGXOption { return func(d *DGX) { d.nvlink = dgxNVLinkSwitch } }

// DGXNoAffinity makes NVML's NUMA and CPU affinity calls answer
// NOT_SUPPORTED, so that the inventory must read sysfs.
func DGXNoAffinity() DGXOption { return func(d *DGX) { d.noAffinity = true } }

type dgxNVLink int

const (
	dgxNVLinkPairs dgxNVLink = iota
	dgxNVLinkNone
	dgxNVLinkSwitch
)

// DGX is go-nvml's DGX A100 mock (dgxa100: 8 x "Mock NVIDIA A100-SXM4-40GB"),
// decorated into an emulated two-socket host: every NVML call the
// inventory makes is answered, GPU-lost faults and driver events can be
// injected, and used memory and processes can be set while tests run.
// Calls the decoration does not cover panic ("method is nil"), so that a
// new NVML call in the inventory fails its tests loudly.
type DGX struct {
	// Server is the decorated mock. Tests may decorate further before the
	// first NVML call; later, change the host only through DGX's methods.
	Server *server.Server

	nvlink     dgxNVLink
	noAffinity bool

	mu         sync.Mutex
	uuids      [DGXGPUs]string             // guarded by mu
	used       [DGXGPUs]uint64             // guarded by mu
	procs      [DGXGPUs][]nvml.ProcessInfo // guarded by mu
	lost       [DGXGPUs]bool               // guarded by mu
	ecc        [DGXGPUs]uint64             // guarded by mu
	remap      [DGXGPUs][2]bool            // guarded by mu: pending, failed
	recovery   [DGXGPUs]uint32             // guarded by mu
	registered [DGXGPUs]uint64             // guarded by mu: event mask
	queue      []dgxEvent                  // guarded by mu
	sets       int                         // guarded by mu: event sets created
	freed      int                         // guarded by mu: event sets freed
	wake       chan struct{}               // cap 1: something was dgxEvent
}

// dgxEvent is one answer waiting for an event set's Wait.
type dgxEvent struct {
	gpu  int
	data nvml.EventData
	ret  nvml.Return
}

// NewDGX returns the emulated host: GPUs 0-3 on NUMA node 0 (CPUs
// 0-55,112-167), 4-7 on node 1 (56-111,168-223), PCIe switch pairs {0,1}
// {2,3} {4,5} {6,7} joined by 4 NVLink lanes, bus ids DGXBusIDs, nothing
// running, no memory used. UUIDs are random: read them with UUID.
func NewDGX(opts ...DGXOption) *DGX {
	d := &DGX{Server: dgxa100.New(), wake: make(chan struct{}, 1)}
	for _, opt := range opts {
		opt(d)
	}
	for i, nd := range d.Server.Devices {
		dev := nd.(*server.Device)
		d.uuids[i] = dev.UUID
		dev.PciBusID = DGXBusIDs[i]
		d.decorate(i, dev)
	}
	d.Server.EventSetCreateFunc = d.newEventSet
	return d
}

// Interface returns the host as go-nvml's nvml.Interface.
func (d *DGX) Interface() nvml.Interface { return d.Server }

// UUID returns the UUID of GPU i.
func (d *DGX) UUID(i int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.uuids[i]
}

// UUIDs returns the UUIDs of all GPUs, in index order.
func (d *DGX) UUIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.uuids[:]...)
}

// Memory returns the memory of each GPU in bytes (40960 MiB).
func (d *DGX) Memory() int64 {
	return int64(d.Server.Devices[0].(*server.Device).MemoryInfo.Total)
}

// SetUsed sets the memory NVML reports used on GPU i.
func (d *DGX) SetUsed(i int, bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.used[i] = uint64(bytes)
}

// SetProcesses sets the compute processes NVML reports on GPU i.
func (d *DGX) SetProcesses(i int, procs ...nvml.ProcessInfo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.procs[i] = append([]nvml.ProcessInfo(nil), procs...)
}

// SetECC sets GPU i's volatile uncorrected ECC error count.
func (d *DGX) SetECC(i int, uncorrected uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ecc[i] = uncorrected
}

// SetRemap sets GPU i's row remapping flags.
func (d *DGX) SetRemap(i int, pending, failed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.remap[i] = [2]bool{pending, failed}
}

// SetRecoveryAction sets what the driver says GPU i needs (NVML field 230).
func (d *DGX) SetRecoveryAction(i int, action nvml.DeviceGpuRecoveryAction) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recovery[i] = uint32(action)
}

// SetMIG turns MIG mode of GPU i on or off.
func (d *DGX) SetMIG(i int, on bool) {
	mode := nvml.DEVICE_MIG_DISABLE
	if on {
		mode = nvml.DEVICE_MIG_ENABLE
	}
	d.Server.Devices[i].(*server.Device).SetMigMode(mode)
}

// PushXID queues an XID critical error on GPU i for the next Wait of an
// event set. As with the driver, it is delivered only if XIDs were
// registered on that GPU by then, and dropped otherwise.
func (d *DGX) PushXID(i int, xid uint64) {
	d.push(dgxEvent{gpu: i, ret: nvml.SUCCESS, data: d.eventData(i, nvml.EventTypeXidCriticalError, xid)})
}

// PushDoubleBit queues a double-bit ECC error on GPU i.
func (d *DGX) PushDoubleBit(i int) {
	d.push(dgxEvent{gpu: i, ret: nvml.SUCCESS, data: d.eventData(i, nvml.EventTypeDoubleBitEccError, 0)})
}

// Lose makes GPU i fall off the bus: every NVML call on it answers
// ERROR_GPU_IS_LOST from now on, and the next Wait of an event set
// returns ERROR_GPU_IS_LOST for it.
func (d *DGX) Lose(i int) {
	d.mu.Lock()
	d.lost[i] = true
	d.mu.Unlock()
	d.push(dgxEvent{gpu: i, ret: nvml.ERROR_GPU_IS_LOST, data: nvml.EventData{Device: d.Server.Devices[i]}})
}

// EventSets returns how many event sets were created and freed.
func (d *DGX) EventSets() (created, freed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sets, d.freed
}

// Shutdowns returns how often Shutdown was called.
func (d *DGX) Shutdowns() int { return len(d.Server.ShutdownCalls()) }

func (d *DGX) eventData(i int, kind, data uint64) nvml.EventData {
	return nvml.EventData{
		Device: d.Server.Devices[i], EventType: kind, EventData: data,
		GpuInstanceId: 0xFFFFFFFF, ComputeInstanceId: 0xFFFFFFFF,
	}
}

func (d *DGX) push(q dgxEvent) {
	d.mu.Lock()
	d.queue = append(d.queue, q)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// isLost reports whether GPU i fell off the bus.
func (d *DGX) isLost(i int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lost[i]
}

// dgxPair is the index of i's PCIe switch partner.
func dgxPair(i int) int { return i ^ 1 }

// dgxNode is the NUMA node of GPU i.
func dgxNode(i int) int { return i / 4 }

// dgxLevel is the PCIe path between GPUs i and j.
func dgxLevel(i, j int) nvml.GpuTopologyLevel {
	switch {
	case i == j:
		return nvml.TOPOLOGY_INTERNAL
	case dgxPair(i) == j:
		return nvml.TOPOLOGY_SINGLE
	case dgxNode(i) == dgxNode(j):
		return nvml.TOPOLOGY_NODE
	}
	return nvml.TOPOLOGY_SYSTEM
}

// dgxCPUs lists the CPUs of NUMA node n.
func dgxCPUs(n int) []int {
	lo := n * 56
	var out []int
	for c := lo; c < lo+56; c++ {
		out = append(out, c, c+112)
	}
	return out
}

// dgxMask builds an affinity mask as go-nvml returns it: (n-1)/8+1 words
// (its quirk), 64 bits each; bits past the end are lost, as they would be.
func dgxMask(n int, set ...int) []uint {
	words := make([]uint, (n-1)/8+1)
	for _, b := range set {
		if w := b / 64; w < len(words) {
			words[w] |= 1 << (b % 64)
		}
	}
	return words
}

// dgxCString stores s as a C char[32].
func dgxCString(s string) [32]int8 {
	var out [32]int8
	for i := 0; i < len(s) && i < len(out)-1; i++ {
		out[i] = int8(s[i])
	}
	return out
}

// decorate answers every call the inventory makes on GPU i.
func (d *DGX) decorate(i int, dev *server.Device) {
	lost := func() bool { return d.isLost(i) }
	busID := DGXBusIDs[i]
	dev.GetUUIDFunc = func() (string, nvml.Return) {
		if lost() {
			return "", nvml.ERROR_GPU_IS_LOST
		}
		return dev.UUID, nvml.SUCCESS
	}
	dev.GetNameFunc = func() (string, nvml.Return) {
		if lost() {
			return "", nvml.ERROR_GPU_IS_LOST
		}
		return dev.Config.Name, nvml.SUCCESS
	}
	dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
		if lost() {
			return nvml.PciInfo{}, nvml.ERROR_GPU_IS_LOST
		}
		return nvml.PciInfo{PciDeviceId: dev.Config.PciDeviceId, BusId: dgxCString(busID)}, nvml.SUCCESS
	}
	dev.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.lost[i] {
			return nvml.Memory{}, nvml.ERROR_GPU_IS_LOST
		}
		total := dev.MemoryInfo.Total
		used := min(d.used[i], total)
		return nvml.Memory{Total: total, Used: used, Free: total - used}, nvml.SUCCESS
	}
	dev.GetMigModeFunc = func() (int, int, nvml.Return) {
		if lost() {
			return 0, 0, nvml.ERROR_GPU_IS_LOST
		}
		dev.RLock()
		defer dev.RUnlock()
		return dev.MigMode, dev.MigMode, nvml.SUCCESS
	}
	dev.GetMemoryAffinityFunc = func(n int, scope nvml.AffinityScope) ([]uint, nvml.Return) {
		switch {
		case lost():
			return nil, nvml.ERROR_GPU_IS_LOST
		case d.noAffinity:
			return nil, nvml.ERROR_NOT_SUPPORTED
		case scope != nvml.AFFINITY_SCOPE_NODE:
			return nil, nvml.ERROR_INVALID_ARGUMENT
		}
		return dgxMask(n, dgxNode(i)), nvml.SUCCESS
	}
	dev.GetCpuAffinityWithinScopeFunc = func(n int, scope nvml.AffinityScope) ([]uint, nvml.Return) {
		switch {
		case lost():
			return nil, nvml.ERROR_GPU_IS_LOST
		case d.noAffinity:
			return nil, nvml.ERROR_NOT_SUPPORTED
		case scope != nvml.AFFINITY_SCOPE_NODE:
			return nil, nvml.ERROR_INVALID_ARGUMENT
		}
		return dgxMask(n, dgxCPUs(dgxNode(i))...), nvml.SUCCESS
	}
	// x86: a GPU is not a NUMA node of its own (only on Grace).
	dev.GetNumaNodeIdFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	dev.GetTopologyCommonAncestorFunc = func(other nvml.Device) (nvml.GpuTopologyLevel, nvml.Return) {
		if lost() {
			return 0, nvml.ERROR_GPU_IS_LOST
		}
		return dgxLevel(i, other.(*server.Device).Index), nvml.SUCCESS
	}
	d.decorateNVLink(i, dev, lost)
	d.decorateSample(i, dev, lost)
	dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.lost[i] {
			return nil, nvml.ERROR_GPU_IS_LOST
		}
		return append([]nvml.ProcessInfo(nil), d.procs[i]...), nvml.SUCCESS
	}
	dev.GetSupportedEventTypesFunc = func() (uint64, nvml.Return) {
		if lost() {
			return 0, nvml.ERROR_GPU_IS_LOST
		}
		return nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError | nvml.EventTypeSingleBitEccError, nvml.SUCCESS
	}
	dev.RegisterEventsFunc = func(kinds uint64, _ nvml.EventSet) nvml.Return {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.lost[i] {
			return nvml.ERROR_GPU_IS_LOST
		}
		d.registered[i] |= kinds
		return nvml.SUCCESS
	}
}

// decorateNVLink wires GPU i's NVLink links as the host's shape says.
func (d *DGX) decorateNVLink(i int, dev *server.Device, lost func() bool) {
	dev.GetNvLinkStateFunc = func(l int) (nvml.EnableState, nvml.Return) {
		switch {
		case lost():
			return 0, nvml.ERROR_GPU_IS_LOST
		case d.nvlink == dgxNVLinkNone:
			return 0, nvml.ERROR_NOT_SUPPORTED
		case l < 0 || l >= dgxLinks:
			return 0, nvml.ERROR_INVALID_ARGUMENT
		case d.nvlink == dgxNVLinkPairs && l >= DGXNVLinkLanes:
			return nvml.FEATURE_DISABLED, nvml.SUCCESS
		}
		return nvml.FEATURE_ENABLED, nvml.SUCCESS
	}
	dev.GetNvLinkRemotePciInfoFunc = func(l int) (nvml.PciInfo, nvml.Return) {
		switch {
		case lost():
			return nvml.PciInfo{}, nvml.ERROR_GPU_IS_LOST
		case d.nvlink == dgxNVLinkNone:
			return nvml.PciInfo{}, nvml.ERROR_NOT_SUPPORTED
		case l < 0 || l >= dgxLinks:
			return nvml.PciInfo{}, nvml.ERROR_INVALID_ARGUMENT
		case d.nvlink == dgxNVLinkSwitch:
			return nvml.PciInfo{BusId: dgxCString(dgxSwitchBusIDs[l%len(dgxSwitchBusIDs)])}, nvml.SUCCESS
		case l >= DGXNVLinkLanes:
			return nvml.PciInfo{}, nvml.ERROR_INVALID_ARGUMENT
		}
		return nvml.PciInfo{BusId: dgxCString(DGXBusIDs[dgxPair(i)])}, nvml.SUCCESS
	}
	dev.GetNvLinkRemoteDeviceTypeFunc = func(l int) (nvml.IntNvLinkDeviceType, nvml.Return) {
		switch {
		case lost():
			return 0, nvml.ERROR_GPU_IS_LOST
		case d.nvlink == dgxNVLinkNone:
			return 0, nvml.ERROR_NOT_SUPPORTED
		case d.nvlink == dgxNVLinkSwitch:
			return nvml.NVLINK_DEVICE_TYPE_SWITCH, nvml.SUCCESS
		}
		return nvml.NVLINK_DEVICE_TYPE_GPU, nvml.SUCCESS
	}
}

// decorateSample answers the calls of a sample with plausible values of
// an idle A100 (GPU i is i degrees warmer than 30 and draws 60+i W).
func (d *DGX) decorateSample(i int, dev *server.Device, lost func() bool) {
	dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		if lost() {
			return nvml.Utilization{}, nvml.ERROR_GPU_IS_LOST
		}
		return nvml.Utilization{Gpu: 50, Memory: 20}, nvml.SUCCESS
	}
	dev.GetTemperatureFunc = func(sensor nvml.TemperatureSensors) (uint32, nvml.Return) {
		if lost() {
			return 0, nvml.ERROR_GPU_IS_LOST
		}
		if sensor != nvml.TEMPERATURE_GPU {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		return uint32(30 + i), nvml.SUCCESS
	}
	dev.GetPowerUsageFunc = func() (uint32, nvml.Return) {
		if lost() {
			return 0, nvml.ERROR_GPU_IS_LOST
		}
		return uint32(60000 + 1000*i), nvml.SUCCESS
	}
	dev.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) {
		if lost() {
			return 0, nvml.ERROR_GPU_IS_LOST
		}
		return uint64(1_000_000 * (i + 1)), nvml.SUCCESS
	}
	dev.GetClockInfoFunc = func(kind nvml.ClockType) (uint32, nvml.Return) {
		if lost() {
			return 0, nvml.ERROR_GPU_IS_LOST
		}
		if kind != nvml.CLOCK_SM {
			return 0, nvml.ERROR_NOT_SUPPORTED
		}
		return 1410, nvml.SUCCESS
	}
	dev.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
		if lost() {
			return 0, nvml.ERROR_GPU_IS_LOST
		}
		return nvml.ClocksEventReasonGpuIdle, nvml.SUCCESS
	}
	dev.GetPcieReplayCounterFunc = func() (int, nvml.Return) {
		if lost() {
			return 0, nvml.ERROR_GPU_IS_LOST
		}
		return 0, nvml.SUCCESS
	}
	dev.GetTotalEccErrorsFunc = func(kind nvml.MemoryErrorType, counter nvml.EccCounterType) (uint64, nvml.Return) {
		d.mu.Lock()
		defer d.mu.Unlock()
		switch {
		case d.lost[i]:
			return 0, nvml.ERROR_GPU_IS_LOST
		case counter != nvml.VOLATILE_ECC:
			return 0, nvml.ERROR_NOT_SUPPORTED
		case kind == nvml.MEMORY_ERROR_TYPE_UNCORRECTED:
			return d.ecc[i], nvml.SUCCESS
		}
		return 0, nvml.SUCCESS
	}
	dev.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.lost[i] {
			return 0, 0, false, false, nvml.ERROR_GPU_IS_LOST
		}
		unc := 0
		if d.remap[i][0] || d.remap[i][1] {
			unc = 1
		}
		return 0, unc, d.remap[i][0], d.remap[i][1], nvml.SUCCESS
	}
	dev.GetFieldValuesFunc = func(values []nvml.FieldValue) nvml.Return {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.lost[i] {
			return nvml.ERROR_GPU_IS_LOST
		}
		for k := range values {
			v := &values[k]
			if v.FieldId != nvml.FI_DEV_GET_GPU_RECOVERY_ACTION {
				v.NvmlReturn = uint32(nvml.ERROR_NOT_SUPPORTED)
				continue
			}
			v.NvmlReturn = uint32(nvml.SUCCESS)
			v.ValueType = uint32(nvml.VALUE_TYPE_UNSIGNED_INT)
			v.Value = [8]byte{}
			binary.NativeEndian.PutUint32(v.Value[:], d.recovery[i])
		}
		return nvml.SUCCESS
	}
}

// newEventSet answers EventSetCreate: the set's Wait hands out dgxEvent
// answers (events of registered kinds, GPU-lost news), blocking up to its
// timeout while the queue is empty.
func (d *DGX) newEventSet() (nvml.EventSet, nvml.Return) {
	d.mu.Lock()
	d.sets++
	d.mu.Unlock()
	var once sync.Once
	set := &mock.EventSet{}
	set.FreeFunc = func() nvml.Return {
		freed := false
		once.Do(func() { freed = true })
		if !freed {
			panic("gputest: event set freed twice")
		}
		d.mu.Lock()
		d.freed++
		d.mu.Unlock()
		return nvml.SUCCESS
	}
	set.WaitFunc = func(ms uint32) (nvml.EventData, nvml.Return) {
		timer := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer timer.Stop()
		for {
			if q, ok := d.pop(); ok {
				return q.data, q.ret
			}
			select {
			case <-d.wake:
			case <-timer.C:
				return nvml.EventData{}, nvml.ERROR_TIMEOUT
			}
		}
	}
	return set, nvml.SUCCESS
}

// pop takes the first dgxEvent answer an event set receives, dropping
// events of kinds nobody registered for on their GPU.
func (d *DGX) pop() (dgxEvent, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.queue) > 0 {
		q := d.queue[0]
		d.queue = d.queue[1:]
		if q.ret != nvml.SUCCESS || d.registered[q.gpu]&q.data.EventType != 0 {
			return q, true
		}
	}
	return dgxEvent{}, false
}

// String describes the host, for test logs.
func (d *DGX) String() string {
	shape := map[dgxNVLink]string{dgxNVLinkPairs: "NVLink pairs", dgxNVLinkNone: "no NVLink", dgxNVLinkSwitch: "NVSwitch"}[d.nvlink]
	return fmt.Sprintf("emulated DGX A100: %d GPUs, 2 NUMA nodes, %s", DGXGPUs, shape)
}
