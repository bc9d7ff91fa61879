package main

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// directWrite writes size bytes of the pattern to path with O_DIRECT, block bytes per write, and fsyncs. The
// buffer comes from mmap, so it is page aligned, as O_DIRECT wants; size and block are multiples of directAlign.
func directWrite(path string, size, block int64) (err error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_DIRECT|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("open %s: %w: the filesystem refuses O_DIRECT (tmpfs before Linux 6.6 does, for one): "+
			"give a path on a disk filesystem", path, err)
	}
	if err != nil {
		return fmt.Errorf("open %s with O_DIRECT: %w", path, err)
	}
	defer func() {
		if cerr := unix.Close(fd); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
	}()
	buf, err := unix.Mmap(-1, 0, int(block), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("map a %d-byte aligned buffer: %w", block, err)
	}
	defer func() { _ = unix.Munmap(buf) }()
	fillPattern(buf)

	for off := int64(0); off < size; {
		n := min(block, size-off)
		m, err := unix.Write(fd, buf[:n])
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EINVAL):
			return fmt.Errorf("write %s at offset %d with O_DIRECT: %w: the filesystem or device refuses "+
				"%d-byte aligned direct writes: give a path on a disk filesystem", path, off, err, directAlign)
		case err != nil:
			return fmt.Errorf("write %s at offset %d with O_DIRECT: %w", path, off, err)
		case int64(m) != n:
			// The rest would start unaligned, which O_DIRECT refuses; a disk that is full says ENOSPC next anyway.
			return fmt.Errorf("write %s at offset %d with O_DIRECT: wrote %d of %d bytes", path, off, m, n)
		}
		off += n
	}
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}
