// Package cgrouptest is a fake of the cgroup package for tests of code that
// takes a supervisor.Cgroups (the agent, the supervisor's users): it needs
// no root and no cgroup file system, records what was asked, and lets a
// test inject errors and OOM kills.
//
// Its groups start processes for real (Start calls fork with no cgroup fd)
// and Kill sends SIGKILL to the processes the group started, so stop and
// restart paths can run end to end. It imports package supervisor for the
// interface types; supervisor's in-package tests therefore cannot use it
// (import cycle), external test packages can.
package cgrouptest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"

	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/supervisor"
)

// ErrNotEmpty is what a fake group's Delete wraps while processes it
// started are alive, like cgroup.ErrNotEmpty.
var ErrNotEmpty = errors.New("cgrouptest: group still has processes")

// Cgroups is a fake supervisor.Cgroups. The zero value is ready to use.
type Cgroups struct {
	mu      sync.Mutex        // guards the fields below
	groups  map[string]*Group // the latest group of each name
	openErr error
	opens   []string
}

var _ supervisor.Cgroups = (*Cgroups)(nil)

// Open returns the group called name with these limits, as the real
// manager does: a group that is open (not deleted) is returned again with
// the new limits applied through Update.
func (c *Cgroups) Open(ctx context.Context, name string, limits resources.Limits) (supervisor.Group, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.opens = append(c.opens, name)
	if c.openErr != nil {
		err := c.openErr
		c.mu.Unlock()
		return nil, fmt.Errorf("cgroup %s: %w", name, err)
	}
	g := c.groups[name]
	if g == nil || g.Deleted() {
		g = &Group{name: name}
		if c.groups == nil {
			c.groups = map[string]*Group{}
		}
		c.groups[name] = g
	}
	c.mu.Unlock()
	if err := g.Update(limits); err != nil {
		return nil, err
	}
	return g, nil
}

// FailOpen makes every later Open fail with err (nil: succeed again).
func (c *Cgroups) FailOpen(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.openErr = err
}

// Group returns the latest group called name, or nil if none was opened.
func (c *Cgroups) Group(name string) *Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[name]
}

// OpenNames lists the groups that exist now (opened, not deleted), sorted.
func (c *Cgroups) OpenNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for name, g := range c.groups {
		if !g.Deleted() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Opens lists the names Open was called with, in order.
func (c *Cgroups) Opens() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.opens)
}

// Method names a Group method for Fail.
type Method string

// The Group methods Fail can make fail.
const (
	Start    Method = "Start"
	Procs    Method = "Procs"
	Kill     Method = "Kill"
	OOMKills Method = "OOMKills"
	Update   Method = "Update"
	Stats    Method = "Stats"
	Delete   Method = "Delete"
)

// Group is a fake supervisor.Group.
type Group struct {
	name string

	mu       sync.Mutex // guards the fields below
	limits   resources.Limits
	updates  int
	pids     []int // started by Start, in order
	kills    int
	oomKills uint64
	stats    resources.Stats
	deleted  bool
	fail     map[Method]error
}

var _ supervisor.Group = (*Group)(nil)

// Name is the name the group was opened with.
func (g *Group) Name() string { return g.name }

// err returns the injected error of m, or an error if the group was
// deleted (the real group cannot start or update then either).
func (g *Group) err(m Method) error {
	if err := g.fail[m]; err != nil {
		return fmt.Errorf("cgroup %s: %s: %w", g.name, m, err)
	}
	if g.deleted && (m == Start || m == Update) {
		return fmt.Errorf("cgroup %s: %s: the group was deleted", g.name, m)
	}
	return nil
}

// Start calls fork with -1 (no cgroup fd) and records the pid.
func (g *Group) Start(fork func(cgroupFD int) (int, error)) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.err(Start); err != nil {
		return 0, err
	}
	pid, err := fork(-1)
	if err != nil {
		return 0, err
	}
	g.pids = append(g.pids, pid)
	return pid, nil
}

// Procs lists the processes the group started that still exist (a zombie
// counts until its parent reaps it).
func (g *Group) Procs() ([]int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.err(Procs); err != nil {
		return nil, err
	}
	return g.alive(), nil
}

func (g *Group) alive() []int {
	var out []int
	for _, pid := range g.pids {
		if syscall.Kill(pid, 0) == nil {
			out = append(out, pid)
		}
	}
	return out
}

// Kill sends SIGKILL to the processes the group started and counts the
// call. It cannot see what those processes forked.
func (g *Group) Kill() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.kills++
	if err := g.err(Kill); err != nil {
		return err
	}
	for _, pid := range g.alive() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

// OOMKills returns the count AddOOMKill raised.
func (g *Group) OOMKills() (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.err(OOMKills); err != nil {
		return 0, err
	}
	return g.oomKills, nil
}

// Update records the limits.
func (g *Group) Update(l resources.Limits) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.updates++
	if err := g.err(Update); err != nil {
		return err
	}
	g.limits = l
	return nil
}

// Stats returns what SetStats set, with OOMKills filled in.
func (g *Group) Stats() (resources.Stats, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.err(Stats); err != nil {
		return resources.Stats{}, err
	}
	st := g.stats
	st.OOMKills = g.oomKills
	st.Pids = uint64(len(g.alive()))
	return st, nil
}

// Delete marks the group deleted; it fails with ErrNotEmpty while a
// process it started exists. Deleting again is not an error.
func (g *Group) Delete() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.err(Delete); err != nil {
		return err
	}
	if pids := g.alive(); len(pids) > 0 {
		return fmt.Errorf("cgroup %s: delete: %w: %v", g.name, ErrNotEmpty, pids)
	}
	g.deleted = true
	return nil
}

// Fail makes every later call of m fail with err (nil: succeed again).
func (g *Group) Fail(m Method, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail == nil {
		g.fail = map[Method]error{}
	}
	g.fail[m] = err
}

// AddOOMKill raises the OOM kill count by n, as the kernel does when it
// OOM-kills a process of the group. Kill the process yourself (SIGKILL) to
// play a whole OOM kill.
func (g *Group) AddOOMKill(n uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.oomKills += n
}

// SetStats sets what Stats returns (OOMKills and Pids are computed).
func (g *Group) SetStats(st resources.Stats) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stats = st
}

// Limits returns the limits of the last successful Update (or Open).
func (g *Group) Limits() resources.Limits {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limits
}

// Updates counts the Update calls, those of Open included.
func (g *Group) Updates() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.updates
}

// Pids lists every pid Start returned, in order.
func (g *Group) Pids() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.pids)
}

// Kills counts the Kill calls.
func (g *Group) Kills() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.kills
}

// Deleted reports whether Delete succeeded.
func (g *Group) Deleted() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.deleted
}
