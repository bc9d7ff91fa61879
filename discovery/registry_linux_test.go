package discovery

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/open-autoglm/glmd/internal/consultest"
)

const wait = 20 * time.Second // generous: shared 2-core machines under -race

// TestRegistry_NodeAndInstances: the node's glmd service and each worker instance appear in the catalog with
// their meta, tags and port, and their checks pass.
func TestRegistry_NodeAndInstances(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{})
	c := a.Client(t)
	n := startNode(t, a, "gpu01", func(c *Config) { c.AdvertiseAddress = "10.1.2.3" })
	n.SetNodeMeta(map[string]string{"gpu_count": "8", "gpu_free": "6", "bad key": "dropped"})
	n.SetInstance(Instance{Task: "glm-serve", Index: 0, Name: "glm", Port: 8000, Tags: []string{"glm-4", "http"},
		Meta: map[string]string{"model": "glm-4"}, GPUs: []string{"GPU-0", "GPU-1"}, State: "running", Ready: true,
		Message: "serving"})
	n.SetInstance(Instance{Task: "glm-serve", Index: 1, Name: "glm", Port: 8001, State: "running", Ready: true})

	var node, glm []*api.ServiceEntry
	eventually(t, wait, func() bool {
		node, glm = catalogService(t, c, "glmd"), catalogService(t, c, "glm")
		return len(node) == 1 && len(glm) == 2 && node[0].Service.Meta["gpu_free"] == "6" &&
			node[0].Checks.AggregatedStatus() == api.HealthPassing && glm[0].Checks.AggregatedStatus() == api.HealthPassing &&
			glm[1].Checks.AggregatedStatus() == api.HealthPassing
	}, "node service and two passing instances in the catalog")

	wantNode := map[string]string{"node": "gpu01", "version": "test", "rack": "r1", "gpu_count": "8", "gpu_free": "6"}
	if s := node[0].Service; s.ID != "glmd-gpu01" || !maps.Equal(s.Meta, wantNode) || s.Address != "10.1.2.3" {
		t.Errorf("node service %s at %q meta %v; want glmd-gpu01 at 10.1.2.3 meta %v", s.ID, s.Address, s.Meta, wantNode)
	}
	slices.SortFunc(glm, func(x, y *api.ServiceEntry) int { return x.Service.Port - y.Service.Port })
	s := glm[0].Service
	wantMeta := map[string]string{"node": "gpu01", "task": "glm-serve", "instance": "0", "gpus": "GPU-0,GPU-1", "model": "glm-4"}
	if s.ID != "glmd-gpu01-glm-serve-0" || s.Port != 8000 || !slices.Equal(s.Tags, []string{"glm-4", "http"}) ||
		!maps.Equal(s.Meta, wantMeta) {
		t.Errorf("instance 0: %s port %d tags %v meta %v; want meta %v", s.ID, s.Port, s.Tags, s.Meta, wantMeta)
	}
	if s := glm[1].Service; s.ID != "glmd-gpu01-glm-serve-1" || s.Meta["instance"] != "1" || s.Meta["gpus"] != "" {
		t.Errorf("instance 1: %s meta %v", s.ID, s.Meta)
	}
	if h := n.Health(); !h.OK || h.Services != 3 {
		t.Errorf("Health = %+v, want OK with 3 services", h)
	}
}

// TestRegistry_CheckFollowsReadiness: the readiness check is passing when ready, warning while starting, critical
// otherwise, with the last message as its output.
func TestRegistry_CheckFollowsReadiness(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{})
	c := a.Client(t)
	n := startNode(t, a, "gpu01", nil)
	steps := []struct {
		in         Instance
		wantStatus string
		wantOutput string
	}{
		{Instance{State: "starting", Starting: true, Message: "loading weights"}, api.HealthWarning, "loading weights"},
		{Instance{State: "running", Ready: true, Message: "ready: GET /health 200"}, api.HealthPassing, "ready: GET /health 200"},
		{Instance{State: "running", Ready: true, Message: "still fine"}, api.HealthPassing, "still fine"},
		{Instance{State: "running", Message: "GET /health: 503"}, api.HealthCritical, "GET /health: 503"},
		{Instance{State: "backoff"}, api.HealthCritical, "backoff"},
	}
	for _, st := range steps {
		in := st.in
		in.Task, in.Port = "web", 9000
		n.SetInstance(in)
		var chk *api.AgentCheck
		eventually(t, wait, func() bool {
			chk = agentCheck(t, c, "glmd-gpu01-web-0:ready")
			return chk != nil && chk.Status == st.wantStatus && chk.Output == st.wantOutput
		}, "readiness check %s %q (last seen: %+v)", st.wantStatus, st.wantOutput, chk)
		// Status changes reach the catalog at once (output-only changes follow Consul's check_update_interval).
		eventually(t, wait, func() bool {
			e := catalogService(t, c, "web")
			return len(e) == 1 && checkStatus(e[0], "glmd-gpu01-web-0:ready") == st.wantStatus
		}, "catalog shows %s", st.wantStatus)
	}
	// The instance's aggregate health also follows the agent: stop the heartbeat and the alias check turns
	// critical although readiness still says passing.
	n.SetInstance(Instance{Task: "web", Port: 9000, State: "running", Ready: true})
	eventually(t, wait, func() bool {
		e := catalogService(t, c, "web")
		return len(e) == 1 && e[0].Checks.AggregatedStatus() == api.HealthPassing
	}, "instance passing")
	n.beating.Store(false)
	eventually(t, wait, func() bool {
		e := catalogService(t, c, "web")
		return len(e) == 1 && checkStatus(e[0], "glmd-gpu01-web-0:agent") == api.HealthCritical
	}, "instance's glmd agent alias critical once the main loop stopped heartbeating")
	n.beating.Store(true)
}

