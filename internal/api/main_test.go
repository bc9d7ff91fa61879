package api_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: a stream
// that outlives its request, a server that outlives Serve.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
