package supervisor

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/open-autoglm/glmd/internal/testenv"
)

func TestMain(m *testing.M) {
	// The reaper lives as long as the process, like the subreaper role.
	testenv.Main(m, goleak.IgnoreTopFunction("github.com/open-autoglm/glmd/supervisor.(*reaper).loop"))
}
