//go:build !linux

package config

import "errors"

// statBlockDevice: cgroup IO limits exist on Linux only, and so does the
// lookup of their devices.
func statBlockDevice(path string) (BlockDevice, error) {
	return BlockDevice{}, errors.New("block devices are looked up on Linux only")
}
