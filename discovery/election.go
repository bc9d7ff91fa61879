package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// The election of the scheduler role (see doc.go for the reasoning). One goroutine (loop) acquires and confirms;
// one (watch) follows the key with blocking queries; the lease timer suspends the leader when Consul goes quiet.
// Every path that sees evidence of loss gives the role up under mu at once.

// roleState is this node's relation to the role.
type roleState uint8

const (
	roleFollower  roleState = iota
	roleLeader              // holds the lock and its lease runs: acts
	roleSuspended           // holds the lock as far as it knows, but the lease ran out: does not act
)

// Pacing of the election.
const (
	// lockDelayRetry: a lock refused because of the lock delay is tried again this often (with jitter), so the
	// new leader starts within ~250 ms of the delay's end (api.Lock waits 5 s).
	lockDelayRetry = 250 * time.Millisecond
	// lossBackoff: after losing the role, wait this long (up to twice) before contending again.
	lossBackoff = 250 * time.Millisecond
	// watchWait is the blocking query's wait; the client deadline adds Consul's jitter (wait/16) and slack.
	watchWait = 30 * time.Second
	// workStopTimeout bounds how long shutdown waits for OnLeader to return before releasing the role.
	workStopTimeout = 5 * time.Second
	// shutdownTimeout bounds release, session destroy and deregistration on shutdown together.
	shutdownTimeout = 10 * time.Second
)

// acquire outcomes other than success and a plain error.
var (
	errLockDelay      = errors.New("lock refused during the lock delay")
	errLockHeld       = errors.New("lock held by another session")
	errInvalidSession = errors.New("session invalid")
)

type election struct {
	cfg        Config
	key        string // <kv_prefix>leader/scheduler
	epochKey   string // <kv_prefix>leader/scheduler.epoch
	name       string // session name
	checkID    string // the node's TTL check, bound to the session
	kv         kvAPI
	txn        txnAPI
	sessions   sessionAPI
	log        *slog.Logger
	emit       func(Event)
	onLeader   func(context.Context, uint64)
	canContend func() bool

	changed chan struct{} // cap 1: the key or the role changed
	work    sync.WaitGroup
	// consulNode is the Consul agent's node name ("" while unknown): stale sessions are looked for there only.
	consulNode func() string

	// mu guards the fields below it. Never held while calling Consul or a hook.
	mu         sync.Mutex
	baseCtx    context.Context // parent of OnLeader's contexts
	session    string
	role       roleState
	token      uint64
	since      time.Time
	acquiredAt uint64 // raft index of the acquiring write: observations older than it are ignored
	leaseEnd   time.Time
	leaseTimer *time.Timer
	workCancel context.CancelFunc
	workDone   chan struct{}
	// contendAfter: after losing the role, wait 250-500 ms before contending again, so that a node whose own
	// check just flapped does not win the lock straight back.
	contendAfter time.Time
	keySession   string      // the session holding the key as last seen ("" free)
	holder       leaderValue // the key's value as last seen (zero when free)
	highest      uint64      // highest token seen
	lastErr      string
	back         chan struct{} // closed (and replaced) when Consul answers again: cuts retry sleeps short
}

func newElection(c Config, a *consulAPI, checkID string, log *slog.Logger, emit func(Event), opts Options) *election {
	return &election{
		cfg:      c,
		key:      c.KVPrefix + "leader/" + Role,
		epochKey: c.KVPrefix + "leader/" + Role + ".epoch",
		name:     c.ServicePrefix + "-" + Role + ":" + c.NodeName,
		checkID:  checkID,
		kv:       a.kv,
		txn:      a.txn,
		sessions: a.session,
		log:      log.With("role", Role),
		emit:     emit,
		onLeader: opts.OnLeader,
		changed:  make(chan struct{}, 1),
		highest:  c.MinToken,
		back:     make(chan struct{}),
	}
}

func (e *election) lease() time.Duration { return e.cfg.LockDelay - e.cfg.leaseMargin() }

