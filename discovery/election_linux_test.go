package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/open-autoglm/glmd/internal/consultest"
)

// TestElection_OneLeader: of three contenders exactly one leads; all agree who; its OnLeader runs with the
// token the key records; when it stops gracefully another takes over and the first's OnLeader context ends.
func TestElection_OneLeader(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{})
	c := a.Client(t)
	var nodes []*testNode
	for i := range 3 {
		nodes = append(nodes, startNode(t, a, fmt.Sprintf("n%d", i), nil))
	}
	var leader *testNode
	eventually(t, wait, func() bool {
		l := selfLeaders(nodes)
		if len(l) != 1 {
			return false
		}
		leader = l[0]
		li := leader.Leader()
		for _, n := range nodes {
			if o := n.Leader(); o.Node != li.Node || o.Token != li.Token {
				return false
			}
		}
		return true
	}, "exactly one leader, known to all")
	li := leader.Leader()
	_, v := leaderOf(t, c, DefaultKVPrefix)
	if v.Node != li.Node || v.Token != li.Token || li.Token == 0 || !leader.Leading(li.Token) {
		t.Fatalf("leader key %+v, Leader() %+v", v, li)
	}
	eventually(t, wait, func() bool {
		leader.mu.Lock()
		defer leader.mu.Unlock()
		return slices.Equal(leader.tokens, []uint64{li.Token})
	}, "OnLeader called once with token %d", li.Token)
	for _, n := range nodes {
		if n != leader && (n.Leader().Self || n.Leading(li.Token)) {
			t.Errorf("%s also leads", n.cfg.NodeName)
		}
	}
	// Re-registering the node (its meta changes with every GPU allocation) must not disturb its session.
	for free := range 4 {
		leader.SetNodeMeta(map[string]string{"gpu_free": fmt.Sprint(free)})
		eventually(t, wait, func() bool {
			e := catalogService(t, c, "glmd")
			return slices.ContainsFunc(e, func(e *api.ServiceEntry) bool {
				return e.Service.ID == "glmd-"+li.Node && e.Service.Meta["gpu_free"] == fmt.Sprint(free)
			})
		}, "node meta gpu_free=%d in the catalog", free)
	}
	if !leader.Leading(li.Token) || slices.Contains(leader.eventKinds(), EventLeaderLost) {
		t.Fatalf("re-registering the node service cost the leadership: events %v", leader.eventKinds())
	}
	// The role is visible on the node's check, for operators.
	for _, n := range nodes {
		want := "follower; scheduler leader is " + li.Node
		if n == leader {
			want = fmt.Sprintf("token %d", li.Token)
		}
		eventually(t, wait, func() bool {
			chk := agentCheck(t, c, "glmd-"+n.cfg.NodeName+":alive")
			return chk != nil && chk.Status == api.HealthPassing && strings.Contains(chk.Output, want)
		}, "%s's alive check passes and says %q", n.cfg.NodeName, want)
	}

	leader.stop()
	if got := <-leader.workDone; got != li.Token {
		t.Errorf("OnLeader context of token %d ended, want %d", got, li.Token)
	}
	if leader.Leading(li.Token) {
		t.Error("Leading after Run returned")
	}
	rest := slices.DeleteFunc(slices.Clone(nodes), func(n *testNode) bool { return n == leader })
	eventually(t, wait, func() bool {
		l := selfLeaders(rest)
		return len(l) == 1 && l[0].Leader().Token > li.Token
	}, "another node leads with a higher token after a graceful stop")
	if !slices.Contains(leader.eventKinds(), EventLeaderLost) || !slices.Contains(leader.eventKinds(), EventLeaderGained) {
		t.Errorf("old leader's events: %v", leader.eventKinds())
	}
}

// TestElection_LeaderWrite: the leader's writes are fenced by its session; a follower, a stale token and a
// leader whose session was destroyed behind its back are refused.
func TestElection_LeaderWrite(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{})
	c := a.Client(t)
	n0 := startNode(t, a, "n0", nil)
	eventually(t, wait, func() bool { return n0.Leader().Self }, "n0 leads")
	n1 := startNode(t, a, "n1", nil)
	eventually(t, wait, func() bool { return n1.Leader().Node == "n0" }, "n1 sees n0 lead")
	token := n0.Leader().Token
	ctx := context.Background()

	if err := n0.LeaderWrite(ctx, token, "assign/n1", []byte("web")); err != nil {
		t.Fatalf("leader write: %v", err)
	}
	p, _, err := c.KV().Get(DefaultKVPrefix+"assign/n1", nil)
	if err != nil || p == nil || string(p.Value) != "web" {
		t.Fatalf("written key: %v %v", p, err)
	}
	if err := n0.LeaderWrite(ctx, token, "assign/n1", nil); err != nil {
		t.Fatalf("leader delete: %v", err)
	}
	if p, _, _ := c.KV().Get(DefaultKVPrefix+"assign/n1", nil); p != nil {
		t.Error("nil value did not delete the key")
	}
	for name, err := range map[string]error{
		"follower":        n1.LeaderWrite(ctx, token, "x", []byte("y")),
		"stale token":     n0.LeaderWrite(ctx, token-1, "x", []byte("y")),
		"election's keys": n0.LeaderWrite(ctx, token, "leader/scheduler", []byte("y")),
	} {
		if err == nil {
			t.Errorf("%s: write accepted", name)
		}
	}

	// An operator invalidates the session (the UI's "Invalidate Session"): the leader stops at once, and a
	// write that raced with it is refused by Consul.
	session, _ := leaderOf(t, c, DefaultKVPrefix)
	if _, err := c.Session().Destroy(session, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, func() bool { return !n0.Leading(token) }, "n0 stops leading after invalidation")
	if err := n0.LeaderWrite(ctx, token, "x", []byte("y")); !errors.Is(err, ErrNotLeader) {
		t.Errorf("write after loss: %v, want ErrNotLeader", err)
	}
	eventually(t, wait, func() bool {
		l := selfLeaders([]*testNode{n0, n1})
		return len(l) == 1 && l[0].Leader().Token > token
	}, "a new leader with a higher token")
}

