package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// registry keeps the agent's services in step with the desired state: the node's own service and one service per
// registered worker instance. Setters record and wake; only run talks to Consul.
type registry struct {
	cfg  Config
	ids  ids
	api  agentAPI
	log  *slog.Logger
	emit func(Event)
	now  func() time.Time
	// onNodeUp is called when the node service is known to be on the agent (registered or adopted).
	onNodeUp func()

	wake chan struct{} // cap 1: something changed or a resync is due (waits out a retry backoff)
	kick chan struct{} // cap 1: Consul answers again: resync now, backoff or not

	// mu guards the fields below it.
	mu        sync.Mutex
	nodeMeta  map[string]string
	instances map[string]Instance // by service ID; only instances that belong in Consul
	resync    bool                // compare with the agent's services before the next push
	agentNode string              // the Consul agent's node name, learnt from its checks
	warned    map[string]string   // per service ID, the refused meta keys already logged
	nodeUp    bool                // the node service is registered as desired (sessions may be bound to it)
	health    Health

	// pushed is what Consul was last told, per service ID. Owned by run.
	pushed map[string]pushedState
}

// pushedState is the registration and readiness last pushed for one service.
type pushedState struct {
	hash   uint64
	status string
	output string
	at     time.Time // when the check status was last pushed
}

func newRegistry(c Config, a agentAPI, log *slog.Logger, emit func(Event)) *registry {
	return &registry{
		cfg:       c,
		ids:       ids{prefix: c.ServicePrefix, node: c.NodeName},
		api:       a,
		log:       log,
		emit:      emit,
		now:       time.Now,
		wake:      make(chan struct{}, 1),
		kick:      make(chan struct{}, 1),
		instances: map[string]Instance{},
		warned:    map[string]string{},
		resync:    true,
		health:    Health{Enabled: true, Reason: "not synced yet", Since: time.Now(), Services: 1},
		pushed:    map[string]pushedState{},
	}
}

func (r *registry) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// requestResync makes the next pass compare everything with the agent.
func (r *registry) requestResync() {
	r.mu.Lock()
	r.resync = true
	r.mu.Unlock()
	r.poke()
}

// recovered is requestResync at once, without waiting out a retry backoff: Consul answers again, or lost the
// node's check.
func (r *registry) recovered() {
	r.mu.Lock()
	r.resync = true
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// consulNode is the Consul agent's node name, "" until the first comparison with the agent.
func (r *registry) consulNode() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.agentNode
}

func (r *registry) setNodeMeta(meta map[string]string) {
	if bad := invalidMeta(meta); len(bad) > 0 {
		r.log.Warn("consul refuses these node meta keys; dropped", "keys", bad)
	}
	r.mu.Lock()
	r.nodeMeta = maps.Clone(meta)
	r.mu.Unlock()
	r.poke()
}

func (r *registry) setInstance(in Instance) {
	id := r.ids.instanceService(in.Task, in.Index)
	in.Tags = slices.Clone(in.Tags)
	in.GPUs = slices.Clone(in.GPUs)
	in.Meta = maps.Clone(in.Meta)
	bad := strings.Join(invalidMeta(in.Meta), ",")
	r.mu.Lock()
	if registered(in) {
		r.instances[id] = in
	} else {
		delete(r.instances, id)
	}
	r.health.Services = len(r.instances) + 1
	warn := bad != r.warned[id]
	r.warned[id] = bad
	r.mu.Unlock()
	if warn && bad != "" {
		r.log.Warn("consul refuses these service meta keys; dropped", "task", in.Task, "instance", in.Index, "keys", bad)
	}
	r.poke()
}

func (r *registry) removeInstance(task string, index int) {
	r.mu.Lock()
	delete(r.instances, r.ids.instanceService(task, index))
	r.health.Services = len(r.instances) + 1
	r.mu.Unlock()
	r.poke()
}

func (r *registry) sync(all []Instance) {
	// Build the whole set first: a pass running meanwhile must never see half of it and deregister the rest.
	next := make(map[string]Instance, len(all))
	for _, in := range all {
		if registered(in) {
			in.Tags, in.GPUs, in.Meta = slices.Clone(in.Tags), slices.Clone(in.GPUs), maps.Clone(in.Meta)
			next[r.ids.instanceService(in.Task, in.Index)] = in
		}
	}
	r.mu.Lock()
	r.instances = next
	r.health.Services = len(next) + 1
	var warn []Instance
	for id, in := range next {
		bad := strings.Join(invalidMeta(in.Meta), ",")
		if bad != r.warned[id] && bad != "" {
			warn = append(warn, in)
		}
		r.warned[id] = bad
	}
	r.mu.Unlock()
	for _, in := range warn {
		r.log.Warn("consul refuses these service meta keys; dropped", "task", in.Task, "instance", in.Index,
			"keys", invalidMeta(in.Meta))
	}
	r.poke()
}

