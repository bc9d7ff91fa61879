package discovery

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// The leader's side of the election: what a read of the key means for the role (observe), the lease that a
// confirmation extends and whose end suspends the leader, giving the role up on evidence, the OnLeader
// goroutine, and the fenced leader writes. State is read and written under e.mu, never held while calling Consul.

// observe takes in a read of the key. Evidence of loss ends the leadership at once; a consistent read that shows
// the session renews the lease (and resumes a suspended leader).
func (e *election) observe(pair *api.KVPair, index uint64, sent time.Time, consistent bool) {
	var events []Event
	e.mu.Lock()
	if e.role != roleFollower && index < e.acquiredAt && !consistent {
		// Computed before this node acquired. A consistent read is never stale: a lower index there means
		// Consul lost its state, and what it shows is the truth.
		e.mu.Unlock()
		return
	}
	prevNode := e.holder.Node
	if pair == nil || pair.Session == "" {
		e.keySession, e.holder = "", leaderValue{}
	} else {
		e.keySession = pair.Session
		v, err := decodeLeaderValue(pair.Value)
		if err != nil {
			v = leaderValue{Node: "(unknown: " + err.Error() + ")"}
		}
		e.holder = v
		e.highest = max(e.highest, v.Token)
	}
	e.lastErr = "" // Consul answered
	if e.role != roleFollower {
		switch {
		case pair == nil:
			events = append(events, e.loseLocked("leader key deleted"))
		case pair.Session == "":
			events = append(events, e.loseLocked("lock released: session invalidated"))
		case pair.Session != e.session:
			events = append(events, e.loseLocked("lock held by session "+pair.Session))
		case consistent:
			if ev, ok := e.extendLocked(sent); ok {
				events = append(events, ev)
			}
		}
	}
	if e.holder.Node != prevNode && e.role == roleFollower {
		events = append(events, Event{Kind: EventLeaderChanged, Time: time.Now(), Leader: e.holder.Node,
			Token: e.holder.Token})
	}
	e.mu.Unlock()
	e.emitAll(events)
	e.signal()
}

// extendLocked renews the lease from a confirmation sent at sent, and resumes a suspended leader.
func (e *election) extendLocked(sent time.Time) (Event, bool) {
	if end := sent.Add(e.lease()); end.After(e.leaseEnd) {
		e.leaseEnd = end
	}
	d := time.Until(e.leaseEnd)
	if e.leaseTimer == nil {
		e.leaseTimer = time.AfterFunc(d, e.leaseExpired)
	} else {
		e.leaseTimer.Reset(d)
	}
	if e.role != roleSuspended || d <= 0 {
		return Event{}, false
	}
	e.role = roleLeader
	e.startWorkLocked()
	e.log.Info("scheduler leader resumed: consul confirms the lock", "token", e.token)
	return Event{Kind: EventLeaderResumed, Time: time.Now(), Leader: e.cfg.NodeName, Token: e.token}, true
}

// leaseExpired suspends the leader when no confirmation came within the lease.
func (e *election) leaseExpired() {
	e.mu.Lock()
	if e.role != roleLeader || time.Now().Before(e.leaseEnd) {
		e.mu.Unlock()
		return
	}
	e.role = roleSuspended
	e.stopWorkLocked()
	token, reason := e.token, "lease expired without a confirmation from consul"
	if e.lastErr != "" {
		reason += ": " + e.lastErr
	}
	e.mu.Unlock()
	e.log.Warn("scheduler leader suspended", "token", token, "reason", reason)
	e.emit(Event{Kind: EventLeaderSuspended, Time: time.Now(), Leader: e.cfg.NodeName, Token: token, Reason: reason})
	e.signal()
}

// loseLocked gives the role up at once.
func (e *election) loseLocked(reason string) Event {
	e.role = roleFollower
	e.stopWorkLocked()
	if e.leaseTimer != nil {
		e.leaseTimer.Stop()
	}
	e.leaseEnd = time.Time{}
	now := time.Now()
	e.contendAfter = now.Add(lossBackoff + rand.N(lossBackoff))
	e.log.Warn("scheduler leadership lost", "token", e.token, "reason", reason)
	return Event{Kind: EventLeaderLost, Time: now, Leader: e.holder.Node, Token: e.token, Reason: reason}
}

