package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// TestDocsExample loads the complete example of docs/tasks.md, so that the
// reference cannot drift from what glmd accepts.
func TestDocsExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/tasks.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("docs/tasks.md has %d toml blocks, want the two files of the complete example first", len(blocks))
	}
	fsys := fstest.MapFS{"glm-serve.toml": {Data: blocks[0][1]}, "fetch-weights.toml": {Data: blocks[1][1]}}
	read := func(string) ([]byte, error) { return []byte("HF_TOKEN=x\n"), nil }
	tasks, errs := LoadTasks(fsys, LoadOptions{Node: "gpu01", ReadFile: read, StatDevice: testDevices})
	for _, e := range errs {
		t.Error(e)
	}
	if len(tasks) != 2 {
		t.Fatalf("got %d tasks, want 2", len(tasks))
	}
}

// TestDocsHealthExample loads the example of the [[health]] section, a
// whole task file of its own.
func TestDocsHealthExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/tasks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### `[[health]]`\n")
	if !ok {
		t.Fatal("docs/tasks.md has no [[health]] section")
	}
	block := regexp.MustCompile("(?s)```toml\n(.*?)```").FindStringSubmatch(section)
	if block == nil {
		t.Fatal("the [[health]] section has no toml example")
	}
	task := mustLoad(t, block[1], LoadOptions{Node: "gpu01"})
	roles := make([]HealthRole, 0, len(task.Health))
	for _, c := range task.Health {
		roles = append(roles, c.Role)
	}
	if want := []HealthRole{RoleStartup, RoleLiveness, RoleReadiness}; !slices.Equal(roles, want) {
		t.Errorf("roles %q, want %q", roles, want)
	}
}
