// Package discoverytest provides Fake, a discovery.Client for tests of the agent: it records what the agent
// registers and lets the test decide who leads.
package discoverytest

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/open-autoglm/glmd/discovery"
)

// Fake is a discovery.Client that talks to nobody. Setters record; Elect and Depose play the election and run
// Options.OnLeader like the real Client does. Safe for concurrent use.
type Fake struct {
	node string
	opts discovery.Options

	// mu guards the fields below it.
	mu         sync.Mutex
	instances  map[instanceKey]discovery.Instance
	nodeMeta   map[string]string
	heartbeats int
	health     discovery.Health
	leader     discovery.LeaderInfo
	writes     map[string][]byte
	runCtx     context.Context
	cancelWork context.CancelFunc
	work       sync.WaitGroup
	running    chan struct{} // closed when Run starts
}

type instanceKey struct {
	task  string
	index int
}

var _ discovery.Client = (*Fake)(nil)

// New returns a Fake for node; its Health is enabled and OK, and nobody leads until Elect.
func New(node string, opts discovery.Options) *Fake {
	return &Fake{
		node:      node,
		opts:      opts,
		instances: map[instanceKey]discovery.Instance{},
		writes:    map[string][]byte{},
		health:    discovery.Health{Enabled: true, OK: true, Services: 1},
		running:   make(chan struct{}),
	}
}

// Run blocks until ctx ends, then ends any leadership (waiting for OnLeader) and returns nil.
func (f *Fake) Run(ctx context.Context) error {
	f.mu.Lock()
	f.runCtx = ctx
	close(f.running)
	f.mu.Unlock()
	<-ctx.Done()
	f.Depose()
	f.work.Wait()
	return nil
}

// Running is closed once Run has started; Elect before that fails the leadership at once.
func (f *Fake) Running() <-chan struct{} { return f.running }

// Heartbeat counts the call.
func (f *Fake) Heartbeat() {
	f.mu.Lock()
	f.heartbeats++
	f.mu.Unlock()
}

// HeartbeatInterval is the real default, CheckTTL/4.
func (f *Fake) HeartbeatInterval() time.Duration { return discovery.DefaultCheckTTL / 4 }

// SetNodeMeta records meta.
func (f *Fake) SetNodeMeta(meta map[string]string) {
	f.mu.Lock()
	f.nodeMeta = maps.Clone(meta)
	f.mu.Unlock()
}

// SetInstance records in; like the real Client, an instance in state stopped, exited or failed is dropped.
func (f *Fake) SetInstance(in discovery.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(in)
}

func (f *Fake) setLocked(in discovery.Instance) {
	k := instanceKey{in.Task, in.Index}
	switch in.State {
	case "stopped", "exited", "failed":
		delete(f.instances, k)
	default:
		f.instances[k] = in
	}
}

// RemoveInstance drops one instance.
func (f *Fake) RemoveInstance(task string, index int) {
	f.mu.Lock()
	delete(f.instances, instanceKey{task, index})
	f.mu.Unlock()
}

// Sync replaces all instances.
func (f *Fake) Sync(instances []discovery.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.instances)
	for _, in := range instances {
		f.setLocked(in)
	}
}

// Health returns what SetHealth set (enabled and OK by default).
func (f *Fake) Health() discovery.Health {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.health
	h.Services = len(f.instances) + 1
	return h
}

// Leader returns the leadership Elect or SetLeader set.
func (f *Fake) Leader() discovery.LeaderInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

// Leading reports whether Elect made this node leader with token.
func (f *Fake) Leading(token uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader.Self && !f.leader.Suspended && token != 0 && f.leader.Token == token
}

// LeaderWrite records the write while Leading(token), else returns discovery.ErrNotLeader.
func (f *Fake) LeaderWrite(_ context.Context, token uint64, key string, value []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !(f.leader.Self && !f.leader.Suspended && token != 0 && f.leader.Token == token) {
		return discovery.ErrNotLeader
	}
	if value == nil {
		delete(f.writes, key)
	} else {
		f.writes[key] = slices.Clone(value)
	}
	return nil
}

// Elect makes this node the leader with token: OnLeader runs with a context that Depose (or the end of Run)
// cancels, and OnEvent sees leader_gained. Call it after Run started.
func (f *Fake) Elect(token uint64) {
	f.Depose()
	f.mu.Lock()
	ctx, cancel := context.WithCancel(cmp.Or(f.runCtx, context.Background()))
	if f.runCtx == nil {
		cancel() // not running: no leadership to act on
	}
	f.cancelWork = cancel
	f.leader = discovery.LeaderInfo{Node: f.node, Self: true, Token: token, Since: time.Now()}
	f.mu.Unlock()
	f.event(discovery.Event{Kind: discovery.EventLeaderGained, Time: time.Now(), Leader: f.node, Token: token})
	if f.opts.OnLeader != nil {
		f.work.Go(func() { f.opts.OnLeader(ctx, token) })
	}
}

// Depose ends this node's leadership, if any: OnLeader's context is cancelled and OnEvent sees leader_lost.
func (f *Fake) Depose() {
	f.mu.Lock()
	was := f.leader
	if f.cancelWork != nil {
		f.cancelWork()
		f.cancelWork = nil
	}
	if was.Self {
		f.leader = discovery.LeaderInfo{}
	}
	f.mu.Unlock()
	if was.Self {
		f.event(discovery.Event{Kind: discovery.EventLeaderLost, Time: time.Now(), Token: was.Token, Reason: "deposed"})
	}
}

// SetLeader sets what Leader reports when another node leads (Self is forced false; use Elect for this node).
func (f *Fake) SetLeader(li discovery.LeaderInfo) {
	f.Depose()
	li.Self = false
	f.mu.Lock()
	f.leader = li
	f.mu.Unlock()
	f.event(discovery.Event{Kind: discovery.EventLeaderChanged, Time: time.Now(), Leader: li.Node, Token: li.Token})
}

// SetHealth sets what Health reports and emits consul_degraded or consul_recovered when OK changes.
func (f *Fake) SetHealth(h discovery.Health) {
	f.mu.Lock()
	was := f.health.OK
	f.health = h
	f.mu.Unlock()
	switch {
	case was && !h.OK:
		f.event(discovery.Event{Kind: discovery.EventDegraded, Time: time.Now(), Reason: h.Reason})
	case !was && h.OK:
		f.event(discovery.Event{Kind: discovery.EventRecovered, Time: time.Now()})
	}
}

// Instances returns the recorded instances sorted by task and index.
func (f *Fake) Instances() []discovery.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Collect(maps.Values(f.instances))
	slices.SortFunc(out, func(a, b discovery.Instance) int {
		return cmp.Or(cmp.Compare(a.Task, b.Task), cmp.Compare(a.Index, b.Index))
	})
	return out
}

// NodeMeta returns the last SetNodeMeta.
func (f *Fake) NodeMeta() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.nodeMeta)
}

// Heartbeats counts the Heartbeat calls.
func (f *Fake) Heartbeats() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.heartbeats
}

// Writes returns the leader writes recorded, by key.
func (f *Fake) Writes() map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.writes)
}

func (f *Fake) event(ev discovery.Event) {
	if f.opts.OnEvent != nil {
		f.opts.OnEvent(ev)
	}
}
