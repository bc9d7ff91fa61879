package discovery

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func testConfig() Config {
	c, err := Config{NodeName: "gpu01", Version: "1.2.3", Labels: map[string]string{"rack": "r7"}}.withDefaults()
	if err != nil {
		panic(err)
	}
	return c
}

func TestReadiness(t *testing.T) {
	tests := []struct {
		name                string
		in                  Instance
		wantStatus, wantOut string
	}{
		{"ready", Instance{State: "running", Ready: true, Message: "serving"}, statusPassing, "serving"},
		{"starting", Instance{State: "starting", Starting: true, Message: "loading weights"}, statusWarning, "loading weights"},
		{"not ready", Instance{State: "running", Message: "GET /health: 503"}, statusCritical, "GET /health: 503"},
		{"backoff, no message", Instance{State: "backoff"}, statusCritical, "backoff"},
		{"ready wins over starting", Instance{State: "running", Ready: true, Starting: true}, statusPassing, "running"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := readiness(tc.in)
			if status != tc.wantStatus || out != tc.wantOut {
				t.Errorf("readiness = %q, %q; want %q, %q", status, out, tc.wantStatus, tc.wantOut)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	for state, want := range map[string]bool{"pending": true, "starting": true, "running": true, "backoff": true,
		"stopping": true, "stopped": false, "exited": false, "failed": false} {
		if got := registered(Instance{State: state}); got != want {
			t.Errorf("registered(%s) = %v, want %v", state, got, want)
		}
	}
}

func TestInstanceRegistration(t *testing.T) {
	c := testConfig()
	n := ids{prefix: c.ServicePrefix, node: c.NodeName}
	in := Instance{Task: "glm-serve", Index: 2, Name: "glm", Port: 8002, Tags: []string{"v4"},
		Meta: map[string]string{"model": "glm-4", "task": "spoofed", "bad key": "x", "consul-x": "y"},
		GPUs: []string{"GPU-a", "GPU-b"}, State: "running", Ready: true, Message: "ok"}
	reg := instanceRegistration(c, n, in)
	if reg.svc.ID != "glmd-gpu01-glm-serve-2" || reg.svc.Name != "glm" || reg.svc.Port != 8002 {
		t.Errorf("ID, name, port = %s, %s, %d", reg.svc.ID, reg.svc.Name, reg.svc.Port)
	}
	want := map[string]string{"model": "glm-4", "task": "glm-serve", "instance": "2", "node": "gpu01", "gpus": "GPU-a,GPU-b"}
	if !maps.Equal(reg.svc.Meta, want) {
		t.Errorf("meta = %v, want %v", reg.svc.Meta, want)
	}
	if reg.status != statusPassing || reg.output != "ok" || reg.checkID != "glmd-gpu01-glm-serve-2:ready" {
		t.Errorf("check = %s %q %q", reg.checkID, reg.status, reg.output)
	}
	if len(reg.svc.Checks) != 2 || reg.svc.Checks[1].AliasService != "glmd-gpu01" {
		t.Errorf("checks = %+v, want readiness TTL and an alias of glmd-gpu01", reg.svc.Checks)
	}
	if !n.owns(&api.AgentService{ID: reg.svc.ID, Meta: reg.svc.Meta}) {
		t.Error("glmd does not recognise its own instance service")
	}

	// Readiness alone changes no registration; anything Consul shows does.
	same := in
	same.Ready, same.Message = false, "down"
	if instanceRegistration(c, n, same).hash != reg.hash {
		t.Error("a readiness change alters the registration hash: it would re-register")
	}
	for name, mod := range map[string]func(*Instance){
		"port": func(i *Instance) { i.Port++ },
		"tags": func(i *Instance) { i.Tags = []string{"v5"} },
		"gpus": func(i *Instance) { i.GPUs = []string{"GPU-c"} },
		"meta": func(i *Instance) { i.Meta = map[string]string{"model": "glm-5"} },
		"name": func(i *Instance) { i.Name = "other" },
	} {
		changed := in
		mod(&changed)
		if instanceRegistration(c, n, changed).hash == reg.hash {
			t.Errorf("changing %s keeps the hash: it would not re-register", name)
		}
	}
}

func TestNodeRegistration(t *testing.T) {
	c := testConfig()
	n := ids{prefix: c.ServicePrefix, node: c.NodeName}
	reg := nodeRegistration(c, n, map[string]string{"gpu_free": "3", "node": "spoofed", "bad key": "x"})
	want := map[string]string{"rack": "r7", "gpu_free": "3", "node": "gpu01", "version": "1.2.3"}
	if reg.svc.ID != "glmd-gpu01" || reg.svc.Name != "glmd" || !maps.Equal(reg.svc.Meta, want) {
		t.Errorf("node service = %s %s %v; want glmd-gpu01 glmd %v", reg.svc.ID, reg.svc.Name, reg.svc.Meta, want)
	}
	chk := reg.svc.Checks[0]
	if chk.CheckID != "glmd-gpu01:alive" || chk.TTL != c.CheckTTL.String() || chk.Status != statusPassing {
		t.Errorf("node check = %+v", chk)
	}
}

func TestIDs_Owns(t *testing.T) {
	n := ids{prefix: "glmd", node: "a"}
	tests := []struct {
		svc  api.AgentService
		want bool
	}{
		{api.AgentService{ID: "glmd-a", Meta: map[string]string{"node": "a"}}, true},
		{api.AgentService{ID: "glmd-a-web-0", Meta: map[string]string{"node": "a"}}, true},
		{api.AgentService{ID: "glmd-a-b-web-0", Meta: map[string]string{"node": "a-b"}}, false}, // node "a-b"
		{api.AgentService{ID: "glmd-a-web-0"}, false},                                           // no meta: not ours
		{api.AgentService{ID: "web", Meta: map[string]string{"node": "a"}}, false},
		{api.AgentService{ID: "glmd-ab", Meta: map[string]string{"node": "a"}}, false},
	}
	for _, tc := range tests {
		if got := n.owns(&tc.svc); got != tc.want {
			t.Errorf("owns(%s, node=%s) = %v, want %v", tc.svc.ID, tc.svc.Meta["node"], got, tc.want)
		}
	}
	if id := n.instanceService("my task/x", 1); id != "glmd-a-my_task_x-1" {
		t.Errorf("instance ID with odd characters = %s", id)
	}
}

func TestConfig_Defaults(t *testing.T) {
	c, err := Config{NodeName: "n1", KVPrefix: "fleet"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Address != DefaultAddress || c.KVPrefix != "fleet/" || c.ServicePrefix != "glmd" ||
		c.CheckTTL != DefaultCheckTTL || c.LockDelay != DefaultLockDelay || c.ResyncInterval != DefaultResyncInterval {
		t.Errorf("defaults: %+v", c)
	}
	if lease := c.LockDelay - c.leaseMargin(); lease <= 0 || lease >= c.LockDelay {
		t.Errorf("lease %v outside (0, lock delay)", lease)
	}
}

func TestConfig_Invalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no node", Config{}, "node name is empty"},
		{"odd node", Config{NodeName: "a/b"}, "node name"},
		{"short ttl", Config{NodeName: "n", CheckTTL: time.Millisecond}, "check TTL"},
		{"long delay", Config{NodeName: "n", LockDelay: 2 * time.Minute}, "lock delay"},
		{"half tls", Config{NodeName: "n", TLS: TLSConfig{CertFile: "c.pem"}}, "cert_file and key_file"},
		{"bad label", Config{NodeName: "n", Labels: map[string]string{"a b": "c"}}, `label "a b"`},
		{"absolute kv prefix", Config{NodeName: "n", KVPrefix: "/glmd/"}, "kv_prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, Options{})
			if !errors.Is(err, errConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v; want a config error containing %q", err, tc.want)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	r := newTestRand()
	var prev time.Duration
	for n := 1; n <= 12; n++ {
		d := retryDelay(n, r)
		if d < retryBase*8/10 || d > retryMax*12/10 {
			t.Errorf("retryDelay(%d) = %v, outside [%v, %v]", n, d, retryBase*8/10, retryMax*12/10)
		}
		if n <= 3 && d < prev*13/10 {
			t.Errorf("retryDelay(%d) = %v does not grow from %v", n, d, prev)
		}
		prev = d
	}
}

func TestEventKind_String(t *testing.T) {
	names := map[string]bool{}
	for k := EventLeaderGained; k <= EventRecovered; k++ {
		s := k.String()
		if s == "unknown" || names[s] {
			t.Errorf("kind %d: name %q missing or repeated", k, s)
		}
		names[s] = true
	}
	if got := slices.Sorted(maps.Keys(names)); len(got) != 7 {
		t.Errorf("names = %v", got)
	}
}
