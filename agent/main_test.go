package agent

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/open-autoglm/glmd/internal/testenv"
)

func TestMain(m *testing.M) {
	// The supervisor's reaper lives as long as the process.
	testenv.Main(m, goleak.IgnoreTopFunction("github.com/open-autoglm/glmd/supervisor.(*reaper).loop"))
}
