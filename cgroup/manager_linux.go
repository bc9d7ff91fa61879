package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/supervisor"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager creates, finds and cleans up the instance groups below one
// parent cgroup. It implements supervisor.Cgroups; it is safe for
// concurrent use.
type Manager struct {
	mode string
	log  *slog.Logger

	v2Parent   string    // mode v2: the parent's directory, e.g. /sys/fs/cgroup/glmd
	v1         *v1Layout // modes v1 and v1+unified
	twinParent string    // mode v1+unified: the twins' parent directory under the unified mount

	mu       sync.Mutex // guards groups and deleting
	groups   map[string]*group
	deleting map[string]chan struct{} // names whose directories are being removed; closed when done
	pending  sync.WaitGroup           // background deletions
}

// v1Layout is where the groups live in each v1 hierarchy.
type v1Layout struct {
	ctrls      []v1Ctrl
	subsystems []cgroup1.Subsystem // the library's view of ctrls, for cgroup1.New
	hiers      []v1Hier            // the distinct hierarchies (cpu and cpuacct may share one)
}

// v1Ctrl is one controller the groups use.
type v1Ctrl struct {
	name   string // cpu, cpuacct, cpuset, memory, pids, blkio, freezer
	mount  string // its hierarchy's directory, /sys/fs/cgroup/memory
	parent string // the groups' parent cgroup path in that hierarchy
}

// v1Hier is one v1 hierarchy, for moving a thread in and out.
type v1Hier struct {
	ctrl string // a controller of this hierarchy, to find a group's directory in it
	own  string // the directory of the agent's own cgroup, where the thread returns
}

// v1Controllers are the controllers a v1 group is created in. net_*,
// perf_event, hugetlb and rdma are left alone: glmd sets no limits there,
// and a group in every hierarchy only costs writes at each start. devices
// holds the GPUs an instance may not open ([gpu] isolate_devices); a group
// joins it only then (see group.joinDevices), as it costs every start.
var v1Controllers = []cgroup1.Name{cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Cpuset, cgroup1.Memory, cgroup1.Pids, cgroup1.Blkio, cgroup1.Freezer, cgroup1.Devices}

// v2Controllers are enabled for the groups where the parent offers them.
var v2Controllers = []string{"cpu", "cpuset", "io", "memory", "pids"}

// New detects the host's cgroup layout, prepares the parent cgroup (and on
// cgroup v2 enables the controllers for the groups) and returns the
// manager. Without usable cgroups it returns an error wrapping
// ErrUnavailable that says why.
func New(opts Options) (*Manager, error) { return newManager(opts, true) }

// newManager is New; twins=false leaves hybrid hosts without twins, so that
// tests exercise the plain v1 paths (freezer kill) on a hybrid machine.
func newManager(opts Options, twins bool) (*Manager, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, why := hostMode(statfsMagic)
	mode, err := chooseMode(opts.Mode, host, why, !twins)
	if err != nil {
		return nil, err
	}
	if opts.Parent != "" {
		if err := checkParent(opts.Parent); err != nil {
			return nil, err
		}
	}
	ownV1, ownUnified, err := ownCgroups("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	m := &Manager{mode: mode, log: log, groups: map[string]*group{}}
	switch mode {
	case ModeV2:
		err = m.setupV2(opts, ownUnified)
	default:
		err = m.setupV1(opts, ownV1)
		if err == nil && mode == ModeV1Twin {
			if terr := m.setupTwin(opts, ownUnified); terr != nil {
				// The twin only speeds up kills and adds events: go on without.
				log.Warn("cgroup: no twins in the unified hierarchy; kills freeze the v1 group instead", "err", terr)
				m.mode = ModeV1
			}
		}
	}
	if err != nil {
		return nil, err
	}
	log.Info("cgroups ready", "mode", m.mode, "cgroup", m.parentDir())
	return m, nil
}

// Mode reports the mode the manager runs in: "v1", "v1+unified" (v1 with
// twins in the unified hierarchy of a hybrid host) or "v2".
func (m *Manager) Mode() string { return m.mode }

// parentDir names the parent directory, for messages.
func (m *Manager) parentDir() string {
	if m.v1 != nil {
		c := m.v1.ctrls[0]
		return c.mount + c.parent
	}
	return m.v2Parent
}

// setupV2 prepares the parent on a unified host. It enables controllers
// only in the agent's own subtree: in the parent, and in the parent's parent
// when that is the cgroup the agent owns (its own cgroup, after moving
// itself into <own>/agent when MoveSelf allows). cgroup2.NewManager is not
// used: it writes cgroup.subtree_control in every ancestor (notes section 8).
func (m *Manager) setupV2(opts Options, own string) error {
	parent := opts.Parent
	if parent == "" {
		parent = defaultParent(own)
	}
	up := path.Dir(parent)
	upDir := filepath.Join(cgroupRoot, up)
	if up == ownedCgroup(own) {
		missing, err := missingControllers(upDir)
		if err != nil {
			return setupError(err)
		}
		if len(missing) > 0 {
			if up != "/" && own == up {
				if !opts.MoveSelf {
					return fmt.Errorf("cgroup: enable %s for %s: the agent itself runs in %s, and cgroup v2 allows no processes in a cgroup that gives controllers to its children: let the agent move itself to %s/agent (MoveSelf), or use systemd's DelegateSubgroup=agent",
						strings.Join(missing, " "), parent, up, up)
				}
				if err := moveSelf(filepath.Join(upDir, "agent")); err != nil {
					return setupError(err)
				}
				m.log.Info("cgroup: moved the agent into its own leaf", "cgroup", path.Join(up, "agent"))
			}
			if err := enableControllers(upDir, missing); err != nil {
				return setupError(err)
			}
		}
	}
	dir := filepath.Join(cgroupRoot, parent)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return setupError(fmt.Errorf("create the parent cgroup: %w", err))
	}
	missing, err := missingControllers(dir)
	if err != nil {
		return setupError(err)
	}
	if err := enableControllers(dir, missing); err != nil {
		return setupError(err)
	}
	if avail, err := readString(filepath.Join(dir, "cgroup.subtree_control")); err == nil {
		var absent []string
		for _, c := range v2Controllers {
			if !slices.Contains(strings.Fields(avail), c) {
				absent = append(absent, c)
			}
		}
		if len(absent) > 0 {
			m.log.Warn("cgroup: controllers not available to the groups; limits that need them will fail", "cgroup", parent, "missing", absent)
		}
	}
	m.v2Parent = dir
	return nil
}

