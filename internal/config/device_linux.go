package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// statBlockDevice resolves a block device path on this host: stat (links
// followed, so /dev/disk/by-id/... works), then sysfs for partitions.
func statBlockDevice(path string) (BlockDevice, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return BlockDevice{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&fs.ModeDevice == 0 || fi.Mode()&fs.ModeCharDevice != 0 || !ok {
		return BlockDevice{}, &notBlockDeviceError{mode: fi.Mode()}
	}
	rdev := uint64(st.Rdev) // uint32 on some architectures
	return wholeDisk("/sys", unix.Major(rdev), unix.Minor(rdev))
}

// wholeDisk maps a partition to its disk: /sys/dev/block/M:m links to the
// partition's directory, which has a "partition" file and sits in the
// directory of its disk, whose "dev" file holds the disk's M:m. Any other
// device (a disk, device-mapper, md, or a host without sysfs) is its own.
func wholeDisk(sysfs string, major, minor uint32) (BlockDevice, error) {
	self := BlockDevice{Major: major, Minor: minor}
	dir := filepath.Join(sysfs, "dev", "block", fmt.Sprintf("%d:%d", major, minor))
	if _, err := os.Stat(filepath.Join(dir, "partition")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return self, nil
		}
		return self, fmt.Errorf("find the disk of partition %d:%d: %w", major, minor, err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return self, fmt.Errorf("find the disk of partition %d:%d: %w", major, minor, err)
	}
	disk := filepath.Dir(real)
	data, err := os.ReadFile(filepath.Join(disk, "dev"))
	if err != nil {
		return self, fmt.Errorf("find the disk of partition %d:%d: %w", major, minor, err)
	}
	ma, mi, ok := strings.Cut(strings.TrimSpace(string(data)), ":")
	dmajor, err1 := strconv.ParseUint(ma, 10, 32)
	dminor, err2 := strconv.ParseUint(mi, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return self, fmt.Errorf("find the disk of partition %d:%d: %s/dev holds %q, not MAJOR:MINOR", major, minor, disk, data)
	}
	return BlockDevice{Major: uint32(dmajor), Minor: uint32(dminor), Disk: filepath.Base(disk)}, nil
}
