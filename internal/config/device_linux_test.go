package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestStatBlockDevice_NotBlock(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		is   error
		want string
	}{
		{"/dev/null", ErrNotBlockDevice, "not a block device but a character device"},
		{dir, ErrNotBlockDevice, "not a block device but a directory"},
		{regular, ErrNotBlockDevice, "not a block device but a regular file"},
		{filepath.Join(dir, "missing"), fs.ErrNotExist, "no such file or directory"},
	}
	for _, tt := range tests {
		_, err := statBlockDevice(tt.path)
		if !errors.Is(err, tt.is) || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("statBlockDevice(%s) = %v, want %v (%s)", tt.path, err, tt.is, tt.want)
		}
	}
}

// TestStatBlockDevice_Host resolves the block devices this host has, as
// sysfs lists them: a disk is its own device, a partition its disk's.
func TestStatBlockDevice_Host(t *testing.T) {
	devs, _ := filepath.Glob("/sys/class/block/*/dev")
	checked := 0
	for _, devFile := range devs {
		name := filepath.Base(filepath.Dir(devFile))
		path := "/dev/" + name
		if _, err := os.Stat(path); err != nil {
			continue // sysfs knows it, /dev has no node for it (a container)
		}
		data, err := os.ReadFile(devFile)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSpace(string(data))
		disk := ""
		if _, err := os.Stat(filepath.Join(filepath.Dir(devFile), "partition")); err == nil {
			real, err := filepath.EvalSymlinks(filepath.Dir(devFile))
			if err != nil {
				t.Fatal(err)
			}
			d, err := os.ReadFile(filepath.Join(filepath.Dir(real), "dev"))
			if err != nil {
				t.Fatal(err)
			}
			want, disk = strings.TrimSpace(string(d)), filepath.Base(filepath.Dir(real))
		}
		got, err := statBlockDevice(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if s := formatDev(got); s != want || got.Disk != disk {
			t.Errorf("%s: %s (disk %q), want %s (disk %q)", path, s, got.Disk, want, disk)
		}
		checked++
	}
	if checked == 0 {
		t.Skip("no block device in /dev that sysfs lists")
	}
	t.Logf("resolved %d block devices", checked)
}

func formatDev(d BlockDevice) string { return fmt.Sprintf("%d:%d", d.Major, d.Minor) }

// TestWholeDisk walks a fake sysfs laid out as the kernel does it.
func TestWholeDisk(t *testing.T) {
	sys := t.TempDir()
	mk := func(dir string, files map[string]string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(sys, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(sys, dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	link := func(devnum, target string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(sys, "dev", "block"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", target), filepath.Join(sys, "dev", "block", devnum)); err != nil {
			t.Fatal(err)
		}
	}
	nvme := "devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1"
	mk(nvme, map[string]string{"dev": "259:0\n"})
	mk(nvme+"/nvme0n1p2", map[string]string{"dev": "259:2\n", "partition": "2\n"})
	link("259:0", nvme)
	link("259:2", nvme+"/nvme0n1p2")
	mk("devices/virtual/block/dm-0", map[string]string{"dev": "253:0\n"})
	link("253:0", "devices/virtual/block/dm-0")
	mk("devices/virtual/block/bad/bad1", map[string]string{"dev": "7:1\n", "partition": "1\n"})
	mk("devices/virtual/block/bad", map[string]string{"dev": "garbage\n"})
	link("7:1", "devices/virtual/block/bad/bad1")

	tests := []struct {
		major, minor uint32
		want         BlockDevice
		err          string
	}{
		{259, 0, BlockDevice{Major: 259, Minor: 0}, ""},
		{259, 2, BlockDevice{Major: 259, Minor: 0, Disk: "nvme0n1"}, ""},
		{253, 0, BlockDevice{Major: 253, Minor: 0}, ""},
		{8, 0, BlockDevice{Major: 8, Minor: 0}, ""}, // unknown to sysfs: used as it is
		{7, 1, BlockDevice{}, `find the disk of partition 7:1: ` + filepath.Join(sys, "devices/virtual/block/bad") + `/dev holds "garbage\n", not MAJOR:MINOR`},
	}
	for _, tt := range tests {
		got, err := wholeDisk(sys, tt.major, tt.minor)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%d:%d: error %v, want %s", tt.major, tt.minor, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%d:%d = %+v, %v; want %+v", tt.major, tt.minor, got, err, tt.want)
		}
	}
}

// TestLoadTasks_HostDevices loads through the host's lookup (no
// StatDevice): /dev/null is refused with its reason.
func TestLoadTasks_HostDevices(t *testing.T) {
	fsys := fstest.MapFS{"x.toml": file(sleep + "[[resources.io]]\ndevice = \"/dev/null\"\nread_bps = \"1M\"\n")}
	_, errs := LoadTasks(fsys, LoadOptions{})
	want := "x.toml:3:1: resources.io[0].device: /dev/null: not a block device but a character device (name a disk or partition such as /dev/nvme0n1; lsblk lists them)"
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("errors %q, want %q", errorLines(errs), want)
	}
}
