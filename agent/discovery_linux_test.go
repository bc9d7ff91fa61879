package agent

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/config"
	"github.com/open-autoglm/glmd/internal/consultest"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// TestAgent_Consul registers a task's instances in a real Consul agent,
// follows their readiness, elects this node as scheduler, and cleans up.
func TestAgent_Consul(t *testing.T) {
	c := consultest.Start(t, consultest.Options{})
	cc := c.Client(t)
	ta := startAgentWith(t, func(cfg *config.Agent) {
		cfg.Dev = false // --dev never talks to Consul
		cfg.Consul = config.Consul{Enabled: true, Address: c.Address(), KVPrefix: "glmd/", ServicePrefix: "glmd",
			Labels: map[string]string{"rack": "r12"}}
	})
	ta.write("glm.toml", ta.healthTask(`
instances = 2
[service]
name = "glm-4"
tags = ["vllm", "i{{.Instance}}"]
meta = { model = "glm-4-9b" }
[[health]]
role = "readiness"
type = "http"
url = "http://127.0.0.1:{{.Port}}/health"
interval = "100ms"
timeout = "100ms"
failure_threshold = 1
`))
	health := func() []*consul.ServiceEntry {
		entries, _, err := cc.Health().Service("glm-4", "", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return entries
	}
	passing := func(e *consul.ServiceEntry, id string) string {
		for _, chk := range e.Checks {
			if strings.HasSuffix(chk.CheckID, ":ready") {
				return chk.Status
			}
		}
		return "none"
	}
	testenv.Eventually(t, 30*time.Second, func() bool {
		es := health()
		return len(es) == 2 && passing(es[0], "") == "passing" && passing(es[1], "") == "passing"
	}, "glm-4 not registered and passing twice: %+v", health())
	for _, e := range health() {
		m := e.Service.Meta
		if m["task"] != "glm" || m["node"] != "node-a" || m["model"] != "glm-4-9b" || !slices.Contains(e.Service.Tags, "vllm") {
			t.Errorf("service %s: meta %v tags %v", e.Service.ID, m, e.Service.Tags)
		}
		if r, _ := ta.row("glm", mustAtoi(t, m["instance"])); e.Service.Port != r.Ports["port"] {
			t.Errorf("service %s port %d, instance port %d", e.Service.ID, e.Service.Port, r.Ports["port"])
		}
	}
	// The node's own service carries the labels and the GPU counts.
	nodeSvc, _, err := cc.Catalog().Service("glmd", "", nil)
	if err != nil || len(nodeSvc) != 1 || nodeSvc[0].ServiceMeta["rack"] != "r12" || nodeSvc[0].ServiceMeta["gpu_count"] == "" {
		t.Errorf("glmd service: %+v, %v", nodeSvc, err)
	}
	// Readiness lost: critical, with the probe's message; the worker runs on.
	ta.switchHealth("glm", 1, "unhealthy")
	testenv.Eventually(t, 30*time.Second, func() bool {
		for _, e := range health() {
			if e.Service.Meta["instance"] == "1" {
				return passing(e, "") == "critical"
			}
		}
		return false
	}, "glm:1 not critical after its readiness failed")
	// This node is the scheduler: the only contender.
	testenv.Eventually(t, 30*time.Second, func() bool {
		l, err := ta.client.Leader(context.Background())
		return err == nil && l.Mode == "consul" && l.Self && l.Holder == "node-a" && l.Token > 0
	}, "node-a is not the leader")
	// Removing the task deregisters its instances.
	ta.remove("glm.toml")
	ta.waitGone("glm")
	testenv.Eventually(t, 30*time.Second, func() bool { return len(health()) == 0 }, "glm-4 still registered")
	// Stopping glmd deregisters the node and releases the role.
	ta.stop()
	if svc, _, err := cc.Catalog().Service("glmd", "", nil); err != nil || len(svc) != 0 {
		t.Errorf("after stop glmd service %+v, %v", svc, err)
	}
	if kv, _, err := cc.KV().Get("glmd/leader/scheduler", nil); err != nil || (kv != nil && kv.Session != "") {
		t.Errorf("after stop the lock is still held: %+v, %v", kv, err)
	}
}

// TestAgent_ConsulOutageKeepsWorkers freezes Consul: the workers are not
// touched, discovery says it is degraded, and catches up afterwards.
func TestAgent_ConsulOutageKeepsWorkers(t *testing.T) {
	c := consultest.Start(t, consultest.Options{})
	ta := startAgentWith(t, func(cfg *config.Agent) {
		cfg.Dev = false
		cfg.Consul = config.Consul{Enabled: true, Address: c.Address(), KVPrefix: "glmd/", ServicePrefix: "glmd"}
	})
	ta.write("w.toml", ta.taskFile("port = 0\n[service]\nname = \"w\"", "-sleep"))
	first := ta.waitState("w", 0, "running")
	testenv.Eventually(t, 30*time.Second, func() bool {
		l, err := ta.client.Leader(context.Background())
		return err == nil && l.Self && l.Degraded == ""
	}, "node-a never led")
	c.Freeze(t)
	testenv.Eventually(t, 30*time.Second, func() bool {
		l, err := ta.client.Leader(context.Background())
		return err == nil && (l.Degraded != "" || l.Suspended || !l.Self)
	}, "discovery did not notice Consul frozen")
	c.Thaw(t)
	cc := c.Client(t)
	testenv.Eventually(t, 30*time.Second, func() bool {
		svc, _, err := cc.Catalog().Service("w", "", nil)
		l, lerr := ta.client.Leader(context.Background())
		return err == nil && len(svc) == 1 && lerr == nil && l.Degraded == "" && l.Self
	}, "not caught up after Consul came back")
	if r, _ := ta.row("w", 0); r.PID != first.PID || r.Restarts != 0 {
		t.Errorf("the worker was touched: %+v, was %+v", r, first)
	}
	if !slices.ContainsFunc(ta.events(), func(e api.Event) bool { return e.Type == "discovery" }) {
		t.Error("no discovery events")
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}
