//go:build linux && cgo

package gpu

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Watch registers for XID and double-bit ECC events on every GPU that
// supports them and sends each one to events until ctx ends (nil) or the
// inventory closes. A GPU that is lost, at registration or in a wait, is
// sent once as EventLost. It returns ErrNotSupported when no GPU has
// events; any other error means the event set broke: call Watch again
// after a pause.
func (inv *nvmlInventory) Watch(ctx context.Context, events chan<- XIDEvent) error {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	if inv.closed {
		return errClosed
	}
	handles, err := inv.cached(ctx)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	set, ret := inv.lib.EventSetCreate()
	if ret != nvml.SUCCESS {
		return fmt.Errorf("watch: %w", inv.fail("EventSetCreate", "", ret))
	}
	defer func() {
		if ret := set.Free(); ret != nvml.SUCCESS {
			inv.log.Warn("gpu watch: free event set", "err", inv.fail("EventSetFree", "", ret))
		}
	}()
	w := &watch{inv: inv, ctx: ctx, events: events, handles: handles, lost: make(map[string]bool)}
	registered := 0
	for _, h := range handles {
		ok, err := w.register(h, set)
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		if ok {
			registered++
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	if registered == 0 {
		return fmt.Errorf("watch: no GPU reports XID events: %w", ErrNotSupported)
	}
	timeout := uint32(min(inv.wait.Milliseconds(), math.MaxUint32))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-inv.done:
			return fmt.Errorf("watch: %w", errClosed)
		default:
		}
		data, ret := set.Wait(timeout)
		switch ret {
		case nvml.ERROR_TIMEOUT:
		case nvml.SUCCESS:
			if ev, ok := w.event(data); ok && !w.send(ev) {
				return w.stopped()
			}
		case nvml.ERROR_GPU_IS_LOST:
			inv.fail("EventSetWait", "", ret)
			if !w.sendLost(w.uuidOf(data.Device)) {
				return w.stopped()
			}
			// The driver may answer every later wait at once with the same
			// news: pace the loop instead of spinning.
			if !w.pause() {
				return w.stopped()
			}
		default:
			return fmt.Errorf("watch: %w", inv.fail("EventSetWait", "", ret))
		}
	}
}

// watch is the state of one Watch call.
type watch struct {
	inv     *nvmlInventory
	ctx     context.Context
	events  chan<- XIDEvent
	handles []gpuHandle
	lost    map[string]bool // UUIDs already sent as EventLost
}

// register asks for the watched events of h in set: false when the GPU
// has none of them (or is lost, which it reports).
func (w *watch) register(h gpuHandle, set nvml.EventSet) (bool, error) {
	supported, ret := h.dev.GetSupportedEventTypes()
	if ret == nvml.SUCCESS {
		mask := supported & watchedEvents
		if mask == 0 {
			w.inv.log.Info("gpu watch: the GPU reports no XID events", "uuid", h.uuid)
			return false, nil
		}
		if ret = h.dev.RegisterEvents(mask, set); ret == nvml.SUCCESS {
			return true, nil
		}
		return w.registerFailed("RegisterEvents", h, ret)
	}
	return w.registerFailed("GetSupportedEventTypes", h, ret)
}

func (w *watch) registerFailed(call string, h gpuHandle, ret nvml.Return) (bool, error) {
	switch ret {
	case nvml.ERROR_NOT_SUPPORTED:
		w.inv.log.Info("gpu watch: the GPU reports no events", "uuid", h.uuid)
		return false, nil
	case nvml.ERROR_GPU_IS_LOST:
		w.inv.fail(call, h.uuid, ret)
		w.sendLost(h.uuid)
		return false, nil
	}
	return false, w.inv.fail(call, h.uuid, ret)
}

// event turns a driver event into an XIDEvent; false for kinds glmd does
// not act on.
func (w *watch) event(data nvml.EventData) (XIDEvent, bool) {
	ev := XIDEvent{Time: time.Now(), UUID: w.uuidOf(data.Device)}
	switch {
	case data.EventType&nvml.EventTypeXidCriticalError != 0:
		ev.Kind, ev.XID = EventXID, int(data.EventData)
	case data.EventType&nvml.EventTypeDoubleBitEccError != 0:
		ev.Kind = EventDoubleBit
	default:
		return XIDEvent{}, false
	}
	return ev, true
}

// uuidOf names the GPU of an event by its handle; "" when the driver did
// not say (then every GPU is suspect).
func (w *watch) uuidOf(dev nvml.Device) string {
	if dev == nil {
		return ""
	}
	for _, h := range w.handles {
		if h.dev == dev {
			return h.uuid
		}
	}
	return ""
}

// send delivers ev; false when ctx ended or the inventory closed first.
func (w *watch) send(ev XIDEvent) bool {
	select {
	case w.events <- ev:
		return true
	case <-w.ctx.Done():
		return false
	case <-w.inv.done:
		return false
	}
}

// stopped is what Watch returns once send or pause said stop: nil when
// ctx ended, errClosed when Close stopped it.
func (w *watch) stopped() error {
	if w.ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("watch: %w", errClosed)
}

// sendLost sends EventLost for uuid once per Watch; false as send.
func (w *watch) sendLost(uuid string) bool {
	if w.lost[uuid] {
		return true
	}
	w.lost[uuid] = true
	return w.send(XIDEvent{Time: time.Now(), UUID: uuid, Kind: EventLost})
}

// pause waits one wait timeout; false when ctx ended or the inventory
// closed meanwhile.
func (w *watch) pause() bool {
	t := time.NewTimer(w.inv.wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.ctx.Done():
		return false
	case <-w.inv.done:
		return false
	}
}
