//go:build !linux

package cgroup

import (
	"context"
	"runtime"

	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/supervisor"
)

// Manager is the cgroup manager; cgroups exist only on Linux, so here New
// always fails.
type Manager struct{}

// New reports ErrUnavailable: cgroups need Linux.
func New(opts Options) (*Manager, error) {
	if opts.Mode == ModeOff {
		return nil, unavailable("mode off")
	}
	return nil, unavailable("cgroups need Linux, this is %s", runtime.GOOS)
}

// Mode reports the manager's mode; there is none here.
func (m *Manager) Mode() string { return ModeOff }

// Open fails: cgroups need Linux.
func (m *Manager) Open(ctx context.Context, name string, limits resources.Limits) (supervisor.Group, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return nil, unavailable("cgroups need Linux, this is %s", runtime.GOOS)
}

// Cleanup has nothing to clean up without cgroups.
func (m *Manager) Cleanup(ctx context.Context) ([]string, error) { return nil, nil }

// GroupOf reports that no process is in a group: there are none.
func (m *Manager) GroupOf(pid int) (string, bool) { return "", false }
