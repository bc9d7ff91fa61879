package testenv

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startWorker starts the test worker with args and env added to ours; the cleanup kills and reaps it.
func startWorker(t *testing.T, args []string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Worker(t), args...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// zombie starts a worker that exits at once and waits until it is a zombie; the cleanup reaps it.
func zombie(t *testing.T) int {
	t.Helper()
	pid := startWorker(t, []string{"-exit", "0"}).Process.Pid
	Eventually(t, 0, func() bool { return inspect(pid).zombie }, "worker %d never became a zombie", pid)
	return pid
}

func TestAlive(t *testing.T) {
	reaped := startWorker(t, []string{"-exit", "0"})
	if err := reaped.Wait(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pid  int
		want bool
	}{
		{"self", os.Getpid(), true},
		{"sleeping worker", startWorker(t, nil).Process.Pid, true},
		{"zombie", zombie(t), false},
		{"reaped", reaped.Process.Pid, false},
		{"zero", 0, false},
		{"negative", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Alive(tt.pid); got != tt.want {
				t.Errorf("Alive(%d) = %v, want %v", tt.pid, got, tt.want)
			}
		})
	}
}

func TestWaitGone(t *testing.T) {
	t.Run("killed and reaped", func(t *testing.T) {
		cmd := startWorker(t, nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}()
		WaitGone(t, 0, cmd.Process.Pid)
		<-done
	})
	t.Run("nothing", func(t *testing.T) { WaitGone(t, 0) })

	sleeping := startWorker(t, nil).Process.Pid
	dead := zombie(t)
	tests := []struct {
		name      string
		pids      []int
		want, not []string
	}{
		{"alive", []int{sleeping}, []string{"alive: " + strconv.Itoa(sleeping) + " (testworker, state S"}, []string{"zombie"}},
		{"zombie", []int{dead}, []string{fmt.Sprintf("zombies (exited, never reaped by their parent): %d (testworker, state Z, parent %d)", dead, os.Getpid())}, []string{"alive"}},
		{"both", []int{dead, sleeping}, []string{"alive: " + strconv.Itoa(sleeping), "zombies", strconv.Itoa(dead)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := record(func(t testing.TB) { WaitGone(t, 20*time.Millisecond, tt.pids...) })
			if !r.failed {
				t.Fatal("WaitGone returned while the processes were there")
			}
			for _, s := range tt.want {
				if !strings.Contains(r.msg, s) {
					t.Errorf("message %q lacks %q", r.msg, s)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(r.msg, s) {
					t.Errorf("message %q has %q", r.msg, s)
				}
			}
		})
	}
}

func TestProcsWithEnv(t *testing.T) {
	const key = "GLMD_TESTENV_MARK"
	value := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	kv := key + "=" + value
	children := filepath.Join(t.TempDir(), "children")
	worker := startWorker(t, []string{"-spawn", "1", "-spawn-setsid", "1", "-children-file", children}, kv)
	// Registered after the worker's cleanup, so it runs first: the worker is still there to reap its children.
	t.Cleanup(func() {
		pids := ReadPids(t, children)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		WaitGone(t, 0, pids...)
	})
	// Near misses, which must not match.
	for _, env := range []string{key + "=" + value + "x", "X" + kv, key + "2=" + value} {
		startWorker(t, nil, env)
	}

	var kids []int
	Eventually(t, 0, func() bool { kids = ReadPids(t, children); return len(kids) == 2 }, "children never listed")
	want := append([]int{worker.Process.Pid}, kids...)
	slices.Sort(want)
	if got := ProcsWithEnv(kv); !slices.Equal(got, want) {
		t.Errorf("ProcsWithEnv(%q) = %v, want the worker and its children %v", kv, got, want)
	}

	for _, pid := range kids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	Eventually(t, 0, func() bool { return len(ProcsWithEnv(kv)) == 1 }, "killed children still listed")
	if got := ProcsWithEnv(kv); !slices.Equal(got, []int{worker.Process.Pid}) {
		t.Errorf("after killing the children ProcsWithEnv = %v, want only the worker %d", got, worker.Process.Pid)
	}
}

func TestWorker_Static(t *testing.T) {
	f, err := elf.Open(Worker(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("worker has an ELF interpreter: not built with CGO_ENABLED=0")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("worker links %v", libs)
	}
}
