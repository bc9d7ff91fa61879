package crontest

import (
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestClock(t *testing.T) {
	start := time.Date(2024, 3, 10, 1, 59, 0, 0, time.UTC)
	c := NewClock(start)
	a := c.NewTimer(2 * time.Minute)
	b := c.NewTimer(time.Minute)
	stopped := c.NewTimer(time.Minute)
	select {
	case <-c.TimerAdded():
	default:
		t.Error("TimerAdded did not signal")
	}
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop of a pending timer, then again")
	}
	if d, ok := c.NextDeadline(); !ok || !d.Equal(start.Add(time.Minute)) || c.Timers() != 2 {
		t.Errorf("NextDeadline %s %v, %d timers", d, ok, c.Timers())
	}
	c.Advance(90 * time.Second)
	select {
	case got := <-b.C():
		if !got.Equal(start.Add(90 * time.Second)) {
			t.Errorf("b fired with %s", got)
		}
	default:
		t.Fatal("b did not fire")
	}
	select {
	case <-a.C():
		t.Fatal("a fired early")
	case <-stopped.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	c.Set(start) // back in time: nothing fires
	if c.Timers() != 1 || !c.Now().Equal(start) {
		t.Errorf("after Set back: %d timers, now %s", c.Timers(), c.Now())
	}
	c.Set(start.Add(time.Hour))
	<-a.C()
	if a.Stop() {
		t.Error("Stop of a fired timer reported pending")
	}
	now := c.NewTimer(0)
	<-now.C()
	if _, ok := c.NextDeadline(); ok {
		t.Error("deadlines left")
	}
}
