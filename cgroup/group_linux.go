package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/supervisor"
)

// group is one instance's cgroup: a v2 group, or the v1 groups of one name
// in each hierarchy plus, on a hybrid host, the twin in the unified
// hierarchy (which gives cgroup.kill and a complete process list).
type group struct {
	m       *Manager
	name    string
	unified string            // the cgroup2 directory: the v2 group or the hybrid twin; "" without
	dirs    map[string]string // v1: controller -> the group's directory in its hierarchy

	// mu serializes Start, Kill, Update and Delete. A v1 Start moves an
	// agent thread into the group: a freeze then would freeze that thread,
	// and listing the group would find the agent itself.
	mu      sync.Mutex
	deleted bool              // guarded by mu
	applied *resources.Limits // guarded by mu: the limits the files hold, nil when unknown
	// v2: the device program attached for DenyDevices; detach removes it.
	denied []resources.CharDevice
	detach func() error
	// inDevices: on v1 the group has a directory in the devices hierarchy
	// (guarded by mu).
	inDevices bool
}

var _ supervisor.Group = (*group)(nil)

// Name is the name the group was opened with.
func (g *group) Name() string { return g.name }

func (g *group) isDeleted() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.deleted
}

// Update applies the whole [resources] table to the running group: limits
// it asks for are set, limits it no longer asks for are reset.
func (g *group) Update(l resources.Limits) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deleted {
		return fmt.Errorf("cgroup %s: update: the group was deleted", g.name)
	}
	asked := l
	l, err := wholeDisks(l)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", g.name, err)
	}
	if err := g.joinDevices(l); err != nil {
		return fmt.Errorf("cgroup %s: %w", g.name, err)
	}
	var settings []setting
	if g.m.v1 != nil {
		settings, err = v1Settings(l, g.v1Host())
	} else {
		settings, err = v2Settings(l, g.v2Host())
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", g.name, err)
	}
	g.applied = nil // a failure leaves the files half written
	for _, s := range settings {
		dir := g.unified
		if s.ctrl != "" {
			dir = g.dirs[s.ctrl]
		}
		if err := writeFile(filepath.Join(dir, s.file), s.value); err != nil {
			return fmt.Errorf("cgroup %s: %w", g.name, err)
		}
	}
	if g.m.v1 == nil {
		if err := g.setDeviceFilter(l.DenyDevices); err != nil {
			return fmt.Errorf("cgroup %s: %w", g.name, err)
		}
	}
	g.applied = &asked
	return nil
}

// ensure applies l unless the group holds it already: a restart reopens
// the group with the same limits, and rewriting a dozen files would only
// delay it.
func (g *group) ensure(l resources.Limits) error {
	g.mu.Lock()
	same := g.applied != nil && reflect.DeepEqual(*g.applied, l)
	g.mu.Unlock()
	if same {
		return nil
	}
	return g.Update(l)
}

// wholeDisks returns l with every IO device replaced by its disk.
func wholeDisks(l resources.Limits) (resources.Limits, error) {
	if len(l.IO) == 0 {
		return l, nil
	}
	io := make([]resources.IODevice, len(l.IO))
	for i, d := range l.IO {
		maj, mnr, err := wholeDisk(d.Major, d.Minor)
		if err != nil {
			return l, fmt.Errorf("io: device %s: %w", d.Path, err)
		}
		d.Major, d.Minor = maj, mnr
		io[i] = d
	}
	l.IO = io
	return l, nil
}

func (g *group) v2Host() v2Host {
	files := fileSet(g.unified)
	var ioMax []string
	if files["io.max"] {
		data, _ := readString(filepath.Join(g.unified, "io.max"))
		ioMax = parseDeviceKeys(data)
	}
	return v2Host{has: func(f string) bool { return files[f] }, ioMax: ioMax}
}

func (g *group) v1Host() v1Host {
	denied := g.applied != nil && len(g.applied.DenyDevices) > 0
	files := map[string]map[string]bool{}
	for ctrl, dir := range g.dirs {
		files[ctrl] = fileSet(dir)
	}
	read := func(ctrl, file string) string {
		if !files[ctrl][file] {
			return ""
		}
		s, _ := readString(filepath.Join(g.dirs[ctrl], file))
		return s
	}
	limit := func(file string) int64 {
		v, err := parseLimit(read("memory", file))
		if err != nil {
			return -1
		}
		return v
	}
	h := v1Host{
		has:        func(ctrl, file string) bool { return files[ctrl][file] },
		memLimit:   limit("memory.limit_in_bytes"),
		memswLimit: limit("memory.memsw.limit_in_bytes"),
		throttled:  map[string][]string{},
		denied:     denied,
	}
	for _, f := range []string{"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"} {
		h.throttled[f] = parseDeviceKeys(read("blkio", f))
	}
	if dir := g.dirs["cpuset"]; dir != "" {
		cpus, _ := readString(filepath.Join(filepath.Dir(dir), "cpuset.cpus"))
		mems, _ := readString(filepath.Join(filepath.Dir(dir), "cpuset.mems"))
		h.parentCpus, h.parentMems = strings.TrimSpace(cpus), strings.TrimSpace(mems)
	}
	return h
}

