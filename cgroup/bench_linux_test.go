package cgroup

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/resources"
	"github.com/open-autoglm/glmd/internal/testenv"
	"github.com/open-autoglm/glmd/supervisor"
)

// benchLimits is what a typical worker asks for.
var benchLimits = resources.Limits{CPUs: 2, MemoryMax: 1 << 30, MemoryHigh: 768 << 20, PidsMax: 512}

// forBenchModes runs bench once per mode this host offers.
func forBenchModes(b *testing.B, bench func(*testing.B, *Manager)) {
	for _, mode := range []string{ModeV1Twin, ModeV1, ModeV2} {
		b.Run(mode, func(b *testing.B) {
			if !hostOffers(mode) {
				b.Skipf("this host does not offer mode %s", mode)
			}
			m := testManager(b, mode)
			m.log = slog.New(slog.DiscardHandler)
			bench(b, m)
		})
	}
}

func hostOffers(mode string) bool {
	host, why := hostMode(statfsMagic)
	got, err := chooseMode(ModeAuto, host, why, mode == ModeV1)
	return err == nil && got == mode
}

// BenchmarkGroup_CreateUpdateDelete: one group's life without processes:
// Open (mkdir in every hierarchy, all limit files), Update, Delete.
func BenchmarkGroup_CreateUpdateDelete(b *testing.B) {
	forBenchModes(b, func(b *testing.B, m *Manager) {
		var create, update, del []time.Duration
		up := benchLimits
		up.MemoryMax *= 2
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			g, err := m.Open(b.Context(), fmt.Sprintf("bench@%d", i), benchLimits)
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := g.Update(up); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			if err := g.Delete(); err != nil {
				b.Fatal(err)
			}
			create, update, del = append(create, t1.Sub(t0)), append(update, t2.Sub(t1)), append(del, time.Since(t2))
		}
		testenv.ReportQuantiles(b, create, "create")
		testenv.ReportQuantiles(b, update, "update")
		testenv.ReportQuantiles(b, del, "delete")
	})
}

// BenchmarkGroup_StartTrue: create a group, Start /bin/true in it, wait
// for it, delete the group; "none" is the same start without a cgroup.
func BenchmarkGroup_StartTrue(b *testing.B) {
	b.Run("none", func(b *testing.B) {
		var starts []time.Duration
		for b.Loop() {
			t0 := time.Now()
			pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
			if err != nil {
				b.Fatal(err)
			}
			starts = append(starts, time.Since(t0))
			waitPid(b, pid)
		}
		testenv.ReportQuantiles(b, starts, "start")
	})
	forBenchModes(b, func(b *testing.B, m *Manager) {
		var starts, total []time.Duration
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			g, err := m.Open(b.Context(), fmt.Sprintf("true@%d", i), benchLimits)
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			pid, err := g.Start(forkTrue)
			if err != nil {
				b.Fatal(err)
			}
			starts = append(starts, time.Since(t1))
			waitPid(b, pid)
			if err := g.Delete(); err != nil {
				b.Fatal(err)
			}
			total = append(total, time.Since(t0))
		}
		testenv.ReportQuantiles(b, starts, "start")
		testenv.ReportQuantiles(b, total, "create-start-wait-delete")
	})
}

func forkTrue(fd int) (int, error) {
	return syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{Sys: sysAttr(fd)})
}

func waitPid(b *testing.B, pid int) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			if err != nil {
				b.Fatal(err)
			}
			return
		}
	}
}

// BenchmarkGroup_200Alive: create 200 groups with limits, all alive at
// once, then delete them all.
func BenchmarkGroup_200Alive(b *testing.B) {
	const n = 200
	forBenchModes(b, func(b *testing.B, m *Manager) {
		var create, del []time.Duration
		for b.Loop() {
			groups := make([]supervisor.Group, n)
			t0 := time.Now()
			for i := range groups {
				g, err := m.Open(b.Context(), fmt.Sprintf("many@%d", i), benchLimits)
				if err != nil {
					b.Fatal(err)
				}
				groups[i] = g
			}
			t1 := time.Now()
			for _, g := range groups {
				if err := g.Delete(); err != nil {
					b.Fatal(err)
				}
			}
			create, del = append(create, t1.Sub(t0)), append(del, time.Since(t1))
		}
		testenv.ReportQuantiles(b, create, "create-200")
		testenv.ReportQuantiles(b, del, "delete-200")
	})
}
