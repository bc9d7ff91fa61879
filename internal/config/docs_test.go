package config

import (
	"os"
	"regexp"
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
