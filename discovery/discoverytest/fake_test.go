package discoverytest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/open-autoglm/glmd/discovery"
	"github.com/open-autoglm/glmd/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestFake(t *testing.T) {
	var tokens []uint64
	ended := make(chan uint64, 2)
	f := New("n1", discovery.Options{OnLeader: func(ctx context.Context, token uint64) {
		<-ctx.Done()
		ended <- token
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	<-f.Running()

	f.Sync([]discovery.Instance{{Task: "b", Index: 1}, {Task: "a", Index: 0}, {Task: "c", State: "failed"}})
	f.SetInstance(discovery.Instance{Task: "a", Index: 1})
	f.RemoveInstance("b", 1)
	var got []string
	for _, in := range f.Instances() {
		got = append(got, in.Task+":"+string(rune('0'+in.Index)))
	}
	if !slices.Equal(got, []string{"a:0", "a:1"}) {
		t.Errorf("instances %v", got)
	}

	if err := f.LeaderWrite(ctx, 5, "k", []byte("v")); !errors.Is(err, discovery.ErrNotLeader) {
		t.Errorf("write before Elect: %v", err)
	}
	f.Elect(5)
	if !f.Leading(5) || f.Leading(4) || !f.Leader().Self {
		t.Error("Elect(5) did not make the node lead with 5")
	}
	if err := f.LeaderWrite(ctx, 5, "k", []byte("v")); err != nil || string(f.Writes()["k"]) != "v" {
		t.Errorf("write: %v, %q", err, f.Writes()["k"])
	}
	f.Elect(9) // a new leadership ends the old one
	tokens = append(tokens, <-ended)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tokens = append(tokens, <-ended)
	if !slices.Equal(tokens, []uint64{5, 9}) {
		t.Errorf("OnLeader contexts ended for %v, want [5 9]", tokens)
	}
	if f.Leading(9) {
		t.Error("still leading after Run returned")
	}
}
