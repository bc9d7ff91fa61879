package cgroup

import (
	"errors"
	"strings"
	"testing"

	cgroups "github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"
)

func TestHostMode(t *testing.T) {
	const tmpfs, none = unix.TMPFS_MAGIC, -1
	tests := []struct {
		name                  string
		root, unified, memory int64 // magic per path; none = statfs fails
		want                  cgroups.CGMode
		why                   string
	}{
		{"unified", unix.CGROUP2_SUPER_MAGIC, none, none, cgroups.Unified, ""},
		{"hybrid", tmpfs, unix.CGROUP2_SUPER_MAGIC, unix.CGROUP_SUPER_MAGIC, cgroups.Hybrid, ""},
		{"legacy", tmpfs, none, unix.CGROUP_SUPER_MAGIC, cgroups.Legacy, ""},
		{"legacy with a tmpfs where unified would be", tmpfs, tmpfs, unix.CGROUP_SUPER_MAGIC, cgroups.Legacy, ""},
		{"no mount", none, none, none, cgroups.Unavailable, "statfs /sys/fs/cgroup"},
		{"empty tmpfs", tmpfs, none, none, cgroups.Unavailable, "no cgroup file system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			magic := map[string]int64{cgroupRoot: tt.root, unifiedMount: tt.unified, cgroupRoot + "/memory": tt.memory}
			got, why := hostMode(func(p string) (int64, error) {
				if m, ok := magic[p]; ok && m != none {
					return m, nil
				}
				return 0, unix.ENOENT
			})
			if got != tt.want || !strings.Contains(why, tt.why) {
				t.Errorf("hostMode = %v, %q; want %v, %q", got, why, tt.want, tt.why)
			}
		})
	}
}

func TestChooseMode(t *testing.T) {
	tests := []struct {
		requested string
		host      cgroups.CGMode
		noTwin    bool
		want      string
		err       string // substring; "unavailable" also checks errors.Is ErrUnavailable
	}{
		{"", cgroups.Unified, false, ModeV2, ""},
		{"auto", cgroups.Unified, false, ModeV2, ""},
		{"auto", cgroups.Hybrid, false, ModeV1Twin, ""},
		{"auto", cgroups.Hybrid, true, ModeV1, ""},
		{"auto", cgroups.Legacy, false, ModeV1, ""},
		{"v1", cgroups.Hybrid, false, ModeV1Twin, ""},
		{"v1", cgroups.Legacy, false, ModeV1, ""},
		{"v2", cgroups.Unified, false, ModeV2, ""},
		{"v2", cgroups.Hybrid, false, "", "hybrid"},
		{"v2", cgroups.Legacy, false, "", "v1 only"},
		{"v1", cgroups.Unified, false, "", "v2 only"},
		{"auto", cgroups.Unavailable, false, "", "nothing mounted"},
		{"off", cgroups.Unified, false, "", "mode off"},
		{"v3", cgroups.Unified, false, "", "unknown mode"},
	}
	for _, tt := range tests {
		t.Run(tt.requested+"/"+tt.want+tt.err, func(t *testing.T) {
			got, err := chooseMode(tt.requested, tt.host, "nothing mounted", tt.noTwin)
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Fatalf("chooseMode = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("chooseMode = %q, %v; want an error containing %q", got, err, tt.err)
			}
			if unknown := tt.requested == "v3"; errors.Is(err, ErrUnavailable) == unknown {
				t.Errorf("errors.Is(%v, ErrUnavailable) = %v", err, !unknown)
			}
		})
	}
}

func TestDefaultParent(t *testing.T) {
	for own, want := range map[string]string{
		"/":                                "/glmd",
		"":                                 "/glmd",
		"/system.slice/glmd.service":       "/system.slice/glmd.service/workers",
		"/system.slice/glmd.service/agent": "/system.slice/glmd.service/workers",
		"/agent":                           "/workers",
	} {
		if got := defaultParent(own); got != want {
			t.Errorf("defaultParent(%q) = %q, want %q", own, got, want)
		}
	}
}

func TestCheckParent(t *testing.T) {
	for p, ok := range map[string]bool{
		"/glmd": true, "/a/b": true, "glmd": false, "/a/../b": false, "/a/": false, "/": false, "/sys/fs/cgroup/glmd": false,
	} {
		if err := checkParent(p); (err == nil) != ok {
			t.Errorf("checkParent(%q) = %v", p, err)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"task@0": true, "glm-serve@12": true, "": false, ".": false, "..": false, "a/b": false, "a\nb": false} {
		if err := checkName(name); (err == nil) != ok {
			t.Errorf("checkName(%q) = %v", name, err)
		}
	}
}
