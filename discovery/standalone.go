package discovery

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// StandaloneToken is the fencing token of a node without Consul: it is its own scheduler, always with this token.
const StandaloneToken uint64 = 1

// standalone is the Client of a node without Consul ([consul] enabled = false, the default): nothing is
// registered and the node is always its own scheduler.
type standalone struct {
	node     string
	onLeader func(context.Context, uint64)
	emit     func(Event)
	log      *slog.Logger
	ran      atomic.Bool

	// mu guards the fields below it.
	mu      sync.Mutex
	running bool
	since   time.Time
}

// NewStandalone returns the Client for a node without Consul: Run calls OnLeader with StandaloneToken at once
// and cancels it when Run's ctx ends; the registration methods do nothing; LeaderWrite returns ErrStandalone.
func NewStandalone(node string, opts Options) Client {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &standalone{node: node, onLeader: opts.OnLeader, emit: opts.OnEvent, log: log.With("component", "discovery")}
	if s.emit == nil {
		s.emit = func(Event) {}
	}
	return s
}

func (s *standalone) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errRunTwice
	}
	now := time.Now()
	s.mu.Lock()
	s.running, s.since = true, now
	s.mu.Unlock()
	s.log.Info("consul disabled: this node is its own scheduler")
	s.emit(Event{Kind: EventLeaderGained, Time: now, Leader: s.node, Token: StandaloneToken})
	var wg sync.WaitGroup
	if s.onLeader != nil {
		wg.Go(func() { s.onLeader(ctx, StandaloneToken) })
	}
	<-ctx.Done()
	s.mu.Lock()
	s.running = false
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(workStopTimeout):
		s.log.Warn("OnLeader did not return after its context ended", "timeout", workStopTimeout)
	}
	s.emit(Event{Kind: EventLeaderLost, Time: time.Now(), Token: StandaloneToken, Reason: "glmd stopping"})
	return nil
}

func (s *standalone) Heartbeat()                            {}
func (s *standalone) HeartbeatInterval() time.Duration      { return DefaultCheckTTL / 4 }
func (s *standalone) SetNodeMeta(map[string]string)         {}
func (s *standalone) SetInstance(Instance)                  {}
func (s *standalone) RemoveInstance(task string, index int) {}
func (s *standalone) Sync([]Instance)                       {}
func (s *standalone) Health() Health                        { return Health{Enabled: false, OK: true} }

func (s *standalone) Leader() LeaderInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	li := LeaderInfo{Node: s.node, Self: true, Token: StandaloneToken, Since: s.since, Standalone: true}
	if !s.running {
		li = LeaderInfo{Standalone: true}
	}
	return li
}

func (s *standalone) Leading(token uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running && token == StandaloneToken
}

func (s *standalone) LeaderWrite(context.Context, uint64, string, []byte) error { return ErrStandalone }
