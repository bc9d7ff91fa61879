package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/open-autoglm/glmd/internal/testenv"
)

// TestWorker_BurnCPU counts the threads of the worker that use CPU: N of them, also where N is more than the
// machine's CPUs, which GOMAXPROCS would cap otherwise.
func TestWorker_BurnCPU(t *testing.T) {
	// A sleeping thread gathers no ticks; a spinning one 100 a second (USER_HZ is 100 wherever Linux runs) while it
	// has a CPU, so this is a fraction of a second even on a busy machine.
	const busy = 10
	for _, n := range []int{1, 3} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			p := start(t, []string{"-burn-cpu", strconv.Itoa(n)})
			p.waitLine(fmt.Sprintf("burning %d", n))
			pid := p.cmd.Process.Pid
			before := threadTicks(t, pid)
			testenv.Eventually(t, deadline, func() bool {
				spinning := 0
				for tid, ticks := range threadTicks(t, pid) {
					if ticks-before[tid] >= busy {
						spinning++
					}
				}
				return spinning >= n
			}, "fewer than %d threads of the worker used %d ticks of CPU each", n, busy)
		})
	}
}

// threadTicks reads utime+stime of every thread of pid, by thread id.
func threadTicks(t *testing.T, pid int) map[int]uint64 {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	ticks := make(map[int]uint64, len(entries))
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue // the thread exited
		}
		if err != nil {
			t.Fatal(err)
		}
		// Fields 14 and 15 of proc(5), counted after the command name, which may hold spaces.
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		utime, err1 := strconv.ParseUint(fields[11], 10, 64)
		stime, err2 := strconv.ParseUint(fields[12], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("%s/%s/stat: %v", dir, e.Name(), err)
		}
		ticks[tid] = utime + stime
	}
	return ticks
}

func TestWorker_Hog(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		bytes int64
		want  []string
	}{
		{"default step", []string{"-hog", "32MiB"}, 32 << 20, hogLines(4, 8, 12, 16, 20, 24, 28, 32)},
		{"uneven", []string{"-hog", "10MiB", "-hog-step", "4MiB"}, 10 << 20, hogLines(4, 8, 10)},
		{"bytes, after printing", []string{"-echo", "first", "-hog", "3145728", "-hog-step", "1048576"}, 3 << 20,
			append([]string{"first"}, hogLines(1, 2, 3)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, tt.args)
			for i, want := range tt.want {
				if line, ok := p.next(); line != want {
					t.Fatalf("line %d is %q (open %v), want %q; stderr: %s", i, line, ok, want, p.stderr())
				}
			}
			// Resident, not just allocated: the runtime does not touch fresh pages of large objects.
			rss, err := strconv.Atoi(strings.TrimSuffix(statusValue(t, p.cmd.Process.Pid, "RssAnon"), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			if int64(rss)<<10 < tt.bytes {
				t.Errorf("RssAnon %d kB after hogging %d kB", rss, tt.bytes>>10)
			}
			if !testenv.Alive(p.cmd.Process.Pid) {
				t.Errorf("worker gone after hogging: %v", p.wait())
			}
		})
	}
}

func hogLines(mibs ...int) []string {
	lines := make([]string, len(mibs))
	for i, n := range mibs {
		lines[i] = fmt.Sprintf("hogged %d MiB", n)
	}
	return lines
}