func (r *registry) healthNow() Health {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.health
}

// nodeRegistered reports whether the node service and its TTL check are on the agent, so that a session can be
// bound to the check.
func (r *registry) nodeRegistered() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodeUp
}

func (r *registry) setNodeUp(up bool) {
	r.mu.Lock()
	r.nodeUp = up
	r.mu.Unlock()
	if up && r.onNodeUp != nil {
		r.onNodeUp()
	}
}

// desired builds every registration glmd wants, and takes the resync flag.
func (r *registry) desired() (regs map[string]registration, resync bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	regs = make(map[string]registration, len(r.instances)+1)
	node := nodeRegistration(r.cfg, r.ids, r.nodeMeta)
	regs[node.svc.ID] = node
	for _, in := range r.instances {
		reg := instanceRegistration(r.cfg, r.ids, in)
		regs[reg.svc.ID] = reg
	}
	resync, r.resync = r.resync, false
	return regs, resync
}

// run pushes the desired state whenever it changes, compares everything with the agent every ResyncInterval,
// and retries failures with backoff until ctx ends. It does not deregister: see deregisterAll.
func (r *registry) run(ctx context.Context) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	resync := time.NewTicker(r.cfg.ResyncInterval)
	defer resync.Stop()
	retry := time.NewTimer(0)
	defer retry.Stop()
	failures := 0
	backingOff := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			if backingOff {
				continue // the retry timer runs the pass, with everything that changed meanwhile
			}
		case <-r.kick:
		case <-resync.C:
			r.requestResync()
			if backingOff {
				continue
			}
		case <-retry.C:
		}
		err := r.pass(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			failures, backingOff = 0, false
			r.setHealth(nil, 0)
			continue
		}
		failures, backingOff = failures+1, true
		r.setHealth(err, failures)
		if failures == 1 || failures%10 == 0 {
			r.log.Warn("consul registration failed; retrying", "err", err, "failures", failures)
		}
		retry.Reset(retryDelay(failures, rng))
	}
}

// setHealth records the outcome of a pass and emits an event when OK changes.
func (r *registry) setHealth(err error, failures int) {
	now := r.now()
	r.mu.Lock()
	was := r.health.OK
	r.health.OK = err == nil
	r.health.Failures = failures
	if err == nil {
		r.health.Reason = ""
		r.health.LastSync = now
	} else {
		r.health.Reason = err.Error()
		// After a failure nobody knows what the agent kept: compare everything once it answers again.
		r.resync = true
	}
	if was != r.health.OK {
		r.health.Since = now
	}
	h := r.health
	r.mu.Unlock()
	switch {
	case was && !h.OK:
		r.emit(Event{Kind: EventDegraded, Time: now, Reason: h.Reason})
	case !was && h.OK:
		r.log.Info("consul registrations in sync", "services", h.Services)
		r.emit(Event{Kind: EventRecovered, Time: now})
	}
}

// pass makes the agent match the desired state. It stops at the first error that means Consul is unreachable;
// a registration Consul refuses is reported and the others still pushed.
func (r *registry) pass(ctx context.Context) error {
	regs, resync := r.desired()
	if resync {
		if err := r.compare(ctx, regs); err != nil {
			r.requestResync()
			return err
		}
	}
	var refusedErr error
	nodeID := r.ids.nodeService()
	order := slices.Sorted(maps.Keys(regs))
	// The node service first: the instances' alias checks point at it.
	order = slices.DeleteFunc(order, func(id string) bool { return id == nodeID })
	order = slices.Insert(order, 0, nodeID)
	for _, id := range order {
		err := r.push(ctx, regs[id], id == nodeID)
		switch {
		case err == nil:
		case refused(err):
			refusedErr = errors.Join(refusedErr, err)
		default:
			return err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(r.pushed)) {
		if _, ok := regs[id]; ok {
			continue
		}
		if err := r.deregister(ctx, id); err != nil && !refused(err) {
			return err
		}
	}
	return refusedErr
}

// push registers one service when its definition changed, and pushes an instance's readiness when it changed or
// when half its TTL has passed since the last push.
func (r *registry) push(ctx context.Context, reg registration, isNode bool) error {
	p := r.pushed[reg.svc.ID]
	if p.hash != reg.hash {
		if err := r.register(ctx, reg); err != nil {
			return err
		}
		p = pushedState{hash: reg.hash}
		r.pushed[reg.svc.ID] = p
		if isNode {
			r.setNodeUp(true)
		}
	}
	if isNode {
		return nil // the heartbeat owns the node check
	}
	now := r.now()
	if p.status == reg.status && p.output == reg.output && now.Sub(p.at) < reg.checkTTL/2 {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := r.api.UpdateTTLOpts(reg.checkID, reg.output, reg.status, query(rctx)); err != nil {
		if checkMissing(err) {
			// Someone removed it behind our back: register again on the next pass.
			delete(r.pushed, reg.svc.ID)
			r.requestResync()
		}
		return fmt.Errorf("update check %s: %w", reg.checkID, err)
	}
	p.status, p.output, p.at = reg.status, reg.output, now
	r.pushed[reg.svc.ID] = p
	return nil
}

func (r *registry) register(ctx context.Context, reg registration) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(rctx)
	if err := r.api.ServiceRegisterOpts(reg.svc, opts); err != nil {
		return fmt.Errorf("register service %s: %w", reg.svc.ID, err)
	}
	r.log.Debug("consul service registered", "service", reg.svc.ID)
	return nil
}

func (r *registry) deregister(ctx context.Context, id string) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := r.api.ServiceDeregisterOpts(id, query(rctx)); err != nil && !notFound(err) {
		return fmt.Errorf("deregister service %s: %w", id, err)
	}
	delete(r.pushed, id)
	if id == r.ids.nodeService() {
		r.setNodeUp(false)
	}
	r.log.Debug("consul service deregistered", "service", id)
	return nil
}

