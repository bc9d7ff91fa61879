package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// readString reads a cgroup file.
func readString(file string) (string, error) {
	b, err := os.ReadFile(file)
	return string(b), err
}

// writeFile writes value to an existing cgroup file in one write, as the
// kernel wants it. It uses plain system calls, not os.File: kernfs files
// are pollable, so os.File would put the fd into Go's netpoller, and a
// write the kernel answers with EAGAIN (memory.reclaim that could not
// reclaim it all) would then wait for writability forever. The error names
// the file and the value; EINVAL, the kernel's answer to most refused
// values, gets a hint.
func writeFile(file, value string) error {
	fd, err := unix.Open(file, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: file, Err: err}
	}
	defer unix.Close(fd)
	data := []byte(value)
	if len(data) == 0 {
		data = []byte("\n") // "echo > file": an empty write might never reach the kernel's handler
	}
	for {
		_, err = unix.Write(fd, data)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("write %q to %s: %w (the kernel refused the value)", value, file, err)
	}
	return fmt.Errorf("write %q to %s: %w", value, file, err)
}

// fileSet lists the file names in dir.
func fileSet(dir string) map[string]bool {
	entries, _ := os.ReadDir(dir)
	set := make(map[string]bool, len(entries))
	for _, e := range entries {
		set[e.Name()] = true
	}
	return set
}

// zombie reports whether pid has exited and waits to be reaped (or is
// gone already).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain ") ".
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// readProcs lists the processes in the cgroup directory dir and in the
// cgroups below it, without the agent itself: during a v1 Start one agent
// thread sits in the group, and its process must never be signalled.
func readProcs(dir string) ([]int, error) {
	self := os.Getpid()
	var pids []int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil // a nested cgroup removed while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		data, err := readString(filepath.Join(p, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) && p != dir {
			return nil
		}
		if err != nil {
			return err
		}
		list, err := parsePids(data)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(p, "cgroup.procs"), err)
		}
		for _, pid := range list {
			if pid != self && !slices.Contains(pids, pid) {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids, err
}

// removeTree removes the cgroup directory dir and the cgroups below it,
// deepest first. A directory that is already gone is fine. EBUSY right
// after the last process exited is retried for a moment: the kernel
// releases a cgroup asynchronously.
func removeTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range slices.Backward(dirs) {
		if err := rmdir(d); err != nil {
			return err
		}
	}
	return nil
}

func rmdir(dir string) error {
	delay := 100 * time.Microsecond
	for deadline := time.Now().Add(200 * time.Millisecond); ; {
		err := unix.Rmdir(dir)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(delay)
			delay = min(2*delay, 10*time.Millisecond)
		default:
			return fmt.Errorf("remove %s: %w", dir, err)
		}
	}
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// wholeDisk maps a block device to its disk: io.max and blkio.throttle.*
// take whole disks only (notes section 7). A partition's sysfs directory
// has a "partition" file and sits in its disk's directory.
func wholeDisk(major, minor uint32) (uint32, uint32, error) {
	link := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		return 0, 0, fmt.Errorf("%d:%d is not a block device of this host (%w)", major, minor, err)
	}
	if !exists(filepath.Join(dir, "partition")) {
		return major, minor, nil
	}
	dev, err := readString(filepath.Join(filepath.Dir(dir), "dev"))
	if err != nil {
		return 0, 0, fmt.Errorf("find the disk of partition %d:%d: %w", major, minor, err)
	}
	majStr, minStr, ok := strings.Cut(strings.TrimSpace(dev), ":")
	dmaj, err1 := strconv.ParseUint(majStr, 10, 32)
	dmin, err2 := strconv.ParseUint(minStr, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("find the disk of partition %d:%d: bad %s", major, minor, filepath.Join(filepath.Dir(dir), "dev"))
	}
	return uint32(dmaj), uint32(dmin), nil
}
