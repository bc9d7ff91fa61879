package cgroup

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of the freeze-and-kill rounds.
const (
	killTimeout   = 5 * time.Second        // all rounds together
	freezeTimeout = 200 * time.Millisecond // one freeze; a freezer stuck in FREEZING is thawed and the round goes on unfrozen
)

// Kill sends SIGKILL to every process in the group and the cgroups below
// it, including those that left the process group (setsid, double fork),
// and returns without waiting for them to end. A deleted group has none.
//
// It freezes the group, signals every process it lists, thaws, and repeats
// until a round finds none it has not signalled yet. cgroup.kill is not
// used: on kernels with the kill_seq fix for the fork/cgroup.kill race
// (early 2025, backported to the stable kernels) a cgroup once written "1"
// to cgroup.kill SIGKILLs every later child cloned into it with
// CLONE_INTO_CGROUP, because the child's sequence is taken from the forking
// process's own cgroup (kernel/cgroup/cgroup.c cgroup_css_set_fork). A
// restart in the same group would die at birth; reproduced on 6.18.44 and
// Debian's 6.1.176 with /bin/sleep.
func (g *group) Kill() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deleted {
		return nil // a new group of the same name is not this one's to kill
	}
	if err := g.freezeKill(); err != nil {
		return fmt.Errorf("cgroup %s: kill: %w", g.name, err)
	}
	return nil
}

// freezeKill is the kill without cgroup.kill. SIGKILL to a frozen v1 task
// is delivered only once it is thawed (runc#3217), so each round thaws
// after signalling. A process that forked before the freeze shows up in
// the next round's list; a frozen one cannot fork.
func (g *group) freezeKill() error {
	deadline := time.Now().Add(killTimeout)
	signalled := map[int]bool{}
	for {
		g.freeze()
		pids, err := g.Procs()
		if err != nil {
			g.thaw()
			return err
		}
		fresh := 0
		for _, pid := range pids {
			if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				g.thaw()
				return fmt.Errorf("signal %d: %w", pid, err)
			}
			if !signalled[pid] {
				signalled[pid] = true
				fresh++
			}
		}
		g.thaw()
		if fresh == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes keep appearing after %v of SIGKILL rounds (last: %v)", killTimeout, pids)
		}
	}
}

// freeze freezes the group as far as it can within freezeTimeout. The
// library's Freeze polls forever, and a freezer can stay in FREEZING
// (runc#1609, #2753); then the group is thawed and the round goes on.
func (g *group) freeze() {
	f := g.freezer()
	if f.file == "" {
		return
	}
	if err := writeFile(f.file, f.freeze); err != nil {
		return
	}
	delay := 50 * time.Microsecond
	for deadline := time.Now().Add(freezeTimeout); time.Now().Before(deadline); {
		if f.frozen() {
			return
		}
		time.Sleep(delay)
		delay = min(2*delay, 5*time.Millisecond)
	}
	g.thaw()
}

// thaw undoes freeze.
func (g *group) thaw() {
	if f := g.freezer(); f.file != "" {
		_ = writeFile(f.file, f.thaw)
	}
}

// freezerFile is how a group is frozen: the v1 freezer's freezer.state
// (on hybrid hosts too: it holds every process the v1 groups hold), else
// cgroup v2's cgroup.freeze. file is "" without a freezer.
type freezerFile struct {
	file, freeze, thaw string
	frozen             func() bool
}

func (g *group) freezer() freezerFile {
	if g.m.v1 != nil {
		if d := g.dirs["freezer"]; d != "" && exists(d) {
			f := filepath.Join(d, "freezer.state")
			return freezerFile{file: f, freeze: "FROZEN", thaw: "THAWED", frozen: func() bool {
				s, err := readString(f)
				return err != nil || strings.TrimSpace(s) == "FROZEN"
			}}
		}
	}
	if g.unified == "" || !exists(filepath.Join(g.unified, "cgroup.freeze")) {
		return freezerFile{}
	}
	return freezerFile{file: filepath.Join(g.unified, "cgroup.freeze"), freeze: "1", thaw: "0", frozen: func() bool {
		s, err := readString(filepath.Join(g.unified, "cgroup.events"))
		return err != nil || parseFlatKeyed(s)["frozen"] == 1
	}}
}