// missingControllers lists the v2Controllers that dir's parent offers to
// dir (cgroup.controllers) but dir does not give its children yet.
func missingControllers(dir string) ([]string, error) {
	avail, err := readString(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	enabled, err := readString(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, c := range v2Controllers {
		if slices.Contains(strings.Fields(avail), c) && !slices.Contains(strings.Fields(enabled), c) {
			missing = append(missing, c)
		}
	}
	return missing, nil
}

// enableControllers writes "+c" for each controller to dir's
// cgroup.subtree_control, one at a time, so that the error names the one
// that failed.
func enableControllers(dir string, ctrls []string) error {
	for _, c := range ctrls {
		if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+"+c); err != nil {
			if errors.Is(err, syscall.EBUSY) {
				return fmt.Errorf("%w (cgroup v2 allows no processes in a cgroup that gives controllers to its children: move them to a leaf)", err)
			}
			return err
		}
	}
	return nil
}

// moveSelf moves the whole agent process into dir, created if needed.
func moveSelf(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create the agent's leaf cgroup: %w", err)
	}
	return writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(os.Getpid()))
}

// setupV1 prepares the parent in each v1 hierarchy glmd uses.
func (m *Manager) setupV1(opts Options, own map[string]string) error {
	all, err := cgroup1.Default()
	if err != nil {
		return unavailable("find the cgroup v1 hierarchies: %v", err)
	}
	l := &v1Layout{}
	seen := map[string]bool{}
	for _, s := range all {
		if !slices.Contains(v1Controllers, s.Name()) {
			continue
		}
		p, ok := s.(interface{ Path(string) string })
		if !ok {
			continue
		}
		name := string(s.Name())
		c := v1Ctrl{name: name, mount: p.Path("/"), parent: opts.Parent}
		ownPath := own[name]
		if ownPath == "" {
			ownPath = "/"
		}
		if c.parent == "" {
			c.parent = defaultParent(ownPath)
		}
		l.ctrls = append(l.ctrls, c)
		l.subsystems = append(l.subsystems, s)
		resolved, err := filepath.EvalSymlinks(c.mount)
		if err != nil {
			return unavailable("cgroup v1 hierarchy %s: %v", c.mount, err)
		}
		if !seen[resolved] {
			seen[resolved] = true
			l.hiers = append(l.hiers, v1Hier{ctrl: name, own: filepath.Join(c.mount, ownPath)})
		}
	}
	if !slices.ContainsFunc(l.ctrls, func(c v1Ctrl) bool { return c.name == "memory" }) {
		return unavailable("no cgroup v1 memory hierarchy under %s", cgroupRoot)
	}
	// Put the memory hierarchy first: it names the group in messages and
	// decides whether a group exists.
	slices.SortStableFunc(l.ctrls, func(a, b v1Ctrl) int {
		return boolCmp(a.name == "memory", b.name == "memory")
	})
	m.v1 = l
	// The library creates the parent like a group: cpuset.cpus and
	// cpuset.mems are copied down from the root, as a v1 cpuset needs.
	if _, err := cgroup1.New(l.pathFunc(""), &specs.LinuxResources{}, cgroup1.WithHierarchy(l.hierarchy)); err != nil {
		return setupError(fmt.Errorf("create the parent cgroup: %w", err))
	}
	return nil
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// hierarchy is the cgroup1.Hierarchy of the controllers glmd uses.
func (l *v1Layout) hierarchy() ([]cgroup1.Subsystem, error) { return l.subsystems, nil }

// groupHierarchy is the hierarchy a new group is created in: all but
// devices, which a group joins only when it denies devices.
func (l *v1Layout) groupHierarchy() ([]cgroup1.Subsystem, error) {
	return slices.DeleteFunc(slices.Clone(l.subsystems), func(s cgroup1.Subsystem) bool { return s.Name() == cgroup1.Devices }), nil
}

// pathFunc is the cgroup1.Path of the group called name ("" = the parent).
func (l *v1Layout) pathFunc(name string) cgroup1.Path {
	return func(sub cgroup1.Name) (string, error) {
		for _, c := range l.ctrls {
			if c.name == string(sub) {
				return path.Join(c.parent, name), nil
			}
		}
		return "", cgroup1.ErrControllerNotActive
	}
}

// setupTwin prepares the parent of the twins in the unified hierarchy of a
// hybrid host. The twins need no controllers, so nothing is enabled.
func (m *Manager) setupTwin(opts Options, own string) error {
	parent := opts.Parent
	if parent == "" {
		parent = defaultParent(own)
	}
	dir := filepath.Join(unifiedMount, parent)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	m.twinParent = dir
	return nil
}

// setupError marks permission problems as ErrUnavailable: that is "glmd
// cannot use cgroups here", not a bug.
func setupError(err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		why := "the cgroup file system is not writable"
		if os.Geteuid() != 0 {
			why = fmt.Sprintf("not root (uid %d) and the parent cgroup is not delegated to this user", os.Geteuid())
		}
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, why, err)
	}
	return fmt.Errorf("cgroup: %w", err)
}

