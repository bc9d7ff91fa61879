package cgroup

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	cgroups "github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"
)

// Where the kernel's cgroup file systems are mounted; glmd supports the
// standard places only, as systemd and containerd do.
const (
	cgroupRoot   = "/sys/fs/cgroup"
	unifiedMount = "/sys/fs/cgroup/unified" // the cgroup2 mount of a hybrid host
)

// statfsFunc returns the file system magic of path (unix.Statfs_t.Type).
type statfsFunc func(path string) (int64, error)

func statfsMagic(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Type), nil
}

// hostMode is cgroups.Mode() with an injectable statfs (the library's
// answer is cached for the process): cgroup2 on /sys/fs/cgroup is unified;
// else cgroup2 on /sys/fs/cgroup/unified is hybrid; else a cgroup v1 mount
// under /sys/fs/cgroup is legacy; nothing mounted is unavailable. It is the
// algorithm of systemd's docs/CGROUP_DELEGATION.md.
func hostMode(statfs statfsFunc) (cgroups.CGMode, string) {
	magic, err := statfs(cgroupRoot)
	if err != nil {
		return cgroups.Unavailable, fmt.Sprintf("statfs %s: %v", cgroupRoot, err)
	}
	if magic == unix.CGROUP2_SUPER_MAGIC {
		return cgroups.Unified, ""
	}
	if magic, err := statfs(unifiedMount); err == nil && magic == unix.CGROUP2_SUPER_MAGIC {
		return cgroups.Hybrid, ""
	}
	// A tmpfs with v1 hierarchies below it; the memory hierarchy is the one
	// glmd cannot do without.
	if magic, err := statfs(filepath.Join(cgroupRoot, "memory")); err == nil && magic == unix.CGROUP_SUPER_MAGIC {
		return cgroups.Legacy, ""
	}
	return cgroups.Unavailable, fmt.Sprintf("no cgroup file system is mounted on %s", cgroupRoot)
}

// chooseMode turns Options.Mode and the host's layout into the mode the
// manager runs in (ModeV1, ModeV1Twin or ModeV2), or ErrUnavailable.
func chooseMode(requested string, host cgroups.CGMode, why string, noTwin bool) (string, error) {
	if requested == "" {
		requested = ModeAuto
	}
	switch requested {
	case ModeOff:
		return "", unavailable("mode off")
	case ModeAuto, ModeV1, ModeV2:
	default:
		return "", fmt.Errorf("cgroup: unknown mode %q: want auto, v1, v2 or off", requested)
	}
	if host == cgroups.Unavailable {
		return "", unavailable("%s", why)
	}
	switch {
	case requested == ModeV2 && host == cgroups.Unified:
		return ModeV2, nil
	case requested == ModeV2 && host == cgroups.Hybrid:
		return "", unavailable("mode v2 asked, but this host is hybrid: its controllers are in the v1 hierarchies and %s has none (use mode auto or v1, or boot with systemd.unified_cgroup_hierarchy=1)", unifiedMount)
	case requested == ModeV2:
		return "", unavailable("mode v2 asked, but this host has cgroup v1 only (use mode auto or v1)")
	case requested == ModeV1 && host == cgroups.Unified:
		return "", unavailable("mode v1 asked, but this host has cgroup v2 only (use mode auto or v2)")
	case host == cgroups.Unified:
		return ModeV2, nil
	case host == cgroups.Hybrid && !noTwin:
		return ModeV1Twin, nil
	}
	return ModeV1, nil
}

// ownCgroups reads the agent's own cgroups: the v1 path per controller and
// the unified ("0::") path.
func ownCgroups(procSelfCgroup string) (v1 map[string]string, unified string, err error) {
	v1, unified, err = cgroups.ParseCgroupFileUnified(procSelfCgroup)
	if err != nil {
		return nil, "", fmt.Errorf("cgroup: read the agent's own cgroup: %w", err)
	}
	return v1, unified, nil
}

// defaultParent is where the groups go when Options.Parent is empty, given
// the agent's own cgroup in a hierarchy: "/glmd" when the agent runs in the
// root; else below the cgroup the agent owns, <own>/workers (not "tasks":
// every v1 cgroup has a file of that name). When own already
// ends in "/agent" (systemd's DelegateSubgroup=agent, or an agent that moved
// itself), the owned cgroup is its parent.
func defaultParent(own string) string {
	if own == "" || own == "/" {
		return "/glmd"
	}
	return path.Join(ownedCgroup(own), "workers")
}

// ownedCgroup is the cgroup the agent may configure: its own, or the parent
// of its own when that is a leaf called "agent" (see defaultParent).
func ownedCgroup(own string) string {
	if own != "/" && path.Base(own) == "agent" {
		return path.Dir(own)
	}
	return own
}

// checkParent validates a parent cgroup path.
func checkParent(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("cgroup: parent %q must be an absolute cgroup path such as /glmd", p)
	case path.Clean(p) != p:
		return fmt.Errorf("cgroup: parent %q is not a clean path (want %q)", p, path.Clean(p))
	case p == "/":
		return errors.New("cgroup: parent must not be the root cgroup: glmd creates and removes groups below it")
	case strings.HasPrefix(p, cgroupRoot):
		return fmt.Errorf("cgroup: parent %q is a cgroup path, relative to the hierarchy's root, not a file path under %s", p, cgroupRoot)
	}
	return nil
}