func (e *election) signal() {
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// consulBack wakes every retry sleep: Consul answers again, try now rather than at the end of a backoff.
func (e *election) consulBack() {
	e.mu.Lock()
	close(e.back)
	e.back = make(chan struct{})
	e.mu.Unlock()
	e.signal()
}

// sleep waits d, until ctx ends, or until Consul is back; false means ctx ended.
func (e *election) sleep(ctx context.Context, d time.Duration) bool {
	e.mu.Lock()
	back := e.back
	e.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-back:
	case <-t.C:
	}
	return true
}

// run takes part in the election until ctx ends; then shutdown must be called.
func (e *election) run(ctx context.Context) {
	e.mu.Lock()
	e.baseCtx = ctx
	e.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { e.watch(ctx) })
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	for ctx.Err() == nil {
		e.mu.Lock()
		role := e.role
		e.mu.Unlock()
		if role == roleFollower {
			e.follow(ctx, rng)
		} else {
			e.lead(ctx)
		}
	}
	wg.Wait()
}

// wait blocks until the key or role changes, d passes, or ctx ends.
func (e *election) wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-e.changed:
	case <-t.C:
	}
}

// follow contends for the role until this node leads or ctx ends.
func (e *election) follow(ctx context.Context, rng *rand.Rand) {
	failures := 0
	fail := func(err error) {
		if ctx.Err() != nil {
			return
		}
		failures++
		e.setErr(err)
		base, quiet := retryBase, checkNotSynced(err)
		if quiet {
			// Right after registration the servers may not know the node's check yet (the agent syncs it
			// within milliseconds): retry soon, and say nothing unless it lasts.
			base = 50 * time.Millisecond
		}
		if failures == 1 && !quiet || failures%10 == 0 {
			e.log.Warn("scheduler election: retrying", "err", err, "failures", failures)
		}
		e.sleep(ctx, backoff(base, failures, rng))
	}
	for ctx.Err() == nil {
		e.mu.Lock()
		role, session, keySession, contendAfter := e.role, e.session, e.keySession, e.contendAfter
		e.mu.Unlock()
		if role != roleFollower {
			return
		}
		if d := time.Until(contendAfter); d > 0 {
			sleepCtx(ctx, d)
			continue
		}
		if !e.canContend() {
			e.wait(ctx, e.cfg.heartbeatInterval())
			continue
		}
		if session == "" {
			if err := e.createSession(ctx); err != nil {
				fail(err)
			} else {
				failures = 0
			}
			continue
		}
		if keySession != "" && keySession != session {
			e.wait(ctx, watchWait)
			continue
		}
		err := e.acquire(ctx, session)
		if err == nil || errors.Is(err, errLockDelay) || errors.Is(err, errLockHeld) {
			failures = 0 // Consul answered
		}
		switch {
		case err == nil:
			return
		case errors.Is(err, errLockDelay):
			sleepCtx(ctx, jitter(lockDelayRetry, 0.25, rng))
		case errors.Is(err, errLockHeld):
			e.wait(ctx, watchWait)
		case errors.Is(err, errInvalidSession):
			e.mu.Lock()
			if e.session == session {
				e.session = ""
			}
			e.mu.Unlock()
		default:
			fail(err)
		}
	}
}

// createSession destroys the sessions a previous incarnation of this node left (a quickly restarted glmd finds
// its old session alive, holding the lock) and creates this incarnation's: bound to serfHealth and the node's
// TTL check, behaviour release, the configured lock delay, no TTL (the checks are the liveness).
func (e *election) createSession(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	list, _, err := e.sessions.List(query(rctx))
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	node := e.consulNode()
	for _, s := range list {
		if s.Name != e.name || node != "" && s.Node != node {
			continue // another glmd's, or one by the same name on another Consul node (misconfigured node_name)
		}
		if _, err := e.sessions.Destroy(s.ID, (&api.WriteOptions{}).WithContext(rctx)); err != nil {
			return fmt.Errorf("destroy stale session %s: %w", s.ID, err)
		}
		e.log.Info("stale session of an earlier glmd on this node destroyed", "session", s.ID)
	}
	id, _, err := e.sessions.Create(&api.SessionEntry{
		Name:          e.name,
		Behavior:      api.SessionBehaviorRelease,
		LockDelay:     e.cfg.LockDelay,
		NodeChecks:    []string{"serfHealth"},
		ServiceChecks: []api.ServiceCheck{{ID: e.checkID}},
	}, (&api.WriteOptions{}).WithContext(rctx))
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	e.mu.Lock()
	e.session = id
	e.mu.Unlock()
	e.log.Debug("session created", "session", id)
	return nil
}