var _ supervisor.Cgroups = (*Manager)(nil)

// Open returns the group called name with these limits: it creates the
// group, or finds it (open in this manager, or left by an earlier agent)
// and updates its limits. A limit the host cannot enforce is an error that
// names the key.
func (m *Manager) Open(ctx context.Context, name string, limits resources.Limits) (supervisor.Group, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// A deletion of the same name still running would remove the
	// directories this Open is about to use.
	for done := m.deleting[name]; done != nil; done = m.deleting[name] {
		m.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			m.mu.Lock()
			return nil, ctx.Err()
		}
		m.mu.Lock()
	}
	if g := m.groups[name]; g != nil && !g.isDeleted() {
		if err := g.ensure(limits); err != nil {
			return nil, err
		}
		return g, nil
	}
	g, created, err := m.makeGroup(name)
	if err != nil {
		return nil, err
	}
	// A new group has the kernel's defaults, which is what no limits ask
	// for: skip reading and writing a dozen files (most tasks set none, and
	// an agent starting a thousand of them pays this a thousand times).
	if created && limits.IsZero() {
		g.applied = &limits
		m.groups[name] = g
		return g, nil
	}
	if err := g.Update(limits); err != nil {
		if created {
			g.removeDirs()
		}
		return nil, err
	}
	m.groups[name] = g
	return g, nil
}

// makeGroup creates the group's directories, or finds them.
func (m *Manager) makeGroup(name string) (g *group, created bool, err error) {
	g = m.group(name)
	if m.v1 != nil {
		_, err := os.Stat(g.dirs["memory"])
		created = errors.Is(err, fs.ErrNotExist)
		if _, err := cgroup1.New(m.v1.pathFunc(name), &specs.LinuxResources{}, cgroup1.WithHierarchy(m.v1.groupHierarchy)); err != nil {
			if created {
				g.removeDirs()
			}
			return nil, false, fmt.Errorf("cgroup %s: create: %w", name, err)
		}
	}
	if g.unified != "" {
		err := os.Mkdir(g.unified, 0o755)
		switch {
		case err == nil:
			created = created || m.v1 == nil
		case !errors.Is(err, fs.ErrExist):
			if created {
				g.removeDirs()
			}
			return nil, false, fmt.Errorf("cgroup %s: create: %w", name, err)
		}
	}
	return g, created, nil
}

// group returns the handle of the group called name, without touching the
// file system.
func (m *Manager) group(name string) *group {
	g := &group{m: m, name: name}
	switch {
	case m.v1 != nil:
		g.dirs = make(map[string]string, len(m.v1.ctrls))
		for _, c := range m.v1.ctrls {
			g.dirs[c.name] = filepath.Join(c.mount, c.parent, name)
		}
		// A group an earlier Open (or agent) put into devices stays there.
		g.inDevices = g.dirs["devices"] != "" && exists(g.dirs["devices"])
		if m.twinParent != "" {
			g.unified = filepath.Join(m.twinParent, name)
		}
	default:
		g.unified = filepath.Join(m.v2Parent, name)
	}
	return g
}

