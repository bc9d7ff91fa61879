// Package gputest holds emulated GPU hosts for tests: Fake, a cgo-free
// gpu.Inventory, and (with cgo) DGX, a decorated go-nvml mock.
package gputest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/open-autoglm/glmd/internal/gpu"
)

// The emulated two-socket host (notes section 2) as the Fake shows it.
const (
	FakeGPUs   = 8
	FakeModel  = "NVIDIA H100 80GB HBM3"
	FakeMemory = int64(80) << 30 // bytes per GPU
	// FakeNVLinkLanes join the two GPUs of each PCIe switch pair.
	FakeNVLinkLanes = 4
)

var (
	fakeBusIDs = [FakeGPUs]string{
		"00000000:18:00.0", "00000000:2A:00.0", "00000000:3A:00.0", "00000000:5D:00.0",
		"00000000:9A:00.0", "00000000:AB:00.0", "00000000:BA:00.0", "00000000:DB:00.0",
	}
	fakeNodeCPUs = [2]string{"0-55,112-167", "56-111,168-223"}
)

// FakeOption changes the Fake's host.
type FakeOption func(*Fake)

// FakeNoNVLink removes the NVLink lanes: pairs are joined by their PCIe
// switch alone.
func FakeNoNVLink() FakeOption { return func(f *Fake) { f.nvlink = false } }

// FakeMIG turns MIG mode on for the GPUs.
func FakeMIG(gpus ...int) FakeOption {
	return func(f *Fake) {
		for _, i := range gpus {
			f.devs[i].MIG = true
		}
	}
}

// Fake is a cgo-free gpu.Inventory of the emulated two-socket host: 8 x
// "NVIDIA H100 80GB HBM3" (80 GiB); GPUs 0-3 on NUMA node 0 (CPUs
// 0-55,112-167), 4-7 on node 1 (56-111,168-223); PCIe switch pairs {0,1}
// {2,3} {4,5} {6,7}, each pair joined by 4 NVLink lanes unless
// FakeNoNVLink. Tests change it while it runs: memory, processes, samples,
// driver events, lost GPUs, a broken watch, hanging calls.
//
// Create it inside a synctest bubble when the code under test runs in one:
// its channels belong to the bubble that makes them.
type Fake struct {
	nvlink bool
	devs   []gpu.Device

	mu        sync.Mutex // guards the fields below
	samples   []gpu.Sample
	procs     [][]gpu.Process
	lost      []bool
	sampleErr error
	hang      bool
	hanging   int // calls blocked by Hang now
	watchErr  error
	watching  int
	watches   int
	events    []gpu.XIDEvent
	changed   chan struct{} // closed and replaced on every change
	closed    bool
}

var _ gpu.Inventory = (*Fake)(nil)

// NewFake returns the emulated host, idle: no memory used, no processes,
// nothing queued.
func NewFake(opts ...FakeOption) *Fake {
	f := &Fake{nvlink: true, changed: make(chan struct{})}
	for i := range FakeGPUs {
		f.devs = append(f.devs, gpu.Device{
			Index:    i,
			UUID:     fakeUUID(i),
			Name:     FakeModel,
			Memory:   FakeMemory,
			PCIBusID: fakeBusIDs[i],
			NUMANode: i / 4,
			Minor:    i,
			CPUs:     fakeNodeCPUs[i/4],
		})
		f.samples = append(f.samples, gpu.Sample{
			UUID: fakeUUID(i), Utilization: 0, MemoryUtil: 0, Temperature: 35, Power: 70, Energy: 1000,
		})
	}
	f.procs = make([][]gpu.Process, FakeGPUs)
	f.lost = make([]bool, FakeGPUs)
	for _, o := range opts {
		o(f)
	}
	return f
}

// fakeUUID is stable, so failures are readable; real UUIDs are random.
func fakeUUID(i int) string { return fmt.Sprintf("GPU-fa4e0000-0000-4000-8000-%012d", i) }

// UUID returns the UUID of GPU i.
func (f *Fake) UUID(i int) string { return f.devs[i].UUID }

// Device returns GPU i as Devices lists it.
func (f *Fake) Device(i int) gpu.Device { return f.devs[i] }

// SetUsed sets the memory in use on GPU i.
func (f *Fake) SetUsed(i int, bytes int64) {
	f.change(func() { f.samples[i].MemoryUsed = bytes })
}

// SetProcesses sets the compute processes on GPU i.
func (f *Fake) SetProcesses(i int, procs ...gpu.Process) {
	f.change(func() { f.procs[i] = append([]gpu.Process(nil), procs...) })
}

// SetSample edits GPU i's next samples (utilization, temperature, ...).
func (f *Fake) SetSample(i int, edit func(*gpu.Sample)) {
	f.change(func() { edit(&f.samples[i]) })
}

// SetECC sets GPU i's volatile uncorrected ECC count.
func (f *Fake) SetECC(i int, uncorrected int64) {
	f.change(func() { f.samples[i].ECCUncorrected = uncorrected })
}

// SetRemap sets GPU i's row remapping flags.
func (f *Fake) SetRemap(i int, pending, failed bool) {
	f.change(func() { f.samples[i].RemapPending, f.samples[i].RemapFailed = pending, failed })
}

