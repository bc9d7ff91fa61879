package discovery

import (
	"context"
	"errors"
	"testing"
)

// TestStandalone: without Consul the node is its own scheduler while Run runs: OnLeader gets StandaloneToken at
// once and its context ends with Run; leader writes have nowhere to go.
func TestStandalone(t *testing.T) {
	started := make(chan uint64, 1)
	stopped := make(chan struct{})
	var events []EventKind
	c := NewStandalone("gpu01", Options{
		OnLeader: func(ctx context.Context, token uint64) {
			started <- token
			<-ctx.Done()
			close(stopped)
		},
		OnEvent: func(ev Event) { events = append(events, ev.Kind) },
	})
	if c.Leading(StandaloneToken) {
		t.Error("leading before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	if tok := <-started; tok != StandaloneToken {
		t.Errorf("OnLeader token %d, want %d", tok, StandaloneToken)
	}
	if li := c.Leader(); !li.Self || li.Node != "gpu01" || !li.Standalone || li.Token != StandaloneToken {
		t.Errorf("Leader() = %+v", li)
	}
	if !c.Leading(StandaloneToken) || c.Leading(2) {
		t.Error("Leading: want true for StandaloneToken only")
	}
	if err := c.LeaderWrite(ctx, StandaloneToken, "k", []byte("v")); !errors.Is(err, ErrStandalone) {
		t.Errorf("LeaderWrite: %v, want ErrStandalone", err)
	}
	if h := c.Health(); h.Enabled || !h.OK {
		t.Errorf("Health() = %+v, want disabled and OK", h)
	}
	c.Heartbeat()
	c.SetInstance(Instance{Task: "x"})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	<-stopped
	if c.Leading(StandaloneToken) {
		t.Error("leading after Run returned")
	}
	if err := c.Run(context.Background()); err == nil {
		t.Error("second Run accepted")
	}
	if len(events) != 2 || events[0] != EventLeaderGained || events[1] != EventLeaderLost {
		t.Errorf("events %v, want leader_gained, leader_lost", events)
	}
}
