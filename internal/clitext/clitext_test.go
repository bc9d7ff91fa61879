package clitext

import (
	"strings"
	"testing"

	"github.com/open-autoglm/glmd/internal/api"
)

func TestWritePlan(t *testing.T) {
	tests := []struct {
		name string
		plan api.Plan
		want string
	}{
		{"empty", api.Plan{}, "no changes\n"},
		{"changes and errors", api.Plan{
			Changes: []api.Change{
				{Task: "glm-serve", Action: api.ActionRestart, Reasons: []string{"env changed", "instances 2 -> 4"}},
				{Task: "warmup", Action: api.ActionAdd},
				{Task: "bad", Action: api.ActionInvalid, Reasons: []string{"file has errors:\n not started"}},
			},
			Errors: []string{"conf.d/bad.toml:1:1: unknown key \"x\""},
		}, "~ glm-serve  restart  env changed, instances 2 -> 4\n" +
			"+ warmup     add\n" +
			"! bad        invalid  file has errors: not started\n" +
			"error: conf.d/bad.toml:1:1: unknown key \"x\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := WritePlan(&b, tt.plan); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Fatalf("got\n%q\nwant\n%q", b.String(), tt.want)
			}
		})
	}
}
