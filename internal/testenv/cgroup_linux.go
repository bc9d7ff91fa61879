package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where glmd, and so its tests, expect the cgroup hierarchy.
const cgroupRoot = "/sys/fs/cgroup"

// errCgroupVersion is a test bug, not a missing prerequisite: it always fails.
var errCgroupVersion = errors.New(`testenv: RequireCgroup wants "v1" or "v2"`)

// RequireCgroup skips (or fails, see Skip) unless the machine has a usable cgroup hierarchy of version "v1"
// (/sys/fs/cgroup/memory is a writable cgroup v1 mount of the memory controller) or "v2" (/sys/fs/cgroup is a
// writable cgroup2 mount with controllers).
func RequireCgroup(t testing.TB, version string) {
	t.Helper()
	err := checkCgroup(cgroupRoot, version)
	switch {
	case errors.Is(err, errCgroupVersion):
		t.Fatalf("%v, got %q", err, version)
	case err != nil:
		Skip(t, "test needs cgroup %s: %v", version, err)
	}
}

// checkCgroup says why root does not hold a usable cgroup hierarchy of version, or nil.
func checkCgroup(root, version string) error {
	var dir, magicFile string
	var magic int64
	switch version {
	case "v1":
		dir, magic, magicFile = filepath.Join(root, "memory"), unix.CGROUP_SUPER_MAGIC, "memory.limit_in_bytes"
	case "v2":
		dir, magic, magicFile = root, unix.CGROUP2_SUPER_MAGIC, "cgroup.controllers"
	default:
		return errCgroupVersion
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if int64(st.Type) != magic {
		return fmt.Errorf("%s is %s, not %s (this machine mounts another cgroup version, or none)",
			dir, fsName(int64(st.Type)), fsName(magic))
	}
	if st.Flags&unix.ST_RDONLY != 0 {
		return fmt.Errorf("%s is mounted read-only (in a container, run it privileged or mount cgroups rw)", dir)
	}
	data, err := os.ReadFile(filepath.Join(dir, magicFile))
	if err != nil {
		return fmt.Errorf("read %s: %w", magicFile, err)
	}
	if version == "v2" && strings.TrimSpace(string(data)) == "" {
		return fmt.Errorf("%s lists no controllers", filepath.Join(dir, magicFile))
	}
	return nil
}

func fsName(magic int64) string {
	switch magic {
	case unix.CGROUP_SUPER_MAGIC:
		return "a cgroup v1 mount"
	case unix.CGROUP2_SUPER_MAGIC:
		return "a cgroup2 mount"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	}
	return fmt.Sprintf("a filesystem of type %#x", magic)
}
