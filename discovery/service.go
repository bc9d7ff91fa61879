package discovery

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Instance is one worker instance as Consul should show it: one service instance per worker instance of a task
// with a [service] block.
type Instance struct {
	// Task and Index name the instance; together they are its identity.
	Task  string
	Index int
	// Name is the Consul service name ([service] name); empty means Task.
	Name string
	// Port the worker listens on; 0 registers no port.
	Port int
	// Tags and Meta from the [service] block. Meta keys task, instance, node and gpus are glmd's and win.
	Tags []string
	Meta map[string]string
	// GPUs are the UUIDs of the GPUs the instance holds.
	GPUs []string
	// State is the supervisor state ("running", "backoff", ...). An instance in state stopped, exited or
	// failed is not registered: it is deregistered as if removed.
	State string
	// Ready, Starting and Message drive the readiness check: passing when Ready, warning while Starting,
	// critical otherwise; the check's output is Message (State when Message is empty).
	Ready    bool
	Starting bool
	Message  string
}

// Check statuses, as Consul spells them.
const (
	statusPassing  = api.HealthPassing
	statusWarning  = api.HealthWarning
	statusCritical = api.HealthCritical
)

// Meta keys glmd sets; user meta cannot override them.
const (
	metaNode     = "node"
	metaTask     = "task"
	metaInstance = "instance"
	metaGPUs     = "gpus"
	metaVersion  = "version"
)

// instanceCheckTTL is the TTL of an instance's readiness check. Readiness is pushed when it changes and
// refreshed by anti-entropy long before this runs out, so it only expires when glmd's sync loop is gone; the
// alias check on the node service turns the instance critical much sooner when glmd dies.
const instanceCheckTTL = 10 * time.Minute

// registration is one service glmd wants on the agent, with the status and output of its TTL check.
type registration struct {
	svc     *api.AgentServiceRegistration
	checkID string
	hash    uint64
	// status and output of the TTL check: for instances, from readiness; the node's check is pushed by the
	// heartbeat, not by the registry.
	status string
	output string
	// checkTTL is how long a pushed status lasts; the registry refreshes it at half.
	checkTTL time.Duration
}

// ids is the naming scheme of everything glmd registers for one node.
type ids struct {
	prefix, node string
}

// nodeService is the ID of the node's own agent service; its name is the prefix.
func (n ids) nodeService() string { return n.prefix + "-" + n.node }

// nodeCheck is the ID of the agent's TTL check, the one the heartbeat passes and the session is bound to.
func (n ids) nodeCheck() string { return n.nodeService() + ":alive" }

// instanceService is the ID of one worker instance's service.
func (n ids) instanceService(task string, index int) string {
	return n.nodeService() + "-" + idSafe(task) + "-" + strconv.Itoa(index)
}

// idSafe replaces what would need escaping in a service ID (it travels in URL paths) with '_'.
func idSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// owns reports whether the agent service svc was registered by this node's glmd: its ID has the node's prefix
// and its meta names the node (the meta tells node "a" from node "a-b", whose IDs share a prefix).
func (n ids) owns(svc *api.AgentService) bool {
	if svc.Meta[metaNode] != n.node {
		return false
	}
	return svc.ID == n.nodeService() || strings.HasPrefix(svc.ID, n.nodeService()+"-")
}

// nodeRegistration builds the node's agent service: meta from the labels, the version and the agent's dynamic
// meta (GPU counts), and the TTL check the heartbeat passes. It starts passing: the session can be created at
// once, and a missing heartbeat turns it critical after one TTL.
func nodeRegistration(c Config, n ids, dynamic map[string]string) registration {
	meta := map[string]string{}
	maps.Copy(meta, c.Labels)
	for k, v := range dynamic {
		if validMetaPair(k, v) == nil {
			meta[k] = v
		}
	}
	meta[metaNode] = c.NodeName
	if c.Version != "" {
		meta[metaVersion] = c.Version
	}
	checkID := n.nodeCheck()
	svc := &api.AgentServiceRegistration{
		ID:      n.nodeService(),
		Name:    n.prefix,
		Address: c.AdvertiseAddress,
		Meta:    meta,
		Checks: api.AgentServiceChecks{{
			CheckID: checkID,
			Name:    "glmd agent alive",
			Notes:   "passed by glmd's main loop; critical when glmd is dead or stuck. The scheduler session is bound to it.",
			TTL:     c.CheckTTL.String(),
			Status:  statusPassing,
		}},
	}
	return registration{svc: svc, checkID: checkID, hash: hashRegistration(svc), checkTTL: c.CheckTTL}
}

