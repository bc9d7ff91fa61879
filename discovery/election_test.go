package discovery

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/consul/api"
)

// TestTxnError: Consul's transaction errors (agent/consul/state/txn.go, txn_endpoint.go) map to the outcomes
// the election acts on.
func TestTxnError(t *testing.T) {
	tests := []struct {
		what string
		want error
	}{
		{`failed to lock key "glmd/leader/scheduler" due to lock delay`, errLockDelay},
		{`failed to lock key "glmd/leader/scheduler", lock is already held`, errLockHeld},
		{`invalid session "5e2f..."`, errInvalidSession},
		{`failed session check for key "glmd/leader/scheduler", current session "a" != "b"`, errLockHeld},
		{`failed to check session, key "glmd/leader/scheduler" doesn't exist`, errLockHeld},
		{`Permission denied`, nil},
	}
	for _, tc := range tests {
		err := txnError("acquire", &api.TxnResponse{Errors: api.TxnErrors{{OpIndex: 0, What: tc.what}}})
		switch {
		case tc.want == nil && (errors.Is(err, errLockDelay) || errors.Is(err, errLockHeld) || errors.Is(err, errInvalidSession)):
			t.Errorf("%q classified as %v", tc.what, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%q: %v, want %v", tc.what, err, tc.want)
		}
	}
}

func TestConsulErrors(t *testing.T) {
	tests := []struct {
		err                     error
		refused, notFound, gone bool
	}{
		{api.StatusError{Code: 400, Body: "Invalid service meta"}, true, false, false},
		{api.StatusError{Code: 403, Body: "Permission denied"}, true, false, false},
		{fmt.Errorf("register: %w", api.StatusError{Code: 404, Body: "Unknown service ID"}), false, true, true},
		{api.StatusError{Code: 429}, false, false, false},
		{api.StatusError{Code: 500, Body: `CheckID "x" does not have associated TTL`}, false, false, true},
		{errors.New("dial tcp: connection refused"), false, false, false},
	}
	for _, tc := range tests {
		if refused(tc.err) != tc.refused || notFound(tc.err) != tc.notFound || checkMissing(tc.err) != tc.gone {
			t.Errorf("%v: refused %v notFound %v checkMissing %v; want %v %v %v", tc.err, refused(tc.err),
				notFound(tc.err), checkMissing(tc.err), tc.refused, tc.notFound, tc.gone)
		}
	}
}