func TestWorker_Fork(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		t.Run(fmt.Sprintf("ignore-term=%v", ignore), func(t *testing.T) {
			children := filepath.Join(t.TempDir(), "children")
			args := []string{"-echo", "first", "-fork", "5", "-children-file", children}
			if ignore {
				args = append(args, "-children-ignore-term")
			}
			p := start(t, args)
			killChildren(t, children)
			p.waitLine("first")
			if line, _ := p.next(); line != "forked 5 of 5 (0 failed)" {
				t.Fatalf("line %q, want forked 5 of 5 (0 failed); stderr: %s", line, p.stderr())
			}
			worker := p.cmd.Process.Pid
			pids := waitPids(t, children, 5)
			for _, pid := range pids {
				if pid == worker || !testenv.Alive(pid) {
					t.Fatalf("children file lists %v; %d is the worker or not alive", pids, pid)
				}
				checkRelation(t, pid, "parent", ppid(t, pid), worker)
				checkRelation(t, pid, "process group", pgid(t, pid), worker)
				if got := ignoresTerm(t, pid); got != ignore {
					t.Errorf("child %d ignores SIGTERM: %v, want %v", pid, got, ignore)
				}
			}
			// Gone, not zombies: the worker reaps them.
			for _, pid := range pids[:2] {
				if err := unix.Kill(pid, unix.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			testenv.WaitGone(t, deadline, pids[:2]...)
			if !testenv.Alive(worker) {
				t.Error("worker died with its children")
			}
		})
	}
}

func TestWorker_WriteDirect(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		bytes, block int
		before       []string // stdout lines before the result
	}{
		{name: "default", bytes: 32 << 20, block: 1 << 20},
		{name: "uneven, after printing", args: []string{"-write-bytes", "5MiB", "-write-block", "2MiB", "-echo", "first"},
			bytes: 5 << 20, block: 2 << 20, before: []string{"first"}},
		{name: "small", args: []string{"-write-bytes", "12288", "-write-block", "8192"}, bytes: 12288, block: 8192},
	}
	result := regexp.MustCompile(`^wrote (\S+) MiB in (\S+) \(([0-9.]+) MiB/s\)$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out")
			// Longer than what the worker writes: it must truncate.
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, int64(tt.bytes)+1<<20); err != nil {
				t.Fatal(err)
			}
			p := start(t, append([]string{"-write-direct", path}, tt.args...))
			lines := p.rest()
			ws := p.wait()
			if stderr := p.stderr(); ws.ExitStatus() == 1 && strings.Contains(stderr, "refuses O_DIRECT") {
				testenv.Skip(t, "the temporary directory %s is on a filesystem without O_DIRECT: %s", filepath.Dir(path), stderr)
			}
			if !ws.Exited() || ws.ExitStatus() != 0 {
				t.Fatalf("wait status %v, want exit 0; stderr: %s", ws, p.stderr())
			}
			if len(lines) != len(tt.before)+1 || !result.MatchString(lines[len(lines)-1]) {
				t.Fatalf("stdout %q, want %q and a line like \"wrote N MiB in D (R MiB/s)\"", lines, tt.before)
			}
			for i, want := range tt.before {
				if lines[i] != want {
					t.Errorf("line %d is %q, want %q", i, lines[i], want)
				}
			}
			if m := result.FindStringSubmatch(lines[len(lines)-1]); m[1] != mib(int64(tt.bytes)) {
				t.Errorf("reported %s MiB, want %s", m[1], mib(int64(tt.bytes)))
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			block := make([]byte, tt.block)
			fillPattern(block)
			want := bytes.Repeat(block, tt.bytes/tt.block+1)[:tt.bytes]
			if !bytes.Equal(got, want) {
				t.Errorf("file holds %d bytes, want %d bytes of the pattern", len(got), len(want))
			}
		})
	}

	t.Run("error", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing", "out")
		p := start(t, []string{"-write-direct", path})
		if ws := p.wait(); !ws.Exited() || ws.ExitStatus() != 1 {
			t.Errorf("wait status %v, want exit 1", ws)
		}
		if stderr := p.stderr(); !strings.Contains(stderr, "-write-direct") || !strings.Contains(stderr, path) ||
			!strings.Contains(stderr, "no such file or directory") {
			t.Errorf("stderr %q does not name the mode, the path and the error", stderr)
		}
		if lines := p.rest(); len(lines) > 0 {
			t.Errorf("stdout %q after an error", lines)
		}
	})
}
