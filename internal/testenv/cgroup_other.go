//go:build !linux

package testenv

import (
	"runtime"
	"testing"
)

// RequireCgroup skips (or fails, see Skip): cgroups exist only on Linux. A version other than "v1" or "v2" is a
// test bug and always fails.
func RequireCgroup(t testing.TB, version string) {
	t.Helper()
	if version != "v1" && version != "v2" {
		t.Fatalf(`testenv: RequireCgroup wants "v1" or "v2", got %q`, version)
	}
	Skip(t, "test needs cgroup %s, which needs Linux, runs on %s", version, runtime.GOOS)
}