// compare reads the agent's view of this node's glmd services (anti-entropy): it deregisters glmd-owned services
// nobody wants (left by a crash or an older configuration) and forgets what was pushed for services or checks the
// agent lost or changed, so that the pass re-adds them.
func (r *registry) compare(ctx context.Context, regs map[string]registration) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	filter := fmt.Sprintf("Meta.%s == %q", metaNode, r.cfg.NodeName)
	services, err := r.api.ServicesWithFilterOpts(filter, query(rctx))
	if err != nil {
		return fmt.Errorf("list agent services: %w", err)
	}
	checks, err := r.api.ChecksWithFilterOpts("", query(rctx))
	if err != nil {
		return fmt.Errorf("list agent checks: %w", err)
	}
	for _, c := range checks {
		if c.Node != "" {
			r.mu.Lock()
			r.agentNode = c.Node
			r.mu.Unlock()
			break
		}
	}
	for id, svc := range services {
		if !r.ids.owns(svc) {
			continue
		}
		if _, ok := regs[id]; ok {
			continue
		}
		if err := r.deregister(ctx, id); err != nil {
			return err
		}
		r.log.Info("stale consul registration removed", "service", id)
	}
	for id, reg := range regs {
		svc, ok := services[id]
		p, pushed := r.pushed[id]
		if !ok || !sameService(svc, reg.svc) || !hasChecks(checks, reg.svc) {
			if pushed || !ok {
				r.log.Debug("consul service missing or changed; registering again", "service", id)
			}
			delete(r.pushed, id)
			if id == r.ids.nodeService() {
				r.setNodeUp(false)
			}
			continue
		}
		if !pushed {
			// Found, e.g. from before a restart of glmd: registered once more anyway, since the comparison
			// does not cover every field (check TTLs). Re-registering keeps the checks' status.
			continue
		}
		if c := checks[reg.checkID]; c != nil && (c.Status != p.status || c.Output != p.output) {
			p.status, p.output = "", "" // push readiness again
		}
		r.pushed[id] = p
	}
	return nil
}

// sameService reports whether the agent's service matches what glmd would register.
func sameService(have *api.AgentService, want *api.AgentServiceRegistration) bool {
	return have.Service == want.Name && have.Port == want.Port && have.Address == want.Address &&
		slices.Equal(nilIfEmpty(have.Tags), nilIfEmpty(want.Tags)) && maps.Equal(have.Meta, want.Meta)
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// hasChecks reports whether every check of want is on the agent.
func hasChecks(checks map[string]*api.AgentCheck, want *api.AgentServiceRegistration) bool {
	for _, c := range want.Checks {
		if checks[c.CheckID] == nil {
			return false
		}
	}
	return true
}

// checkMissing reports whether Consul said a TTL check does not exist (it answers 500 "does not have associated
// TTL" for unknown check IDs, 404 on some versions).
func checkMissing(err error) bool {
	var se api.StatusError
	if !errors.As(err, &se) {
		return false
	}
	return se.Code == 404 || strings.Contains(se.Body, "does not have associated TTL")
}

// deregisterAll removes every service glmd registered for this node, the node's own last (sessions are bound to
// its check: the election must have destroyed its session before). It tries each once; ctx bounds it.
func (r *registry) deregisterAll(ctx context.Context) error {
	ids := slices.Sorted(maps.Keys(r.pushed))
	nodeID := r.ids.nodeService()
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == nodeID })
	// Also what a resync would have found: the pushed map may be empty after a failure.
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	services, err := r.api.ServicesWithFilterOpts(fmt.Sprintf("Meta.%s == %q", metaNode, r.cfg.NodeName), query(rctx))
	cancel()
	if err == nil {
		for id, svc := range services {
			if r.ids.owns(svc) && id != nodeID && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	var errs []error
	for _, id := range append(ids, nodeID) {
		if err := r.deregister(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
