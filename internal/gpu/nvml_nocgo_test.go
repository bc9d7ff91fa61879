//go:build !(linux && cgo)

package gpu_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/open-autoglm/glmd/internal/testenv"
)

// TestNVMLBuilt stands for the NVML tests, which need Linux and cgo (go-nvml
// does not compile without it, mocks included): Go turns cgo off silently
// when no C compiler is on PATH, and CI must not pass by leaving them out.
func TestNVMLBuilt(t *testing.T) {
	testenv.Skip(t, "NVML tests not built: cgo is off (GOOS=%s, CGO_ENABLED=%q): install gcc and build with CGO_ENABLED=1 on Linux",
		runtime.GOOS, os.Getenv("CGO_ENABLED"))
}
