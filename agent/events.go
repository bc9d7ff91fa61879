package agent

import (
	"sync"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
)

// eventBacklog is how many past events `glmctl events` shows.
const eventBacklog = 1000

// eventBus keeps the recent events and hands new ones to followers. Publish
// never blocks: a follower that does not keep up loses events (its channel
// is bounded), the agent does not wait for it.
type eventBus struct {
	mu   sync.Mutex // guards everything below
	seq  uint64
	ring []api.Event // the last eventBacklog events, oldest first
	subs map[chan api.Event]struct{}
}

func newEventBus() *eventBus {
	return &eventBus{subs: make(map[chan api.Event]struct{})}
}

func (b *eventBus) publish(e api.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Seq = b.seq
	if len(b.ring) == eventBacklog {
		copy(b.ring, b.ring[1:])
		b.ring = b.ring[:eventBacklog-1]
	}
	b.ring = append(b.ring, e)
	for c := range b.subs {
		select {
		case c <- e:
		default:
		}
	}
}

// subscribe returns the backlog and, when follow, a channel of new events
// that is closed by the returned cancel function.
func (b *eventBus) subscribe(follow bool) ([]api.Event, chan api.Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	backlog := append([]api.Event(nil), b.ring...)
	if !follow {
		return backlog, nil, func() {}
	}
	c := make(chan api.Event, 256)
	b.subs[c] = struct{}{}
	var once sync.Once
	return backlog, c, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, c)
			b.mu.Unlock()
			close(c)
		})
	}
}