// forget drops g from the open groups once it is deleted.
// Wait waits until the deletions Delete left running in the background
// are done, or ctx ends (the agent calls it before it exits).
func (m *Manager) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { m.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) forget(g *group) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.groups[g.name] == g {
		delete(m.groups, g.name)
	}
}

// cleanupWait bounds how long Cleanup waits for killed processes to go
// when ctx has no deadline.
const cleanupWait = 10 * time.Second

// Cleanup runs at agent start: every group under the parent that this
// manager has not opened was left by an earlier agent. Cleanup kills its
// processes (SIGKILL to all, descendants included), waits for them to be
// gone and deletes it. It returns the names of the groups it removed and
// an error for each group it could not.
func (m *Manager) Cleanup(ctx context.Context) (removed []string, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cleanupWait)
		defer cancel()
	}
	// This manager's own deletions first: a group it is removing is not a
	// leftover.
	if err := m.Wait(ctx); err != nil {
		return nil, fmt.Errorf("cgroup: wait for the removal of groups: %w", err)
	}
	names, err := m.leftovers()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range names {
		if err := m.cleanupGroup(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	// The caller starts workers next: the old directories must be gone.
	if err := m.Wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("cgroup: wait for the removal of old groups: %w", err))
	}
	if len(removed) > 0 {
		m.log.Info("cgroup: removed groups left by an earlier agent", "cgroup", m.parentDir(), "groups", removed)
	}
	return removed, errors.Join(errs...)
}

// parentDirs lists the parent's directory in every hierarchy.
func (m *Manager) parentDirs() []string {
	var dirs []string
	if m.v1 != nil {
		for _, c := range m.v1.ctrls {
			dirs = append(dirs, filepath.Join(c.mount, c.parent))
		}
	}
	for _, d := range []string{m.v2Parent, m.twinParent} {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// leftovers lists the groups below the parent in any hierarchy, except
// those open in this manager.
func (m *Manager) leftovers() ([]string, error) {
	dirs := m.parentDirs()
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cgroup: list %s: %w", d, err)
		}
		for _, e := range entries {
			if e.IsDir() && m.groups[e.Name()] == nil && !slices.Contains(names, e.Name()) {
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// cleanupGroup kills, awaits and deletes one leftover group.
func (m *Manager) cleanupGroup(ctx context.Context, name string) error {
	g := m.group(name)
	if err := g.Kill(); err != nil {
		return fmt.Errorf("cgroup %s: clean up: %w", name, err)
	}
	for p := newPoller(); ; {
		pids, err := g.Procs()
		if err != nil {
			return fmt.Errorf("cgroup %s: clean up: %w", name, err)
		}
		if len(pids) == 0 {
			break
		}
		if err := p.wait(ctx); err != nil {
			return fmt.Errorf("cgroup %s: clean up: processes %v still there after SIGKILL: %w", name, pids, err)
		}
		if err := g.Kill(); err != nil { // a process may have been half-forked at the first kill
			return fmt.Errorf("cgroup %s: clean up: %w", name, err)
		}
	}
	if err := g.Delete(); err != nil {
		return fmt.Errorf("cgroup %s: clean up: %w", name, err)
	}
	return nil
}

// poller backs off from 1 ms to 20 ms between checks of a condition.
type poller struct{ d time.Duration }

func newPoller() *poller { return &poller{d: time.Millisecond} }

func (p *poller) wait(ctx context.Context) error {
	t := time.NewTimer(p.d)
	defer t.Stop()
	p.d = min(2*p.d, 20*time.Millisecond)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// GroupOf returns the name of the instance group ("task@N") below this
// manager's parent that holds the process, and whether it is in one: the
// agent tells its own workers' strays (GPU memory left behind) from
// foreign processes by it.
func (m *Manager) GroupOf(pid int) (string, bool) {
	v1, unified, err := ownCgroups(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", false
	}
	var paths []string // the process's cgroup paths, each under its mount
	if m.v1 != nil {
		for _, c := range m.v1.ctrls {
			if p, ok := v1[c.name]; ok {
				paths = append(paths, filepath.Join(c.mount, p))
			}
		}
	}
	if unified != "" {
		paths = append(paths, filepath.Join(cgroupRoot, unified))
	}
	parents := m.parentDirs()
	for _, p := range paths {
		for _, parent := range parents {
			rest, ok := strings.CutPrefix(p, parent+"/")
			if !ok {
				continue
			}
			name, _, _ := strings.Cut(rest, "/")
			if name != "" {
				return name, true
			}
		}
	}
	return "", false
}
