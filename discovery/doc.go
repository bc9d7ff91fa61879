// Package discovery connects glmd to Consul: it registers the node and its worker instances, keeps their
// checks in step with readiness, and elects the fleet-wide scheduler. The agent uses it through Client; New
// builds the Consul implementation, NewStandalone the one for a node without Consul (the default), which is
// always its own scheduler.
//
// # What glmd registers
//
// On the local Consul agent (Config.Address; the registrations and the session belong to that agent's node):
//
//   - the node's service: ID "<prefix>-<node>", name "<prefix>" (ServicePrefix, default "glmd"), meta node,
//     version, the Labels and SetNodeMeta (e.g. gpu_count, gpu_free), and the TTL check "<id>:alive" that
//     Heartbeat passes. Its output is the node's role ("scheduler leader since ..., token N" or "follower;
//     scheduler leader is X"): what operators see on the instance page of the Consul UI.
//   - one service per worker instance: ID "<prefix>-<node>-<task>-<i>", the [service] name, port and tags, meta
//     task, instance, node and gpus plus the [service] meta; a readiness TTL check "<id>:ready" (passing when
//     ready, warning while starting, critical otherwise; output: the last message) and an alias check
//     "<id>:agent" of the node's service, so an instance turns critical when glmd, which vouches for its
//     readiness, is dead or stuck.
//
// Setters only record the desired state; one goroutine pushes it: a registration when the definition changed, a
// check update when status or output changed (and every 5 minutes, half the readiness check's 10-minute TTL).
// Every ResyncInterval, on start and whenever Consul answers again after a failure, it compares the agent's
// services with the desired ones (anti-entropy): glmd-owned services of this node that nobody wants (an ID with
// the node's prefix and meta node = the node) are deregistered, missing or altered ones registered again.
// Failures are retried with exponential backoff and jitter (250 ms to 10 s) and reported by Health and events.
// A check's output-only change reaches the catalog (and the UI) only with Consul's check_update_interval (5 min
// by default); status changes are synced at once.
//
// # The scheduler election
//
// The lock is the KV key <kv_prefix>leader/scheduler; its value is JSON {node, address, since, token}. Each
// glmd incarnation creates one session named "<prefix>-scheduler:<node>", bound to serfHealth and to the node's
// TTL check, behaviour release, with an explicit LockDelay and no session TTL; sessions of the same name left by
// an earlier incarnation are destroyed first (a quickly restarted glmd finds its old session alive). api.Lock is
// not used: it retries every 5 s during a lock delay and never tells a partitioned holder that it lost
// (hashicorp/consul#18271). Instead:
//
//   - a blocking query follows the key (wait 30 s, client deadline 30 s + wait/16 + 5 s; a lower index or an
//     error restarts from index 0). When the key has no session, followers acquire it in a transaction that also
//     reads the epoch; a refusal because of the lock delay is retried every ~250 ms.
//   - the leader's lease: every invalidation of a session starts the lock delay, so nobody can acquire before
//     invalidation + LockDelay. A read showing the session still holds the key, sent at t, therefore lets the
//     leader act until t + LockDelay - margin (margin LockDelay/5, at least 50 ms). The leader confirms with a
//     consistent read every LockDelay/3; a successful leader write counts as a confirmation too. When the lease
//     runs out without news (Consul unreachable, frozen), the leader is suspended: OnLeader's context is
//     cancelled, Leading says no, and it resumes only when a consistent read shows its session still holds the
//     key. Evidence of loss (the key deleted, released or held by another session, a leader write's session
//     check failing) ends the role at once.
//   - the fencing token is epoch<<40 | the raft ModifyIndex of the acquiring write, recorded in the key's value.
//     The epoch lives in <kv_prefix>leader/scheduler.epoch and is raised when the index would not exceed the
//     highest token this process has seen (Consul's state was wiped); Config.MinToken carries the highest token
//     across restarts of glmd. Attach the token to every order; receivers reject lower tokens than seen.
//   - LeaderWrite is a transaction [check-session(leader key), set or delete]: Consul refuses it once the session
//     lost the lock, whatever the leader believes.
//   - graceful stop: OnLeader's context is cancelled (Run waits up to 5 s for it), the lock released (no lock
//     delay: a follower takes over in tens of milliseconds), the session destroyed, then the services
//     deregistered. After losing the role a node waits 250-500 ms before contending again.
//
// Residual risks, outside what the lease can cover: a KV delete of the leader key (an operator in the UI)
// releases without lock delay, so a follower may start before the old leader's watch sees the delete (tens of
// milliseconds); Consul servers keep lock delays in memory, so a server restart within LockDelay of an
// invalidation forgets it. Fencing (tokens, LeaderWrite) still protects against both; protect
// <kv_prefix>leader/ with ACLs so that operators can read it but not write it.
//
// # Defaults
//
// CheckTTL 3 s and LockDelay 1.5 s. A SIGKILLed leader is replaced after its check expires (at most CheckTTL
// after its last heartbeat) plus the lock delay: measured 4.4 s median on a 2-core VM. A leader cut off from
// Consul stops acting when its lease ends (1.2 s) and a successor starts about 3 s later. The cost: a main
// loop that stalls for more than about CheckTTL - HeartbeatInterval (2.25 s) loses the role, and a Consul round
// trip slower than about 0.7 s suspends the leader until the next confirmation. Hosts whose main loop can stall
// longer should raise CheckTTL (failover grows with it); LockDelay buys a longer lease at the same price.
package discovery
