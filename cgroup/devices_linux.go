package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/open-autoglm/glmd/internal/resources"
)

// setDeviceFilter makes the v2 group refuse the devices in deny, through
// an eBPF device program attached to its directory (v2 has no devices
// files). The program allows everything else; programs of the ancestors
// (systemd's DeviceAllow=) still apply. A new list replaces the old
// program. Call with g.mu held.
func (g *group) setDeviceFilter(deny []resources.CharDevice) error {
	if slices.Equal(deny, g.denied) {
		return nil
	}
	if err := g.dropDeviceFilter(); err != nil {
		return err
	}
	if len(deny) == 0 {
		return nil
	}
	all := int64(-1)
	rules := []specs.LinuxDeviceCgroup{{Allow: true, Type: "a", Major: &all, Minor: &all, Access: "rwm"}}
	for _, d := range deny {
		major, minor := int64(d.Major), int64(d.Minor)
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: false, Type: "c", Major: &major, Minor: &minor, Access: "rwm"})
	}
	insts, license, err := cgroup2.DeviceFilter(rules)
	if err != nil {
		return fmt.Errorf("devices: build the device program: %w", err)
	}
	// The detach needs the directory's fd: it stays open while the
	// program is attached.
	dir, err := os.Open(g.unified)
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	detach, err := cgroup2.LoadAttachCgroupDeviceFilter(insts, license, int(dir.Fd()))
	if err != nil {
		dir.Close()
		return fmt.Errorf("devices: attach the device program (needs a kernel with CONFIG_CGROUP_BPF): %w", err)
	}
	g.detach = func() error {
		defer dir.Close()
		return detach()
	}
	g.denied = slices.Clone(deny)
	return nil
}

// dropDeviceFilter detaches the group's device program, if any. Call
// with g.mu held.
func (g *group) dropDeviceFilter() error {
	if g.detach == nil {
		return nil
	}
	err := g.detach()
	g.detach, g.denied = nil, nil
	if err != nil {
		return fmt.Errorf("devices: remove the old device program: %w", err)
	}
	return nil
}

// joinDevices creates the v1 group's directory in the devices hierarchy
// when l denies devices: groups join it only then, since every hierarchy
// a group is in costs each start a thread move and each creation a mkdir.
// The next start places the worker in it. Call with g.mu held.
func (g *group) joinDevices(l resources.Limits) error {
	dir := g.dirs["devices"]
	if g.m.v1 == nil || g.inDevices || len(l.DenyDevices) == 0 || dir == "" {
		return nil
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("devices: create %s: %w", dir, err)
	}
	g.inDevices = true
	return nil
}
