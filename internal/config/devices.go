package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
)

// BlockDevice is what a [[resources.io]] device path resolves to.
type BlockDevice struct {
	// Major and Minor number the device IO limits are set on: the path's
	// own device, or the whole disk when the path is a partition, since the
	// kernel limits IO per disk (request queue). Device-mapper and md
	// devices have queues of their own and are used as they are.
	Major, Minor uint32
	// Disk is the kernel's name of the whole disk ("nvme0n1") when the
	// path is a partition of it; "" otherwise.
	Disk string
}

// notBlockDeviceError: the path exists but is no block device;
// errors.Is(err, ErrNotBlockDevice) holds.
type notBlockDeviceError struct{ mode fs.FileMode }

func (e *notBlockDeviceError) Error() string {
	what := "something else"
	switch {
	case e.mode&fs.ModeCharDevice != 0:
		what = "a character device"
	case e.mode.IsDir():
		what = "a directory"
	case e.mode.IsRegular():
		what = "a regular file"
	case e.mode&fs.ModeNamedPipe != 0:
		what = "a named pipe"
	case e.mode&fs.ModeSocket != 0:
		what = "a socket"
	}
	return "not a block device but " + what
}

func (e *notBlockDeviceError) Is(target error) bool { return target == ErrNotBlockDevice }

// deviceReader resolves device paths for one load, each path once.
type deviceReader struct {
	stat  func(string) (BlockDevice, error)
	cache map[string]deviceResult
}

type deviceResult struct {
	dev BlockDevice
	err error
}

func newDeviceReader(stat func(string) (BlockDevice, error)) *deviceReader {
	if stat == nil {
		stat = statBlockDevice
	}
	return &deviceReader{stat: stat, cache: map[string]deviceResult{}}
}

func (r *deviceReader) get(path string) deviceResult {
	if res, ok := r.cache[path]; ok {
		return res
	}
	var res deviceResult
	res.dev, res.err = r.stat(path)
	r.cache[path] = res
	return res
}

// loadDevices resolves the device of every [[resources.io]] entry to the
// major:minor its limits are set on. It runs on every load, not once per
// task file: a disk can appear, go or be renumbered while the file stays
// the same. Remarks that are no errors go to f.notes.
func (f *taskFile) loadDevices(devs *deviceReader) {
	io := f.t.Resources.IO
	first := map[[2]uint32]int{} // entry that named each device first
	for i := range io {
		d := &io[i]
		entry := fmt.Sprintf("resources.io[%d]", i)
		key := entry + ".device"
		if !f.given[key] || !f.ok(key) {
			continue
		}
		pos := f.ioPos(key, entry)
		res := devs.get(d.Path)
		if res.err != nil {
			f.errorAt(pos, key, deviceError(d.Path, res.err))
			continue
		}
		d.Major, d.Minor = res.dev.Major, res.dev.Minor
		id := [2]uint32{d.Major, d.Minor}
		if j, dup := first[id]; dup {
			other := io[j].Path
			var err error
			switch disk := cmp.Or(res.dev.Disk, devs.get(other).dev.Disk); {
			case other == d.Path:
				err = fmt.Errorf("%s is already limited by resources.io[%d] (one entry per device: put its limits together)", d.Path, j)
			case disk != "":
				err = fmt.Errorf("%s is on the same disk as %s of resources.io[%d], %s (%d:%d), and IO limits apply to whole disks (one entry per disk)", d.Path, other, j, disk, d.Major, d.Minor)
			default:
				err = fmt.Errorf("%s is the same device (%d:%d) as %s of resources.io[%d] (one entry per device: put its limits together)", d.Path, d.Major, d.Minor, other, j)
			}
			f.errorAt(pos, key, err)
			continue
		}
		first[id] = i
		if res.dev.Disk != "" {
			p := f.where[pos]
			f.notes = append(f.notes, &FileError{File: f.path, Line: p.Line, Col: p.Col, Key: key, Task: f.task,
				Err: fmt.Errorf("%s is a partition: its limits apply to the whole disk %s (%d:%d), as IO limits apply to whole disks", d.Path, res.dev.Disk, d.Major, d.Minor)})
		}
	}
}

// deviceError words a failed device lookup for the operator.
func deviceError(path string, err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such device (lsblk lists the block devices)", path)
	case errors.Is(err, ErrNotBlockDevice):
		var nb *notBlockDeviceError
		if errors.As(err, &nb) && (nb.mode.IsDir() || nb.mode.IsRegular()) {
			return fmt.Errorf("%s: %w (name the device that holds it: findmnt -no SOURCE -T %s)", path, err, path)
		}
		return fmt.Errorf("%s: %w (name a disk or partition such as /dev/nvme0n1; lsblk lists them)", path, err)
	case errors.As(err, &pe) && pe.Path == path:
		return fmt.Errorf("%s: %w", path, pe.Err)
	}
	return fmt.Errorf("%s: %w", path, err)
}
