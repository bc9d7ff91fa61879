package consultest_test

import (
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/open-autoglm/glmd/internal/consultest"
	"github.com/open-autoglm/glmd/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestAgent_RestartKeepsState: a persistent agent keeps its KV across Stop and Start, on the same address, and
// answers again after Freeze and Thaw.
func TestAgent_RestartKeepsState(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{Persistent: true, Node: "persist"})
	kv := a.Client(t).KV()
	if _, err := kv.Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	a.Stop(t)
	if a.Pid() != 0 {
		t.Fatal("pid after Stop")
	}
	a.Start(t)
	p, _, err := kv.Get("k", nil)
	if err != nil || p == nil || string(p.Value) != "v" {
		t.Fatalf("after restart: %v %v", p, err)
	}
	a.Freeze(t)
	a.Thaw(t)
	a.WaitReady(t)
}

// TestAgent_DevStartsEmpty: a -dev agent loses its state on restart.
func TestAgent_DevStartsEmpty(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.Options{})
	kv := a.Client(t).KV()
	if _, err := kv.Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	a.Stop(t)
	a.Start(t)
	p, _, err := kv.Get("k", nil)
	if err != nil || p != nil {
		t.Fatalf("after restart of a -dev agent: %v %v, want no key", p, err)
	}
}