// Procs lists the processes in the group and in cgroups below it. On a
// hybrid host it reads the twin and the v1 groups, so that processes an
// earlier agent placed without a twin are found too. A group that does not
// exist has no processes.
func (g *group) Procs() ([]int, error) {
	var pids []int
	for _, dir := range g.procsDirs() {
		list, err := readProcs(dir)
		// ENODEV: the directory was removed after it was opened (a
		// deletion in the background); it holds no one.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: list processes: %w", g.name, err)
		}
		for _, pid := range list {
			if !slices.Contains(pids, pid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// procsDirs are the directories whose cgroup.procs together list the
// group's processes: the unified one, and on v1 the freezer's (the
// hierarchy a kill freezes) and the memory controller's (the one a group
// must have), in case an earlier agent left one of them behind.
func (g *group) procsDirs() []string {
	var dirs []string
	if g.unified != "" {
		dirs = append(dirs, g.unified)
	}
	if g.m.v1 != nil {
		if d := g.dirs["freezer"]; d != "" {
			dirs = append(dirs, d)
		}
		dirs = append(dirs, g.dirs["memory"])
	}
	return dirs
}

// OOMKills is the group's cumulative count of processes the OOM killer
// ended: oom_kill in v2 memory.events (hierarchical; not "oom", which
// counts where a limit was hit, containerd#6323) or in v1
// memory.oom_control. A group without the memory controller reads 0.
func (g *group) OOMKills() (uint64, error) {
	dir, file := g.unified, "memory.events"
	if g.m.v1 != nil {
		dir, file = g.dirs["memory"], "memory.oom_control"
	}
	data, err := readString(filepath.Join(dir, file))
	if errors.Is(err, fs.ErrNotExist) && exists(dir) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cgroup %s: read the OOM kill count: %w", g.name, err)
	}
	return parseFlatKeyed(data)["oom_kill"], nil
}

// Delete removes the group (and its twin). It fails with ErrNotEmpty while
// processes remain; a group that no longer exists is deleted already.
//
// The check is done at once; the removal goes on in the background (a
// later Open of the same name waits for it, Manager.Wait too): before the
// rmdir the kernel is asked to reclaim the group's page cache, or the
// memory cgroup lingers as a "dying" one until the pages are reclaimed and
// many short-lived workers pile them up (notes section 9). That reclaim
// waits for dirty pages: measured here about 100 ms after a worker wrote a
// file, which must not hold up the agent's reload or a stop.
func (g *group) Delete() error {
	defer g.m.forget(g)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deleted {
		return nil
	}
	pids, err := g.Procs()
	if err != nil {
		return err
	}
	// A killed process stays listed until its parent reaps it; the kernel
	// removes a cgroup that holds only zombies (notes section 5).
	pids = slices.DeleteFunc(pids, zombie)
	if len(pids) > 0 {
		return fmt.Errorf("cgroup %s: delete: %w: %d processes left (%v); kill them first", g.name, ErrNotEmpty, len(pids), pids)
	}
	g.deleted = true
	// The program goes with the directory; only the fd is ours to close.
	if g.detach != nil {
		_ = g.dropDeviceFilter()
	}
	m := g.m
	done := make(chan struct{})
	m.mu.Lock()
	if m.deleting == nil {
		m.deleting = map[string]chan struct{}{}
	}
	m.deleting[g.name] = done
	m.mu.Unlock()
	m.pending.Go(func() {
		defer func() {
			m.mu.Lock()
			delete(m.deleting, g.name)
			m.mu.Unlock()
			close(done)
		}()
		g.reclaim()
		if err := g.removeDirs(); err != nil {
			m.log.Warn("cgroup: delete", "cgroup", g.name, "err", err)
		}
	})
	return nil
}

// reclaim drops the page cache charged to the empty group; failures only
// cost a dying cgroup for a while, so they are ignored.
func (g *group) reclaim() {
	if g.m.v1 != nil {
		if d := g.dirs["memory"]; d != "" {
			_ = writeFile(filepath.Join(d, "memory.force_empty"), "0")
		}
		return
	}
	cur, err := readString(filepath.Join(g.unified, "memory.current"))
	if cur = strings.TrimSpace(cur); err == nil && cur != "0" && exists(filepath.Join(g.unified, "memory.reclaim")) {
		_ = writeFile(filepath.Join(g.unified, "memory.reclaim"), cur)
	}
}

// removeDirs removes the group's directories in every hierarchy.
func (g *group) removeDirs() error {
	var errs []error
	for _, d := range g.allDirs() {
		if err := removeTree(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// allDirs are the group's directories, each once (cpu and cpuacct may be
// one hierarchy reached by two names).
func (g *group) allDirs() []string {
	var dirs []string
	if g.m.v1 != nil {
		for _, c := range g.m.v1.ctrls {
			dirs = append(dirs, g.dirs[c.name])
		}
	}
	if g.unified != "" {
		dirs = append(dirs, g.unified)
	}
	return dirs
}
