package discovery

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/open-autoglm/glmd/internal/consultest"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// testNode is one in-process glmd node: a Client, the main loop's heartbeat, and what its hooks saw.
type testNode struct {
	*consulClient
	cancel   context.CancelFunc
	done     chan struct{}
	beating  atomic.Bool // the "main loop" heartbeats while true
	mu       sync.Mutex
	events   []Event
	tokens   []uint64 // OnLeader calls
	workDone chan uint64
}

// startNode runs a Client for node against the agent, with its heartbeat loop; the test's cleanup stops it.
func startNode(t *testing.T, a *consultest.Agent, node string, mod func(*Config)) *testNode {
	t.Helper()
	cfg := Config{Address: a.Address(), NodeName: node, Version: "test", Labels: map[string]string{"rack": "r1"}}
	if mod != nil {
		mod(&cfg)
	}
	n := &testNode{done: make(chan struct{}), workDone: make(chan uint64, 100)}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", node)
	c, err := New(cfg, Options{
		Logger: log,
		OnLeader: func(ctx context.Context, token uint64) {
			n.mu.Lock()
			n.tokens = append(n.tokens, token)
			n.mu.Unlock()
			<-ctx.Done()
			n.workDone <- token
		},
		OnEvent: func(ev Event) {
			n.mu.Lock()
			n.events = append(n.events, ev)
			n.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.consulClient = c.(*consulClient)
	n.beating.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(n.HeartbeatInterval())
		defer tick.Stop()
		for {
			if n.beating.Load() {
				n.Heartbeat()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	go func() {
		defer close(n.done)
		if err := n.Run(ctx); err != nil {
			t.Errorf("Run(%s): %v", node, err)
		}
		wg.Wait()
	}()
	t.Cleanup(n.stop)
	return n
}

// stop ends Run and waits for it (graceful shutdown).
func (n *testNode) stop() {
	n.cancel()
	<-n.done
}

func (n *testNode) eventKinds() []EventKind {
	n.mu.Lock()
	defer n.mu.Unlock()
	var kinds []EventKind
	for _, ev := range n.events {
		kinds = append(kinds, ev.Kind)
	}
	return kinds
}

// testWriter sends logs to t.Log, so they show with the failing test only.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a log line after the test ended
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// catalogService returns the catalog's health entries of service name (passing or not).
func catalogService(t *testing.T, c *api.Client, name string) []*api.ServiceEntry {
	t.Helper()
	entries, _, err := c.Health().Service(name, "", false, nil)
	if err != nil {
		t.Fatalf("health of %s: %v", name, err)
	}
	return entries
}

// agentCheck returns the agent's view of a check (its output is current; the catalog's lags for output-only
// changes, see check_update_interval).
func agentCheck(t *testing.T, c *api.Client, id string) *api.AgentCheck {
	t.Helper()
	checks, err := c.Agent().Checks()
	if err != nil {
		t.Fatalf("agent checks: %v", err)
	}
	return checks[id]
}

// leaderOf reads the leader key: the holding session and the record.
func leaderOf(t *testing.T, c *api.Client, prefix string) (session string, v leaderValue) {
	t.Helper()
	p, _, err := c.KV().Get(prefix+"leader/"+Role, nil)
	if err != nil {
		t.Fatalf("read leader key: %v", err)
	}
	if p == nil || p.Session == "" {
		return "", leaderValue{}
	}
	v, _ = decodeLeaderValue(p.Value)
	return p.Session, v
}

// selfLeaders returns the nodes that think they lead.
func selfLeaders(nodes []*testNode) []*testNode {
	var l []*testNode
	for _, n := range nodes {
		if n.Leader().Self {
			l = append(l, n)
		}
	}
	return l
}

func eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	testenv.Eventually(t, timeout, cond, format, args...)
}