func checkStatus(e *api.ServiceEntry, id string) string {
	for _, c := range e.Checks {
		if c.CheckID == id {
			return c.Status
		}
	}
	return ""
}

// TestRegistry_Deregistration: an instance is deregistered when removed, when it stops, when Sync leaves it
// out, and everything (the node's own service last) when Run ends.
func TestRegistry_Deregistration(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{})
	c := a.Client(t)
	n := startNode(t, a, "gpu01", nil)
	for i := range 4 {
		n.SetInstance(Instance{Task: "web", Index: i, Port: 9000 + i, State: "running", Ready: true})
	}
	instances := func() []string {
		var ids []string
		for _, e := range catalogService(t, c, "web") {
			ids = append(ids, e.Service.ID)
		}
		slices.Sort(ids)
		return ids
	}
	expect := func(want ...string) {
		t.Helper()
		var got []string
		eventually(t, wait, func() bool { got = instances(); return slices.Equal(got, want) },
			"instances %v (last seen %v)", want, got)
	}
	expect("glmd-gpu01-web-0", "glmd-gpu01-web-1", "glmd-gpu01-web-2", "glmd-gpu01-web-3")
	n.RemoveInstance("web", 3)
	expect("glmd-gpu01-web-0", "glmd-gpu01-web-1", "glmd-gpu01-web-2")
	n.SetInstance(Instance{Task: "web", Index: 2, Port: 9002, State: "stopped"})
	expect("glmd-gpu01-web-0", "glmd-gpu01-web-1")
	n.Sync([]Instance{{Task: "web", Index: 1, Port: 9001, State: "running", Ready: true},
		{Task: "web", Index: 5, Port: 9005, State: "starting", Starting: true}})
	expect("glmd-gpu01-web-1", "glmd-gpu01-web-5")

	n.stop()
	if got := instances(); len(got) != 0 {
		t.Errorf("after shutdown: instances %v still registered", got)
	}
	if got := catalogService(t, c, "glmd"); len(got) != 0 {
		t.Errorf("after shutdown: node service still registered: %v", got[0].Service.ID)
	}
}

// TestRegistry_StaleCleanedOnStart: registrations an earlier glmd of this node left behind are removed when
// glmd starts; other nodes' and foreign services are left alone; the node's own service is adopted.
func TestRegistry_StaleCleanedOnStart(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{})
	c := a.Client(t)
	for _, s := range []*api.AgentServiceRegistration{
		{ID: "glmd-gpu01-old-0", Name: "old", Meta: map[string]string{"node": "gpu01"}},     // stale: ours
		{ID: "glmd-gpu01-web-0", Name: "web", Meta: map[string]string{"node": "gpu01"}},     // wanted, but outdated
		{ID: "glmd-gpu01-x-web-0", Name: "web", Meta: map[string]string{"node": "gpu01-x"}}, // another glmd node
		{ID: "redis", Name: "redis", Meta: map[string]string{"node": "gpu01"}},              // not glmd's
	} {
		if err := c.Agent().ServiceRegister(s); err != nil {
			t.Fatal(err)
		}
	}
	n := startNode(t, a, "gpu01", nil)
	n.SetInstance(Instance{Task: "web", Port: 9000, State: "running", Ready: true})
	eventually(t, wait, func() bool {
		svcs, err := c.Agent().Services()
		if err != nil {
			t.Fatal(err)
		}
		web := svcs["glmd-gpu01-web-0"]
		_, old := svcs["glmd-gpu01-old-0"]
		return !old && svcs["glmd-gpu01-x-web-0"] != nil && svcs["redis"] != nil && svcs["glmd-gpu01"] != nil &&
			web != nil && web.Port == 9000 && web.Meta["task"] == "web"
	}, "stale service removed, outdated one re-registered, foreign ones kept")
}

// TestRegistry_ResyncAfterConsulLoss: a -dev agent restarted loses every registration; discovery reports the
// outage through Health and events, and registers everything again when the agent is back, without a restart.
func TestRegistry_ResyncAfterConsulLoss(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{})
	c := a.Client(t)
	n := startNode(t, a, "gpu01", func(c *Config) { c.ResyncInterval = time.Hour }) // only recovery may resync
	n.SetInstance(Instance{Task: "web", Port: 9000, State: "running", Ready: true, Message: "serving"})
	eventually(t, wait, func() bool { return len(catalogService(t, c, "web")) == 1 && n.Health().OK }, "registered")

	a.Stop(t)
	n.SetInstance(Instance{Task: "web", Port: 9000, State: "running", Message: "GET /health: 503"}) // must not block
	eventually(t, wait, func() bool { return !n.Health().OK }, "Health degraded while consul is down")
	if h := n.Health(); h.Reason == "" || h.Failures == 0 {
		t.Errorf("degraded Health without a reason: %+v", h)
	}
	a.Start(t)
	eventually(t, wait, func() bool {
		e := catalogService(t, c, "web")
		return len(e) == 1 && checkStatus(e[0], "glmd-gpu01-web-0:ready") == api.HealthCritical &&
			len(catalogService(t, c, "glmd")) == 1 && n.Health().OK
	}, "registrations restored with the readiness set while consul was away")
	kinds := n.eventKinds()
	if !slices.Contains(kinds, EventDegraded) || !slices.Contains(kinds, EventRecovered) {
		t.Errorf("events %v; want consul_degraded and consul_recovered", kinds)
	}
}