// acquire takes the lock with the session, reading the epoch in the same transaction, then writes the leader
// record with the fencing token (and a new epoch when the raft index went backwards) checked against the session.
func (e *election) acquire(ctx context.Context, session string) error {
	e.mu.Lock()
	highest := e.highest
	e.mu.Unlock()
	rec := leaderValue{Node: e.cfg.NodeName, Address: e.cfg.AdvertiseAddress, Since: time.Now().UTC()}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	sent := time.Now()
	ok, resp, _, err := e.txn.Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: e.key, Value: rec.encode(), Session: session}},
		{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: e.epochKey}},
	}, query(rctx))
	if err != nil {
		return fmt.Errorf("acquire %s: %w", e.key, err)
	}
	if !ok {
		return txnError("acquire "+e.key, resp)
	}
	if len(resp.Results) != 2 || resp.Results[0].KV == nil || resp.Results[1].KV == nil {
		return fmt.Errorf("acquire %s: consul returned %d results, want 2", e.key, len(resp.Results))
	}
	index := resp.Results[0].KV.ModifyIndex
	kvEpoch, err := parseEpoch(resp.Results[1].KV.Value)
	if err != nil {
		e.log.Warn("epoch key unreadable; starting a new epoch", "key", e.epochKey, "err", err)
	}
	token, epoch := nextToken(kvEpoch, index, highest)
	rec.Token = token
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: e.key, Session: session}},
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: e.key, Value: rec.encode(), Session: session}},
	}
	if epoch != kvEpoch || err != nil {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: e.epochKey, Value: fmt.Appendf(nil, "%d", epoch)}})
		e.log.Info("fencing epoch raised: consul's raft index went backwards", "epoch", epoch, "index", index,
			"highest_seen", highest)
	}
	sent2 := time.Now()
	ok, resp, _, err = e.txn.Txn(ops, query(rctx))
	if err != nil {
		// The lock is ours but the token is not recorded: the next attempt re-locks with the same session.
		return fmt.Errorf("record token in %s: %w", e.key, err)
	}
	if !ok {
		return txnError("record token in "+e.key, resp)
	}
	e.becomeLeader(token, index, rec.Since, sent, sent2)
	return nil
}

// checkNotSynced reports whether creating the session failed because the servers do not know the node's check
// yet, or still see it critical: both pass once the agent has synced the registration and the heartbeat.
func checkNotSynced(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Missing check") || strings.Contains(msg, "in critical state")
}

// txnError turns a failed transaction into one of the acquire outcomes, or an error quoting Consul.
func txnError(what string, resp *api.TxnResponse) error {
	var msgs []string
	if resp != nil {
		for _, te := range resp.Errors {
			msgs = append(msgs, te.What)
		}
	}
	msg := strings.Join(msgs, "; ")
	switch {
	case strings.Contains(msg, "lock delay"):
		return fmt.Errorf("%s: %w", what, errLockDelay)
	case strings.Contains(msg, "invalid session"):
		return fmt.Errorf("%s: %w: %s", what, errInvalidSession, msg)
	case strings.Contains(msg, "already held"), strings.Contains(msg, "session check"),
		strings.Contains(msg, "check session"):
		return fmt.Errorf("%s: %w: %s", what, errLockHeld, msg)
	}
	return fmt.Errorf("%s: transaction refused: %s", what, msg)
}

func (e *election) becomeLeader(token, index uint64, since, sent, confirmed time.Time) {
	e.mu.Lock()
	e.role = roleLeader
	e.token = token
	e.since = since
	e.acquiredAt = index
	e.highest = max(e.highest, token)
	e.keySession = e.session
	e.holder = leaderValue{Node: e.cfg.NodeName, Address: e.cfg.AdvertiseAddress, Since: since, Token: token}
	e.lastErr = ""
	e.leaseEnd = sent.Add(e.lease())
	e.extendLocked(confirmed)
	e.startWorkLocked()
	e.mu.Unlock()
	e.log.Info("scheduler leader", "token", token, "lease", e.lease())
	e.emit(Event{Kind: EventLeaderGained, Time: time.Now(), Leader: e.cfg.NodeName, Token: token})
	e.signal()
}

