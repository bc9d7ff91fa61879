package cgroup

import (
	"os"
	"testing"

	"github.com/open-autoglm/glmd/internal/testenv"
)

// TestMain doubles as the helper programs the enforcement tests run inside
// groups (burn CPU, hog memory, fork, write with O_DIRECT): this binary
// re-executes itself with helperEnv set, so that the tests need no build
// step and run as one static binary in the cgroup v2 VM too.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[1:]))
	}
	setupTestProcess()
	testenv.Main(m)
}
