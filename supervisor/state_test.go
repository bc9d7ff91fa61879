package supervisor

import (
	"errors"
	"slices"
	"testing"
)

func TestState_Transitions(t *testing.T) {
	for _, from := range States() {
		for _, to := range States() {
			err := checkTransition(from, to)
			legal := slices.Contains(transitions[from], to)
			if legal && err != nil {
				t.Errorf("%s -> %s: unexpected error %v", from, to, err)
			}
			if !legal {
				var te *TransitionError
				if !errors.As(err, &te) || te.From != from || te.To != to {
					t.Errorf("%s -> %s: want *TransitionError, got %v", from, to, err)
				}
			}
		}
	}
}

func TestState_String(t *testing.T) {
	want := []string{"pending", "starting", "running", "stopping", "stopped", "backoff", "exited", "failed"}
	for i, s := range States() {
		if s.String() != want[i] {
			t.Errorf("State(%d) = %q, want %q", i, s, want[i])
		}
	}
	if got := State(200).String(); got != "state(200)" {
		t.Errorf("unknown state prints %q", got)
	}
}

func TestState_EveryStateReachableAndLeavable(t *testing.T) {
	in := map[State]bool{}
	for from, tos := range transitions {
		if len(tos) == 0 {
			t.Errorf("%s has no way out", from)
		}
		for _, to := range tos {
			in[to] = true
		}
	}
	for _, s := range States() {
		if s != StatePending && !in[s] {
			t.Errorf("%s cannot be reached", s)
		}
	}
}
