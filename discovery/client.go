package discovery

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Client is what the agent uses of discovery: the node's registrations in Consul, the readiness of its worker
// instances, and the fleet-wide scheduler role. New returns the Consul implementation, NewStandalone the one for
// a node without Consul (it is always its own scheduler); the agent wires one or the other.
//
// Every method but Run returns at once and never calls out: the setters record the desired state and a
// background loop pushes it to Consul, so a slow or absent Consul never blocks the agent.
type Client interface {
	// Run registers the node and keeps Consul in step with the desired state until ctx ends; then it stops
	// acting as leader (OnLeader gets up to 5 s to return), releases the role, destroys the session and
	// deregisters everything (these Consul calls share 10 s), and returns nil. Errors from Consul never end
	// Run: it retries and reports them through Health. Call Run once.
	Run(ctx context.Context) error

	// Heartbeat tells discovery that the agent's main loop is alive; call it from that loop at least every
	// HeartbeatInterval. Each call passes the node's TTL check (off the caller's goroutine); a loop that stops
	// calling lets the check turn critical after CheckTTL, which ends the node's leadership.
	Heartbeat()
	// HeartbeatInterval is how often Heartbeat should be called: CheckTTL/4.
	HeartbeatInterval() time.Duration

	// SetNodeMeta replaces the node service's dynamic meta (e.g. gpu_count, gpu_free); Config.Labels, the
	// version and the node name are added to it. Keys Consul refuses are dropped and logged.
	SetNodeMeta(meta map[string]string)
	// SetInstance adds or updates one worker instance's service. Only what changed is pushed: a readiness
	// change is one check update, a change of name, port, tags, meta or GPUs a re-registration.
	SetInstance(in Instance)
	// RemoveInstance deregisters one worker instance's service; unknown instances are ignored.
	RemoveInstance(task string, index int)
	// Sync replaces the whole set of worker instances: those not listed are deregistered.
	Sync(instances []Instance)

	// Health says whether Consul follows the desired state, and if not, why.
	Health() Health

	// Leader describes the scheduler role's holder as this node last saw it.
	Leader() LeaderInfo
	// Leading reports whether this node holds the scheduler role with this token and its lease runs now. Check
	// it right before every action that must not overlap with another leader's: the context given to OnLeader
	// is cancelled on loss too, but a process that was frozen may run a step before it sees that.
	Leading(token uint64) bool
	// LeaderWrite writes value at KVPrefix+key (nil value: deletes the key) in a transaction that fails unless
	// this node's session still holds the scheduler lock, and only while Leading(token). A failed session
	// check is evidence of loss: the role is given up at once and ErrNotLeader returned.
	LeaderWrite(ctx context.Context, token uint64, key string, value []byte) error
}

// Options are the hooks and the logger; the zero value is valid.
type Options struct {
	// OnLeader runs in its own goroutine each time this node starts acting as scheduler: when it gains the role,
	// and again when it resumes after a suspension. ctx is cancelled the moment the role is lost, suspended or
	// given up; OnLeader should return soon after, and Run waits for it (up to 5 s) before releasing the role.
	// token is the fencing token: attach it to every order, and reject orders with a token lower than the
	// highest seen.
	OnLeader func(ctx context.Context, token uint64)
	// OnEvent is called for every election event and every change of Health, from discovery's goroutines,
	// possibly several at once: it must not block.
	OnEvent func(Event)
	// Logger receives discovery's logs; nil means slog.Default.
	Logger *slog.Logger
}

// Errors callers can test with errors.Is.
var (
	// ErrNotLeader: the write was refused because this node does not lead with that token, its lease ran out,
	// or Consul said another session holds the lock.
	ErrNotLeader = errors.New("discovery: not the scheduler leader")
	// ErrStandalone: leader writes need Consul KV, which a node without [consul] enabled does not have.
	ErrStandalone = errors.New("discovery: consul is disabled: leader writes need [consul] enabled")
)

// Role is the one role glmd elects a leader for.
const Role = "scheduler"

// LeaderInfo describes the scheduler role's holder; glmctl leader prints it. The zero Node means nobody holds
// the role (or this node has not been able to read it; see Err).
type LeaderInfo struct {
	// Node, Address and Since are the holder's node name, advertise address and start, from the leader key.
	Node    string    `json:"node"`
	Address string    `json:"address,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	// Token is the holder's fencing token (0 until it has written it).
	Token uint64 `json:"token"`
	// Self is true when this node holds the role.
	Self bool `json:"self"`
	// Suspended: this node holds the lock but its lease ran out without news from Consul; it does not act
	// until a consistent read confirms the lock is still its own.
	Suspended bool `json:"suspended,omitempty"`
	// LeaseUntil is when this node's lease ends unless renewed (only when Self).
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// Standalone: Consul is disabled and this node is its own scheduler.
	Standalone bool `json:"standalone,omitempty"`
	// Err is the election's last error, empty when its last step succeeded.
	Err string `json:"error,omitempty"`
}

// Health says whether discovery keeps Consul in step with the desired state. glmctl status and the
// glmd_consul_* metrics show it.
type Health struct {
	// Enabled is false for NewStandalone.
	Enabled bool `json:"enabled"`
	// OK is true when the last push to Consul succeeded and nothing is pending.
	OK bool `json:"ok"`
	// Reason says why not OK: the last error, e.g. "consul unreachable: dial tcp ...: connection refused".
	Reason string `json:"reason,omitempty"`
	// Since is when OK last changed.
	Since time.Time `json:"since,omitzero"`
	// LastSync is when Consul last matched the desired state completely.
	LastSync time.Time `json:"last_sync,omitzero"`
	// Failures counts the failed attempts since the last success.
	Failures int `json:"failures,omitempty"`
	// Services is how many services glmd wants registered (the node's own included).
	Services int `json:"services"`
}

// EventKind is what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventLeaderGained: this node acquired the scheduler role (Token set).
	EventLeaderGained EventKind = iota + 1
	// EventLeaderLost: this node stopped being scheduler because of evidence (another session holds the key,
	// the key is gone, a leader write's session check failed) or because it stopped (Reason says which).
	EventLeaderLost
	// EventLeaderSuspended: the lease ran out without news from Consul; the node holds the lock but does not act.
	EventLeaderSuspended
	// EventLeaderResumed: a consistent read confirmed the lock after a suspension.
	EventLeaderResumed
	// EventLeaderChanged: another node holds the role now (Leader names it), or nobody does (Leader empty).
	EventLeaderChanged
	// EventDegraded: pushing to Consul failed (Reason says why); Health().OK is false.
	EventDegraded
	// EventRecovered: Consul follows the desired state again.
	EventRecovered
)

var eventKindNames = [...]string{
	EventLeaderGained:    "leader_gained",
	EventLeaderLost:      "leader_lost",
	EventLeaderSuspended: "leader_suspended",
	EventLeaderResumed:   "leader_resumed",
	EventLeaderChanged:   "leader_changed",
	EventDegraded:        "consul_degraded",
	EventRecovered:       "consul_recovered",
}

// String returns the kind's stable name ("leader_gained", "consul_degraded", ...), used in events and logs.
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "unknown"
}

// Event is one change of the election or of Consul's reachability.
type Event struct {
	Kind EventKind
	Time time.Time
	// Leader is the node holding the role after the event ("" when nobody does); Token its fencing token.
	Leader string
	Token  uint64
	// Reason explains losses, suspensions and degradation.
	Reason string
}
