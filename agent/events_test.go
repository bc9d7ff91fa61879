package agent

import (
	"testing"

	"github.com/open-autoglm/glmd/internal/api"
)

func TestEventBus_BacklogAndFollow(t *testing.T) {
	b := newEventBus()
	for i := range eventBacklog + 10 {
		b.publish(api.Event{Type: "agent", Instance: i})
	}
	backlog, c, cancel := b.subscribe(true)
	if len(backlog) != eventBacklog || backlog[0].Instance != 10 || backlog[0].Seq != 11 {
		t.Fatalf("backlog %d events, first %+v", len(backlog), backlog[0])
	}
	b.publish(api.Event{Type: "agent", Message: "new"})
	if e := <-c; e.Message != "new" || e.Seq != eventBacklog+11 {
		t.Fatalf("followed %+v", e)
	}
	cancel()
	cancel()
	if _, ok := <-c; ok {
		t.Fatal("channel open after cancel")
	}
	// A follower that never reads does not block publishing.
	_, _, cancel2 := b.subscribe(true)
	defer cancel2()
	for range 1000 {
		b.publish(api.Event{Type: "agent"})
	}
}
