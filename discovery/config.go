package discovery

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults for Config. CheckTTL and LockDelay trade failover time against false step-downs; see DefaultCheckTTL.
const (
	// DefaultAddress is the local Consul agent's HTTP API. glmd must talk to the agent on its own host: the
	// registrations and the election's session are tied to that agent's node (its serfHealth).
	DefaultAddress = "127.0.0.1:8500"

	// DefaultKVPrefix is where glmd keeps its keys in Consul KV; the scheduler lock is <prefix>leader/scheduler.
	DefaultKVPrefix = "glmd/"

	// DefaultServicePrefix starts the Consul service ID of everything glmd registers ("glmd-<node>",
	// "glmd-<node>-<task>-<i>") and is the service name of the node's own agent service.
	DefaultServicePrefix = "glmd"

	// DefaultCheckTTL is the TTL of the node's "glmd agent alive" check, which the agent's main loop keeps
	// passing through Heartbeat and which the election's session is bound to. A leader that dies loses the role
	// CheckTTL (at most) after its last heartbeat, plus LockDelay: with 3 s + 1.5 s a SIGKILLed leader is replaced
	// in about 4-4.5 s. The other side: a main loop that stalls for longer than about CheckTTL minus one
	// heartbeat interval (~2.2 s) turns the check critical and the node steps down. Raise both on loaded hosts
	// where the main loop may stall for seconds; lower them only with measurements.
	DefaultCheckTTL = 3 * time.Second

	// DefaultLockDelay is the session's lock delay: after the holder's session is invalidated, Consul refuses the
	// lock to everyone for this long, which is what makes the leader lease safe. The lease is LockDelay minus a
	// margin (1.2 s with the default), renewed every LockDelay/3 by a consistent read, so a Consul round trip
	// slower than ~0.7 s suspends the leader's work until the next read confirms it (a pause, not a step-down).
	// Consul caps it at 60 s; 0 would mean Consul's own default of 15 s, so it is always sent explicitly.
	DefaultLockDelay = 1500 * time.Millisecond

	// DefaultResyncInterval is how often the registrations are compared with the agent's (anti-entropy).
	DefaultResyncInterval = 30 * time.Second
)

// Limits of the values Consul accepts.
const (
	minCheckTTL  = time.Second
	minLockDelay = 100 * time.Millisecond
	maxLockDelay = 60 * time.Second
)

// Config is discovery's part of glmd.toml ([consul]) plus what the agent knows about itself. The zero value of
// each field means its default. Token is a secret: discovery sends it to Consul and nowhere else, and never logs
// it.
type Config struct {
	// Address of the local Consul agent's HTTP API: "host:port", "http://host:port", "https://host:port" or
	// "unix:///path". Empty: DefaultAddress. glmd ignores CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN; consul/api may
	// still fill empty TLS file paths from CONSUL_CACERT, CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY.
	Address string
	// Token is the ACL token (glmd reads [consul] token_file into it). It needs service:write on the glmd
	// service names, session:write on the node, key:write on KVPrefix.
	Token string
	// Datacenter; empty means the agent's own.
	Datacenter string
	// TLS for an https address.
	TLS TLSConfig
	// KVPrefix is the KV folder glmd owns; it ends with "/". Empty: DefaultKVPrefix.
	KVPrefix string
	// ServicePrefix starts every service ID glmd registers and names the agent's own service. Empty:
	// DefaultServicePrefix.
	ServicePrefix string
	// NodeName is glmd's node_name: it names the registrations, the election's session and the leader.
	// Required.
	NodeName string
	// AdvertiseAddress is the address the node's and the workers' services are registered with, and what the
	// leader key says to reach the leader at. Empty: Consul uses its node's address.
	AdvertiseAddress string
	// Labels go into the node service's meta (keys: letters, digits, "_" and "-").
	Labels map[string]string
	// Version of glmd, shown in the node service's meta.
	Version string
	// CheckTTL: see DefaultCheckTTL. At least 1 s.
	CheckTTL time.Duration
	// LockDelay: see DefaultLockDelay. From 100 ms to 60 s.
	LockDelay time.Duration
	// ResyncInterval: see DefaultResyncInterval.
	ResyncInterval time.Duration
	// MinToken is the highest fencing token the agent has seen before this start (persisted by the agent): the
	// tokens this election issues are greater, even when Consul lost its state and its indexes start again.
	MinToken uint64
}

// TLSConfig holds the files for TLS to the Consul agent.
type TLSConfig struct {
	// CAFile verifies the agent's certificate; empty means the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate, for agents that verify incoming connections.
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the agent's certificate (default: the address's host).
	ServerName string
}

// errConfig is the sentinel of every configuration error New returns.
var errConfig = errors.New("discovery: invalid config")

// withDefaults returns c with every zero field set to its default, or an error naming the first bad field.
func (c Config) withDefaults() (Config, error) {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.KVPrefix == "" {
		c.KVPrefix = DefaultKVPrefix
	}
	if !strings.HasSuffix(c.KVPrefix, "/") {
		c.KVPrefix += "/"
	}
	if c.ServicePrefix == "" {
		c.ServicePrefix = DefaultServicePrefix
	}
	if c.CheckTTL == 0 {
		c.CheckTTL = DefaultCheckTTL
	}
	if c.LockDelay == 0 {
		c.LockDelay = DefaultLockDelay
	}
	if c.ResyncInterval == 0 {
		c.ResyncInterval = DefaultResyncInterval
	}
	switch {
	case c.NodeName == "":
		return c, fmt.Errorf("%w: node name is empty: set node_name", errConfig)
	case !validIDPart(c.NodeName):
		return c, fmt.Errorf("%w: node name %q: use letters, digits, '.', '_' and '-'", errConfig, c.NodeName)
	case !validIDPart(c.ServicePrefix):
		return c, fmt.Errorf("%w: service prefix %q: use letters, digits, '.', '_' and '-'", errConfig, c.ServicePrefix)
	case strings.HasPrefix(c.KVPrefix, "/"):
		return c, fmt.Errorf("%w: kv_prefix %q must not start with '/'", errConfig, c.KVPrefix)
	case c.CheckTTL < minCheckTTL:
		return c, fmt.Errorf("%w: check TTL %v is below %v", errConfig, c.CheckTTL, minCheckTTL)
	case c.LockDelay < minLockDelay || c.LockDelay > maxLockDelay:
		return c, fmt.Errorf("%w: lock delay %v is outside %v..%v", errConfig, c.LockDelay, minLockDelay, maxLockDelay)
	case c.ResyncInterval < time.Second:
		return c, fmt.Errorf("%w: resync interval %v is below 1s", errConfig, c.ResyncInterval)
	case (c.TLS.CertFile == "") != (c.TLS.KeyFile == ""):
		return c, fmt.Errorf("%w: tls: set both cert_file and key_file, or neither", errConfig)
	}
	for k, v := range c.Labels {
		if err := validMetaPair(k, v); err != nil {
			return c, fmt.Errorf("%w: label %q: %w", errConfig, k, err)
		}
	}
	return c, nil
}

// heartbeatInterval is how often the agent should call Heartbeat: four chances per TTL, so one late or lost
// update does not turn the check critical.
func (c Config) heartbeatInterval() time.Duration { return c.CheckTTL / 4 }

// leaseMargin is taken off the lock delay to get the lease: it covers the time between Leading saying yes and
// the action taking effect, and clock-rate differences. A fifth, at least 50 ms.
func (c Config) leaseMargin() time.Duration { return max(c.LockDelay/5, 50*time.Millisecond) }

// validIDPart reports whether s may appear in a service ID and a session name without escaping.
func validIDPart(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