// SetSampleError makes Sample fail with err (nil: succeed again).
func (f *Fake) SetSampleError(err error) { f.change(func() { f.sampleErr = err }) }

// PushXID queues an XID on GPU i for Watch; gpu -1 is an XID the driver
// could not place (UUID "").
func (f *Fake) PushXID(i, xid int) {
	ev := gpu.XIDEvent{Time: time.Now(), XID: xid, Kind: gpu.EventXID}
	if i >= 0 {
		ev.UUID = f.devs[i].UUID
	}
	f.Push(ev)
}

// Push queues any driver event for Watch.
func (f *Fake) Push(ev gpu.XIDEvent) { f.change(func() { f.events = append(f.events, ev) }) }

// Lose makes GPU i fall off the bus: Sample leaves it out and reports it
// lost (as the NVML inventory does, with ERROR_GPU_IS_LOST), Processes
// fails, and Watch sends EventLost for it.
func (f *Fake) Lose(i int) {
	f.change(func() {
		f.lost[i] = true
		f.events = append(f.events, gpu.XIDEvent{Time: time.Now(), UUID: f.devs[i].UUID, Kind: gpu.EventLost})
	})
}

// FailWatch makes the running Watch and every later one return err at
// once; nil lets Watch work again.
func (f *Fake) FailWatch(err error) { f.change(func() { f.watchErr = err }) }

// Hang makes every call but Watch block until its context ends (on), as
// NVML may on a lost GPU.
func (f *Fake) Hang(on bool) { f.change(func() { f.hang = on }) }

// Hanging returns how many calls Hang blocks now.
func (f *Fake) Hanging() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hanging
}

// Watches returns how many times Watch was called, and how many run now.
func (f *Fake) Watches() (calls, running int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watches, f.watching
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *Fake) change(edit func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	edit()
	close(f.changed)
	f.changed = make(chan struct{})
}

// block waits for ctx when Hang is on; it reports whether it did.
func (f *Fake) block(ctx context.Context) error {
	f.mu.Lock()
	if !f.hang {
		f.mu.Unlock()
		return nil
	}
	f.hanging++
	f.mu.Unlock()
	<-ctx.Done()
	f.mu.Lock()
	f.hanging--
	f.mu.Unlock()
	return ctx.Err()
}

// Devices lists the 8 GPUs and the links between every pair.
func (f *Fake) Devices(ctx context.Context) ([]gpu.Device, map[gpu.Pair]gpu.Link, error) {
	if err := f.block(ctx); err != nil {
		return nil, nil, err
	}
	links := map[gpu.Pair]gpu.Link{}
	for i := range f.devs {
		for j := i + 1; j < len(f.devs); j++ {
			l := gpu.Link{Level: gpu.LevelSystem}
			switch {
			case i/2 == j/2:
				l.Level = gpu.LevelSingle
				if f.nvlink {
					l.NVLink = FakeNVLinkLanes
				}
			case i/4 == j/4:
				l.Level = gpu.LevelNode
			}
			links[gpu.PairOf(f.devs[i].UUID, f.devs[j].UUID)] = l
		}
	}
	return append([]gpu.Device(nil), f.devs...), links, nil
}

// Sample returns every GPU that is not lost; lost ones come back as
// joined ERROR_GPU_IS_LOST errors, as from the NVML inventory.
func (f *Fake) Sample(ctx context.Context) ([]gpu.Sample, error) {
	if err := f.block(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sampleErr != nil {
		return nil, f.sampleErr
	}
	var out []gpu.Sample
	var errs []error
	for i, s := range f.samples {
		if f.lost[i] {
			errs = append(errs, lostError(f.devs[i].UUID, "GetMemoryInfo"))
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// lostError is what NVML answers on a lost GPU. 15 is
// NVML_ERROR_GPU_IS_LOST.
func lostError(uuid, call string) error {
	return &gpu.NVMLError{Call: call, UUID: uuid, Code: 15, Name: "ERROR_GPU_IS_LOST", Text: "GPU is lost"}
}

// Processes returns what SetProcesses set.
func (f *Fake) Processes(ctx context.Context, uuid string) ([]gpu.Process, error) {
	if err := f.block(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, d := range f.devs {
		if d.UUID == uuid {
			if f.lost[i] {
				return nil, lostError(uuid, "GetComputeRunningProcesses")
			}
			return append([]gpu.Process(nil), f.procs[i]...), nil
		}
	}
	return nil, fmt.Errorf("fake: no GPU %s", uuid)
}

// Watch sends the queued events until ctx ends (nil) or FailWatch (its
// error).
func (f *Fake) Watch(ctx context.Context, out chan<- gpu.XIDEvent) error {
	f.mu.Lock()
	f.watches++
	f.watching++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.watching--
		f.mu.Unlock()
	}()
	for {
		f.mu.Lock()
		if f.watchErr != nil {
			err := f.watchErr
			f.mu.Unlock()
			return err
		}
		if len(f.events) > 0 {
			ev := f.events[0]
			f.events = f.events[1:]
			f.mu.Unlock()
			select {
			case out <- ev:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// Close records the call.
func (f *Fake) Close() error {
	f.change(func() { f.closed = true })
	return nil
}
