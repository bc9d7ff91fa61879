package discovery

import (
	"os"
	"testing"

	"github.com/open-autoglm/glmd/internal/testenv"
)

func TestMain(m *testing.M) {
	// The fault tests re-run this binary as separate glmd-like processes that contend for the role.
	if os.Getenv(contenderEnv) != "" {
		os.Exit(contenderMain())
	}
	testenv.Main(m)
}