// startWorkLocked runs OnLeader in a new goroutine, after the previous one has returned.
func (e *election) startWorkLocked() {
	if e.onLeader == nil {
		return
	}
	ctx, cancel := context.WithCancel(e.baseCtx)
	prev, done, token := e.workDone, make(chan struct{}), e.token
	e.workCancel, e.workDone = cancel, done
	e.work.Go(func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		if ctx.Err() == nil {
			e.onLeader(ctx, token)
		}
	})
}

func (e *election) stopWorkLocked() {
	if e.workCancel != nil {
		e.workCancel()
		e.workCancel = nil
	}
}

// leading reports whether the node acts with this token now.
func (e *election) leading(token uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leadingLocked(token)
}

func (e *election) leadingLocked(token uint64) bool {
	return e.role == roleLeader && token != 0 && e.token == token && time.Now().Before(e.leaseEnd)
}

// leaderWrite is Client.LeaderWrite.
func (e *election) leaderWrite(ctx context.Context, token uint64, key string, value []byte) error {
	if key == "" || strings.HasPrefix(key, "leader/") {
		return fmt.Errorf("discovery: leader write to %q: the key is empty or under leader/, which the election owns", key)
	}
	e.mu.Lock()
	ok, session := e.leadingLocked(token), e.session
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("leader write %s: %w (token %d)", key, ErrNotLeader, token)
	}
	op := &api.KVTxnOp{Verb: api.KVSet, Key: e.cfg.KVPrefix + key, Value: value}
	if value == nil {
		op = &api.KVTxnOp{Verb: api.KVDelete, Key: e.cfg.KVPrefix + key}
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	sent := time.Now()
	ok, resp, _, err := e.txn.Txn(api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: e.key, Session: session}},
		{KV: op},
	}, query(rctx))
	if err != nil {
		return fmt.Errorf("leader write %s: %w", key, err)
	}
	if !ok {
		for _, te := range resp.Errors {
			if te.OpIndex == 0 {
				e.mu.Lock()
				var ev Event
				lost := e.role != roleFollower && e.token == token
				if lost {
					ev = e.loseLocked("leader write: " + te.What)
				}
				e.mu.Unlock()
				if lost {
					e.emit(ev)
					e.signal()
				}
				return fmt.Errorf("leader write %s: %w: %s", key, ErrNotLeader, te.What)
			}
		}
		return txnError("leader write "+key, resp)
	}
	e.mu.Lock()
	var events []Event
	if e.role != roleFollower && e.token == token {
		if ev, ok := e.extendLocked(sent); ok {
			events = append(events, ev)
		}
	}
	e.mu.Unlock()
	e.emitAll(events)
	return nil
}

// info is Client.Leader.
func (e *election) info() LeaderInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	li := LeaderInfo{Node: e.holder.Node, Address: e.holder.Address, Since: e.holder.Since, Token: e.holder.Token,
		Err: e.lastErr}
	if e.role != roleFollower {
		li.Self, li.Node, li.Address, li.Since, li.Token = true, e.cfg.NodeName, e.cfg.AdvertiseAddress, e.since, e.token
		li.Suspended = e.role == roleSuspended
		li.LeaseUntil = e.leaseEnd
	}
	return li
}

// roleText is the node check's output: what operators see on the instance page in the Consul UI.
func (e *election) roleText() string {
	li := e.info()
	switch {
	case li.Self && li.Suspended:
		return fmt.Sprintf("scheduler leader since %s, token %d: suspended, waiting for consul to confirm",
			li.Since.Format(time.RFC3339), li.Token)
	case li.Self:
		return fmt.Sprintf("scheduler leader since %s, token %d", li.Since.Format(time.RFC3339), li.Token)
	case li.Node != "":
		return "follower; scheduler leader is " + li.Node
	}
	return "follower; no scheduler leader"
}
