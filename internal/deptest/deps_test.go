package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

// heavy are the external systems only the composition root may link.
var heavy = []string{
	"github.com/hashicorp/consul/api",
	"github.com/NVIDIA/go-nvml",
	"github.com/containerd/cgroups",
}

func TestDeps(t *testing.T) {
	tests := []struct {
		pkg       string
		forbidden []string
	}{
		{"github.com/open-autoglm/glmd/supervisor", append([]string{
			"github.com/open-autoglm/glmd/agent",
			"github.com/open-autoglm/glmd/cgroup",
			"github.com/open-autoglm/glmd/internal/health",
			"github.com/open-autoglm/glmd/internal/config",
			"github.com/open-autoglm/glmd/internal/api",
			"github.com/prometheus/client_golang",
		}, heavy...)},
		{"github.com/open-autoglm/glmd/internal/config", append([]string{"github.com/open-autoglm/glmd/supervisor"}, heavy...)},
		{"github.com/open-autoglm/glmd/internal/tasklog", heavy},
		{"github.com/open-autoglm/glmd/internal/confwatch", heavy},
		{"github.com/open-autoglm/glmd/internal/api", append([]string{
			"github.com/open-autoglm/glmd/agent",
			"github.com/open-autoglm/glmd/supervisor",
		}, heavy...)},
		{"github.com/open-autoglm/glmd/cmd/glmctl", append([]string{
			"github.com/open-autoglm/glmd/agent",
			"github.com/open-autoglm/glmd/supervisor",
			"github.com/open-autoglm/glmd/internal/tasklog",
		}, heavy...)},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", tt.pkg).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", tt.pkg, err)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 5 {
				t.Fatalf("go list found only %v", deps)
			}
			for _, d := range deps {
				for _, bad := range tt.forbidden {
					if d == bad || strings.HasPrefix(d, bad+"/") {
						t.Errorf("%s links %s", tt.pkg, d)
					}
				}
			}
		})
	}
}