// lead confirms the lock with a consistent read every LockDelay/3 while this node holds it (acting or
// suspended).
func (e *election) lead(ctx context.Context) {
	tick := time.NewTicker(e.cfg.LockDelay / 3)
	defer tick.Stop()
	for ctx.Err() == nil {
		e.mu.Lock()
		role := e.role
		e.mu.Unlock()
		if role == roleFollower {
			return
		}
		e.confirm(ctx)
		select {
		case <-ctx.Done():
		case <-tick.C:
		case <-e.changed:
		}
	}
}

// confirm reads the key consistently; the read's send time starts the new lease if it shows the session.
func (e *election) confirm(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, e.lease())
	defer cancel()
	sent := time.Now()
	pair, meta, err := e.kv.Get(e.key, (&api.QueryOptions{RequireConsistent: true}).WithContext(rctx))
	if err != nil {
		if ctx.Err() == nil {
			e.setErr(fmt.Errorf("confirm %s: %w", e.key, err))
		}
		return
	}
	e.observe(pair, meta.LastIndex, sent, true)
}

// watch follows the key with blocking queries, for followers to see it free and for the leader to see a loss
// (operator invalidation, key deleted) at once rather than at the next confirmation.
func (e *election) watch(ctx context.Context) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var index uint64
	failures := 0
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, watchWait+watchWait/16+5*time.Second)
		sent := time.Now()
		pair, meta, err := e.kv.Get(e.key, (&api.QueryOptions{WaitIndex: index, WaitTime: watchWait}).WithContext(rctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			e.setErr(fmt.Errorf("watch %s: %w", e.key, err))
			// Consul may come back without its state, with lower indexes: a query blocking on the old index
			// would wait out its whole wait time. Read afresh.
			index = 0
			e.sleep(ctx, retryDelay(failures, rng))
			continue
		}
		failures = 0
		if meta.LastIndex < index {
			// Consul's index went backwards (state wiped, new cluster): start over.
			index = 0
		} else {
			index = meta.LastIndex
		}
		e.observe(pair, meta.LastIndex, sent, false)
	}
}

// shutdown stops acting, waits for OnLeader (up to workStopTimeout), releases the lock (no lock delay, so a
// follower takes over at once) and destroys the session, within ctx.
func (e *election) shutdown(ctx context.Context) {
	e.mu.Lock()
	wasLeader, token := e.role != roleFollower, e.token
	e.role = roleFollower
	e.stopWorkLocked()
	if e.leaseTimer != nil {
		e.leaseTimer.Stop()
	}
	e.leaseEnd = time.Time{}
	session := e.session
	e.session = ""
	e.mu.Unlock()

	done := make(chan struct{})
	go func() { e.work.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(workStopTimeout):
		e.log.Warn("OnLeader did not return after its context ended; releasing the role anyway",
			"timeout", workStopTimeout)
	}
	if session != "" {
		// Release before destroying: destroying a session that holds the lock starts the lock delay.
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		_, _, _, err := e.txn.Txn(api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVUnlock, Key: e.key, Session: session}},
		}, query(rctx))
		cancel()
		if err != nil {
			e.log.Warn("releasing the scheduler lock failed", "err", err)
		}
		rctx, cancel = context.WithTimeout(ctx, requestTimeout)
		_, err = e.sessions.Destroy(session, (&api.WriteOptions{}).WithContext(rctx))
		cancel()
		if err != nil {
			e.log.Warn("destroying the session failed", "session", session, "err", err)
		}
	}
	if wasLeader {
		e.log.Info("scheduler role released", "token", token)
		e.emit(Event{Kind: EventLeaderLost, Time: time.Now(), Token: token, Reason: "glmd stopping"})
	}
}

func (e *election) setErr(err error) {
	e.mu.Lock()
	e.lastErr = err.Error()
	e.mu.Unlock()
}

func (e *election) emitAll(events []Event) {
	for _, ev := range events {
		e.emit(ev)
	}
}