// TestElection_StuckMainLoop: a leader whose main loop stops heartbeating loses the role (its check turns
// critical, which invalidates its session) and another node takes over; it contends again once it beats.
func TestElection_StuckMainLoop(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{})
	n0 := startNode(t, a, "n0", nil)
	eventually(t, wait, func() bool { return n0.Leader().Self }, "n0 leads")
	n1 := startNode(t, a, "n1", nil)
	token := n0.Leader().Token
	n0.beating.Store(false)
	eventually(t, wait, func() bool { return n1.Leader().Self }, "n1 takes over from the stuck n0")
	if n0.Leading(token) || n0.Leader().Self {
		t.Error("stuck n0 still leads")
	}
	n0.beating.Store(true)
	n1.stop()
	eventually(t, wait, func() bool { return n0.Leader().Self && n0.Leader().Token > n1.Leader().Token }, "n0 leads again once it beats")
}

// TestElection_TokensSurviveWipedConsul: when Consul loses its state (a -dev agent restarted), raft indexes
// start low again; the fencing token must still grow.
func TestElection_TokensSurviveWipedConsul(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{})
	c := a.Client(t)
	// Push the raft index up first, so that the wiped agent's indexes are surely lower than the first token.
	for i := range 100 {
		if _, err := c.KV().Put(&api.KVPair{Key: fmt.Sprintf("filler/%d", i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	n0 := startNode(t, a, "n0", nil)
	n1 := startNode(t, a, "n1", nil)
	eventually(t, wait, func() bool { return len(selfLeaders([]*testNode{n0, n1})) == 1 }, "a leader")
	first := selfLeaders([]*testNode{n0, n1})[0].Leader().Token
	eventually(t, wait, func() bool { return n0.Leader().Token == first && n1.Leader().Token == first },
		"both know token %d", first)

	a.Stop(t)
	a.Start(t)
	eventually(t, 2*wait, func() bool {
		l := selfLeaders([]*testNode{n0, n1})
		return len(l) == 1 && l[0].Leader().Token != first && !l[0].Leader().Suspended
	}, "a leader after consul lost its state")
	second := selfLeaders([]*testNode{n0, n1})[0].Leader().Token
	if second <= first {
		t.Errorf("token went backwards after consul was wiped: %d then %d", first, second)
	}
	if second>>tokenIndexBits == 0 {
		t.Errorf("token %d: epoch not raised", second)
	}
}

// TestElection_SuspendResume: while Consul does not answer, the leader's lease runs out: it stops acting
// (OnLeader's context ends, Leading says no) but keeps the lock; when a consistent read confirms the lock, it
// resumes with the same token. The check TTL is long so that the short freeze cannot invalidate the session.
func TestElection_SuspendResume(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{})
	n := startNode(t, a, "n0", func(c *Config) { c.CheckTTL = 20 * time.Second })
	eventually(t, wait, func() bool { return n.Leader().Self }, "n0 leads")
	token := n.Leader().Token

	a.Freeze(t)
	eventually(t, wait, func() bool { return n.Leader().Suspended }, "leader suspended while consul is frozen")
	if n.Leading(token) {
		t.Error("Leading while suspended")
	}
	if got := <-n.workDone; got != token {
		t.Errorf("OnLeader context ended for token %d, want %d", got, token)
	}
	a.Thaw(t)
	eventually(t, wait, func() bool { return n.Leading(token) && !n.Leader().Suspended }, "leader resumed after thaw")
	eventually(t, wait, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		// More than twice if a slow machine lets the lease run out again after the thaw.
		return len(n.tokens) >= 2 && !slices.ContainsFunc(n.tokens, func(t uint64) bool { return t != token })
	}, "OnLeader called again with the same token")
	kinds := n.eventKinds()
	if i, j := slices.Index(kinds, EventLeaderSuspended), slices.Index(kinds, EventLeaderResumed); i < 0 || j < i {
		t.Errorf("events %v: want leader_suspended then leader_resumed", kinds)
	}
	if slices.Contains(kinds, EventLeaderLost) {
		t.Errorf("events %v: the lock was never lost", kinds)
	}
}