// instanceRegistration builds the service of one worker instance: a readiness TTL check that glmd pushes, and
// an alias of the node service, so that the instance turns critical when nobody vouches for its readiness any
// more (glmd dead or stuck).
func instanceRegistration(c Config, n ids, in Instance) registration {
	meta := map[string]string{}
	for k, v := range in.Meta {
		if validMetaPair(k, v) == nil {
			meta[k] = v
		}
	}
	meta[metaNode] = c.NodeName
	meta[metaTask] = in.Task
	meta[metaInstance] = strconv.Itoa(in.Index)
	meta[metaGPUs] = strings.Join(in.GPUs, ",")
	name := in.Name
	if name == "" {
		name = in.Task
	}
	id := n.instanceService(in.Task, in.Index)
	checkID := id + ":ready"
	status, output := readiness(in)
	svc := &api.AgentServiceRegistration{
		ID:      id,
		Name:    name,
		Address: c.AdvertiseAddress,
		Port:    in.Port,
		Tags:    slices.Clone(in.Tags),
		Meta:    meta,
		Checks: api.AgentServiceChecks{
			{
				CheckID: checkID,
				Name:    "readiness",
				Notes:   "the worker's readiness as glmd's health probes see it; the output is the last message",
				TTL:     instanceCheckTTL.String(),
				Status:  status,
			},
			{
				CheckID:      id + ":agent",
				Name:         "glmd agent",
				Notes:        "alias of the node's glmd service: critical when glmd, which reports readiness, is dead or stuck",
				AliasService: n.nodeService(),
			},
		},
	}
	return registration{svc: svc, checkID: checkID, hash: hashRegistration(svc), status: status, output: output,
		checkTTL: instanceCheckTTL}
}

// readiness maps an instance to its check's status and output.
func readiness(in Instance) (status, output string) {
	switch {
	case in.Ready:
		status = statusPassing
	case in.Starting:
		status = statusWarning
	default:
		status = statusCritical
	}
	output = in.Message
	if output == "" {
		output = in.State
	}
	if len(output) > maxCheckOutput {
		// Below Consul's check_output_max_size, which would truncate it differently each time; on a rune boundary.
		output = strings.ToValidUTF8(output[:maxCheckOutput], "")
	}
	return status, output
}

// maxCheckOutput bounds a check's output: a message, not a log.
const maxCheckOutput = 1024

// registered reports whether an instance in this state belongs in Consul at all.
func registered(in Instance) bool {
	switch in.State {
	case "stopped", "exited", "failed":
		return false
	}
	return true
}

// hashRegistration fingerprints what a re-registration would change. The initial check status is left out: it
// only matters for a first registration, and readiness is pushed separately.
func hashRegistration(s *api.AgentServiceRegistration) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00", s.ID, s.Name, s.Address, s.Port)
	for _, t := range s.Tags {
		fmt.Fprintf(h, "t%s\x00", t)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Meta)) {
		fmt.Fprintf(h, "m%s=%s\x00", k, s.Meta[k])
	}
	for _, c := range s.Checks {
		fmt.Fprintf(h, "c%s\x00%s\x00%s\x00%s\x00", c.CheckID, c.Name, c.TTL, c.AliasService)
	}
	return h.Sum64()
}

// Limits of Consul's service meta (agent/structs ValidateServiceMetadata).
const (
	metaMaxKeyLen   = 128
	metaMaxValueLen = 512
)

var metaKey = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// invalidMeta lists the keys of m that Consul would refuse, sorted, so that the caller can say which it dropped.
func invalidMeta(m map[string]string) []string {
	var bad []string
	for k, v := range m {
		if validMetaPair(k, v) != nil {
			bad = append(bad, k)
		}
	}
	slices.Sort(bad)
	return bad
}

// validMetaPair says why Consul would refuse this meta pair, or nil.
func validMetaPair(k, v string) error {
	switch {
	case !metaKey.MatchString(k):
		return errors.New("key must be letters, digits, '_' and '-'")
	case len(k) > metaMaxKeyLen:
		return fmt.Errorf("key longer than %d bytes", metaMaxKeyLen)
	case strings.HasPrefix(k, "consul-"):
		return errors.New(`key prefix "consul-" is reserved by Consul`)
	case len(v) > metaMaxValueLen:
		return fmt.Errorf("value longer than %d bytes", metaMaxValueLen)
	}
	return nil
}
