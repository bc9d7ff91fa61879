package tasklog

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestListDir(t *testing.T) {
	ttl := listTTL
	t.Cleanup(func() { listTTL = ttl })
	// Long enough that the test does not depend on how fast it runs.
	listTTL = time.Hour
	dir := t.TempDir()
	touch := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	list := func(after uint64, want ...string) []string {
		t.Helper()
		names, err := listDir(dir, after)
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(slices.Values(names))
		if !slices.Equal(got, want) {
			t.Errorf("listDir(after %d) = %q, want %q", after, got, want)
		}
		return names
	}

	touch("a")
	var m mill
	first := list(m.lastChange(), "a")
	// A change by another instance: the recent listing still serves.
	touch("b")
	if again := list(m.lastChange(), "a"); &again[0] != &first[0] {
		t.Error("a recent listing was not shared")
	}
	// A change by this instance: the listing must show it.
	touch("c")
	m.changed()
	list(m.lastChange(), "a", "b", "c")

	if _, err := listDir(filepath.Join(dir, "missing"), 0); !os.IsNotExist(err) {
		t.Errorf("listDir of a missing directory: err = %v, want ErrNotExist", err)
	}
}
