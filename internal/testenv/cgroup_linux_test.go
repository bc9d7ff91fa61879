package testenv

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckCgroup_NotMounted(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "memory"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ version, want string }{
		{"v1", "not a cgroup v1 mount"},
		{"v2", "not a cgroup2 mount"},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			err := checkCgroup(dir, tt.version)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("checkCgroup(tempdir, %s) = %v, want an error with %q", tt.version, err, tt.want)
			}
		})
	}
	if err := checkCgroup(dir, "v3"); !errors.Is(err, errCgroupVersion) {
		t.Errorf("checkCgroup(v3) = %v, want errCgroupVersion", err)
	}
}

// TestCheckCgroup_Host compares the verdict on this machine's hierarchy with its mount table.
func TestCheckCgroup_Host(t *testing.T) {
	mounts := mountTypes(t)
	v1 := mounts[filepath.Join(cgroupRoot, "memory")] == "cgroup rw"
	v2 := mounts[cgroupRoot] == "cgroup2 rw"
	if v2 {
		data, _ := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
		v2 = strings.TrimSpace(string(data)) != ""
	}
	for version, want := range map[string]bool{"v1": v1, "v2": v2} {
		err := checkCgroup(cgroupRoot, version)
		if (err == nil) != want {
			t.Errorf("checkCgroup(%s) = %v; the mount table says usable: %v", version, err, want)
		}
		t.Logf("cgroup %s: %v", version, err)
	}
}

// mountTypes maps each mount point to "fstype rw" or "fstype ro", the last mount winning.
func mountTypes(t *testing.T) map[string]string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	types := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, after := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 6 || len(after) < 1 {
			continue
		}
		mode := "rw"
		if strings.HasPrefix(fields[5], "ro") {
			mode = "ro"
		}
		types[fields[4]] = after[0] + " " + mode
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return types
}
