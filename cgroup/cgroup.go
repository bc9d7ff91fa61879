// Package cgroup gives each worker instance its own cgroup on the host's
// cgroup v1, hybrid or v2 tree: limits from the task file's [resources],
// placement of the worker before its first instruction, a kill of every
// process in the group, OOM kill counts and usage statistics.
//
// Manager implements supervisor.Cgroups and its groups supervisor.Group; the
// supervisor owns those interfaces and links no cgroup code. The adapters
// are built on github.com/containerd/cgroups/v3 and live in _linux.go files;
// on other systems New reports ErrUnavailable. docs/cgroups.md explains the
// layout, the v1 and v2 meaning of every limit and what the tests prove.
package cgroup

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Modes accepted by Options.Mode and reported by Manager.Mode.
const (
	ModeAuto   = "auto"       // detect: unified -> v2, hybrid -> v1 with twins, legacy -> v1
	ModeV1     = "v1"         // cgroup v1 controllers
	ModeV1Twin = "v1+unified" // cgroup v1 controllers plus a twin in the unified hierarchy (hybrid hosts)
	ModeV2     = "v2"         // cgroup v2 only
	ModeOff    = "off"        // no cgroups: New returns ErrUnavailable
)

// Sentinel errors; the messages wrapping them say what failed and what to do.
var (
	// ErrUnavailable means the agent cannot use cgroups here: not root, no
	// cgroup file system, mode off, v2 asked on a hybrid host, and the like.
	ErrUnavailable = errors.New("cgroup: cgroups are not available")
	// ErrNotEmpty is returned by Delete while processes remain in the group.
	ErrNotEmpty = errors.New("cgroup: group still has processes")
)

// Options configure New.
type Options struct {
	// Mode is "auto" (the default when empty), "v1", "v2" or "off".
	Mode string
	// Parent is the cgroup path, the same in every hierarchy, under which
	// the instance groups are created, e.g. "/glmd". Empty selects the
	// default layout below the agent's own cgroup (docs/cgroups.md).
	Parent string
	// MoveSelf lets the agent move itself from its own cgroup P into
	// P/agent when it must enable controllers in P (cgroup v2 allows
	// no processes in a cgroup that gives controllers to its children).
	// The agent sets it in production; tests never move the test process.
	MoveSelf bool
	// Log receives what the manager decided and what went wrong in the
	// background; nil discards.
	Log *slog.Logger
}

// checkName refuses group names that are not one path element: a name
// becomes a directory under Parent in every hierarchy.
func checkName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("cgroup: invalid group name %q: want a name such as task@0", name)
	case strings.ContainsAny(name, "/\x00\n"):
		return fmt.Errorf("cgroup: invalid group name %q: it must not contain '/', NUL or newline", name)
	}
	return nil
}

// unavailable wraps ErrUnavailable with the reason.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}
