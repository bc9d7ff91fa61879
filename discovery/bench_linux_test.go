package discovery

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/consultest"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// BenchmarkFailover measures hand-overs of the scheduler role between contender processes with the default
// CheckTTL and LockDelay, one per iteration (run with -benchtime 5x or more):
//
//   - graceful: the leader gets SIGTERM and releases the lock;
//   - kill: the leader is SIGKILLed; its check turns critical after at most CheckTTL, then the lock delay runs;
//   - freeze: the leader is SIGSTOPped (a hung process); like kill, then SIGCONT: it must not act again;
//   - partition: the leader's path to Consul is cut (a blackholing proxy); it must stop acting when its lease
//     runs out, before anyone else may start.
//
// Metrics: ms-*-vacant is from the fault to the new leader's first action (actions are 20 ms apart);
// ms-*-gap from the old leader's last action to the new one's first (never negative: that would be two leaders);
// for partition, ms-*-oldstops from the cut to the old leader's last action.
func BenchmarkFailover(b *testing.B) {
	for _, mode := range []string{"graceful", "kill", "freeze", "partition"} {
		b.Run(mode, func(b *testing.B) { benchFailover(b, mode) })
	}
}

func benchFailover(b *testing.B, mode string) {
	a := consultest.Start(b, consultest.Options{})
	dir := b.TempDir()
	var live, all []*contender
	add := func() {
		c := startContender(b, a, dir, fmt.Sprintf("c%d", len(all)), DefaultCheckTTL, DefaultLockDelay, mode == "partition")
		live, all = append(live, c), append(all, c)
	}
	add()
	add()
	var vacant, gaps, oldStops []time.Duration
	b.ResetTimer()
	for range b.N {
		waitSpan(b, live, 2*wait, 10, func(span) bool { return true }, "a leader acts")
		leader := lastSpan(b, live)
		var c *contender
		for _, x := range live {
			if x.node == leader.node {
				c = x
			}
		}
		start := time.Now()
		switch mode {
		case "graceful":
			c.stop(b)
		case "kill":
			c.killed = true
			c.signal(b, syscall.SIGKILL)
		case "freeze":
			c.signal(b, syscall.SIGSTOP)
		case "partition":
			c.proxy.Cut()
		}
		next := waitSpan(b, live, 2*wait, 1, func(s span) bool { return s.token > leader.token }, "a new leader acts")
		old := spanOf(readActions(b, all), leader.token)
		vacant = append(vacant, next.first.Sub(start))
		gaps = append(gaps, next.first.Sub(old.last))
		oldStops = append(oldStops, old.last.Sub(start))
		switch mode {
		case "partition":
			c.proxy.Heal()
		case "freeze":
			c.signal(b, syscall.SIGCONT)
		}
		c.stop(b)
		live = slices.DeleteFunc(live, func(x *contender) bool { return x == c })
		add()
		waitSpan(b, live, 2*wait, 10, func(s span) bool { return s.token == next.token }, "the new leader keeps acting")
	}
	b.StopTimer()
	for _, c := range live {
		c.stop(b)
	}
	checkNoOverlap(b, readActions(b, all))
	testenv.ReportQuantiles(b, vacant, "vacant")
	testenv.ReportQuantiles(b, gaps, "gap")
	if mode == "partition" {
		testenv.ReportQuantiles(b, oldStops, "oldstops")
	}
}

// lastSpan is the most recent leadership among the contenders' actions.
func lastSpan(b *testing.B, cs []*contender) span {
	ss := spans(readActions(b, cs))
	if len(ss) == 0 {
		b.Fatal("no leadership yet")
	}
	return slices.MaxFunc(ss, func(x, y span) int { return x.last.Compare(y.last) })
}

func spanOf(actions []action, token uint64) span {
	for _, s := range spans(actions) {
		if s.token == token {
			return s
		}
	}
	return span{}
}
