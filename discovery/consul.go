package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// consulClient is the Client backed by a Consul agent: a registry of services, the heartbeat of the node's
// check, and the election.
type consulClient struct {
	cfg Config
	log *slog.Logger
	api *consulAPI
	reg *registry
	hb  *heartbeat
	el  *election
	ran atomic.Bool
}

// New builds the Consul-backed Client from cfg (zero fields take their defaults). It checks the config and
// dials nothing: Run does the talking, and retries for as long as Consul is away.
func New(cfg Config, opts Options) (Client, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "discovery")
	a, err := newConsulAPI(c)
	if err != nil {
		return nil, err
	}
	emit := func(Event) {}
	if opts.OnEvent != nil {
		emit = opts.OnEvent
	}
	n := ids{prefix: c.ServicePrefix, node: c.NodeName}
	cc := &consulClient{cfg: c, log: log, api: a}
	cc.reg = newRegistry(c, a.agent, log, emit)
	cc.hb = newHeartbeat(c, a.agent, log, n.nodeCheck())
	cc.el = newElection(c, a, n.nodeCheck(), log, emit, opts)
	cc.hb.ready = cc.reg.nodeRegistered
	cc.hb.output = func() string { return fmt.Sprintf("glmd %s on %s: %s", c.Version, c.NodeName, cc.el.roleText()) }
	cc.hb.recovery = func() {
		cc.reg.recovered()
		cc.el.consulBack()
	}
	cc.el.consulNode = cc.reg.consulNode
	cc.reg.onNodeUp = cc.hb.poke
	cc.hb.passed = cc.el.signal
	cc.el.canContend = func() bool { return cc.reg.nodeRegistered() && cc.hb.healthy(c.CheckTTL) }
	return cc, nil
}

// errRunTwice: Run owns the registrations and the session; a second Run would fight the first.
var errRunTwice = errors.New("discovery: Run called twice")

func (c *consulClient) Run(ctx context.Context) error {
	if !c.ran.CompareAndSwap(false, true) {
		return errRunTwice
	}
	defer c.api.close()
	c.log.Info("consul discovery starting", "address", c.cfg.Address, "node", c.cfg.NodeName,
		"check_ttl", c.cfg.CheckTTL, "lock_delay", c.cfg.LockDelay)
	// The registry and the heartbeat outlive ctx until the election has released the role and destroyed its
	// session: a check that went critical or vanished first would invalidate the session, and the lock delay
	// would hold up the next leader.
	keep, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { c.reg.run(keep) })
	wg.Go(func() { c.hb.run(keep) })
	c.el.run(ctx)
	// One budget for release, session destroy and deregistration, so that a dead Consul cannot hold up
	// glmd's stop for long.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	c.el.shutdown(dctx)
	stop()
	wg.Wait()
	if err := c.reg.deregisterAll(dctx); err != nil {
		c.log.Warn("deregistering from consul failed; the services stay until glmd starts again", "err", err)
	}
	c.log.Info("consul discovery stopped")
	return nil
}

func (c *consulClient) Heartbeat()                       { c.hb.beatNow() }
func (c *consulClient) HeartbeatInterval() time.Duration { return c.cfg.heartbeatInterval() }
func (c *consulClient) SetNodeMeta(meta map[string]string) {
	c.reg.setNodeMeta(meta)
}
func (c *consulClient) SetInstance(in Instance)               { c.reg.setInstance(in) }
func (c *consulClient) RemoveInstance(task string, index int) { c.reg.removeInstance(task, index) }
func (c *consulClient) Sync(instances []Instance)             { c.reg.sync(instances) }
func (c *consulClient) Health() Health                        { return c.reg.healthNow() }
func (c *consulClient) Leader() LeaderInfo                    { return c.el.info() }
func (c *consulClient) Leading(token uint64) bool             { return c.el.leading(token) }
func (c *consulClient) LeaderWrite(ctx context.Context, token uint64, key string, value []byte) error {
	return c.el.leaderWrite(ctx, token, key, value)
}
