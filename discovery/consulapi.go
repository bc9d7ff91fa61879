package discovery

import (
	"fmt"
	"net/http"

	"github.com/hashicorp/consul/api"
)

// agentAPI is the part of *api.Agent that discovery calls: the node's registrations and TTL checks.
// ACL: service:write on the glmd service names, node:read.
type agentAPI interface {
	ServiceRegisterOpts(s *api.AgentServiceRegistration, opts api.ServiceRegisterOpts) error
	ServiceDeregisterOpts(id string, q *api.QueryOptions) error
	UpdateTTLOpts(checkID, output, status string, q *api.QueryOptions) error
	ServicesWithFilterOpts(filter string, q *api.QueryOptions) (map[string]*api.AgentService, error)
	ChecksWithFilterOpts(filter string, q *api.QueryOptions) (map[string]*api.AgentCheck, error)
}

// sessionAPI is the part of *api.Session the election calls. ACL: session:write on the node.
type sessionAPI interface {
	Create(se *api.SessionEntry, q *api.WriteOptions) (string, *api.WriteMeta, error)
	Destroy(id string, q *api.WriteOptions) (*api.WriteMeta, error)
	List(q *api.QueryOptions) ([]*api.SessionEntry, *api.QueryMeta, error)
}

// kvAPI is the part of *api.KV the election calls: reads of the leader key (writes go through txnAPI).
// ACL: key:read on KVPrefix.
type kvAPI interface {
	Get(key string, q *api.QueryOptions) (*api.KVPair, *api.QueryMeta, error)
}

// txnAPI is *api.Txn: acquire, release and every leader write, each checked against the session.
// ACL: key:write on KVPrefix.
type txnAPI interface {
	Txn(txn api.TxnOps, q *api.QueryOptions) (bool, *api.TxnResponse, *api.QueryMeta, error)
}

var (
	_ agentAPI   = (*api.Agent)(nil) // the real client still fits after an upgrade
	_ sessionAPI = (*api.Session)(nil)
	_ kvAPI      = (*api.KV)(nil)
	_ txnAPI     = (*api.Txn)(nil)
)

// consulAPI bundles the clients of one Consul agent.
type consulAPI struct {
	agent     agentAPI
	session   sessionAPI
	kv        kvAPI
	txn       txnAPI
	transport *http.Transport // to close idle connections when Run ends; nil for unix sockets
}

// newConsulAPI builds the consul/api client from c (defaults applied). It dials nothing.
func newConsulAPI(c Config) (*consulAPI, error) {
	def := api.DefaultConfig()
	transport := def.Transport
	cfg := &api.Config{
		Address:    c.Address,
		Scheme:     "http",
		Datacenter: c.Datacenter,
		Token:      c.Token,
		Transport:  transport,
		TLSConfig: api.TLSConfig{
			Address:  c.TLS.ServerName,
			CAFile:   c.TLS.CAFile,
			CertFile: c.TLS.CertFile,
			KeyFile:  c.TLS.KeyFile,
		},
	}
	if c.TLS.CAFile != "" || c.TLS.CertFile != "" {
		cfg.Scheme = "https"
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		// The error may quote the address, never the token.
		return nil, fmt.Errorf("discovery: consul client for %s: %w", c.Address, err)
	}
	return &consulAPI{
		agent:     client.Agent(),
		session:   client.Session(),
		kv:        client.KV(),
		txn:       client.Txn(),
		transport: transport,
	}, nil
}

// close drops the idle keep-alive connections, so that no goroutine of the HTTP client outlives Run.
func (c *consulAPI) close() {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
}
