package confwatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/open-autoglm/glmd/internal/testenv"
)

// The watcher tests assert inotify's behaviour (events on names in a
// watched directory), hence Linux only.

const deadline = 10 * time.Second

// traced is one event or error the Run goroutine handled.
type traced struct {
	ev  fsnotify.Event
	err error
	k   kind
}

// harness runs a Watcher for one test and collects what it hands over.
type harness struct {
	t    *testing.T
	dir  string
	w    *Watcher
	last Snapshot // the last snapshot received

	mu    sync.Mutex
	trace []traced
	// hold, when set, is called for each handled event before it is
	// recorded; it may block the Run goroutine.
	hold func(fsnotify.Event)
}

func startWatcher(t *testing.T, dir string, hold func(fsnotify.Event)) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir, hold: hold}
	h.w = New(dir, Options{Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	h.w.trace = func(ev fsnotify.Event, err error, k kind) {
		if h.hold != nil && err == nil {
			h.hold(ev)
		}
		h.mu.Lock()
		h.trace = append(h.trace, traced{ev, err, k})
		h.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	})
	return h
}

// waitFor receives snapshots until one satisfies ok, and fails the test
// after the deadline. It checks that Seq increases.
func (h *harness) waitFor(what string, ok func(Snapshot) bool) Snapshot {
	h.t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case s := <-h.w.Snapshots():
			if s.Seq <= h.last.Seq {
				h.t.Fatalf("snapshot Seq %d after Seq %d, want increasing", s.Seq, h.last.Seq)
			}
			if s.Dir != h.dir {
				h.t.Fatalf("snapshot Dir = %q, want %q", s.Dir, h.dir)
			}
			h.last = s
			if ok(s) {
				return s
			}
		case <-timeout:
			h.t.Fatalf("no snapshot with %s within %v; last one: Seq %d, Err %v, files %v", what, deadline, h.last.Seq, h.last.Err, filesOrNil(h.t, h.last))
		}
	}
}

// waitFiles waits for a snapshot whose files are exactly want.
func (h *harness) waitFiles(want map[string]string) Snapshot {
	h.t.Helper()
	return h.waitFor(fmt.Sprintf("files %v", want), func(s Snapshot) bool {
		return s.Err == nil && maps.Equal(files(h.t, s), want)
	})
}

// waitMissing waits for a snapshot that says conf_dir is missing.
func (h *harness) waitMissing() Snapshot {
	h.t.Helper()
	s := h.waitFor("Err = ErrDirMissing", func(s Snapshot) bool { return s.Err != nil })
	if !errors.Is(s.Err, ErrDirMissing) || !errors.Is(s.Err, fs.ErrNotExist) {
		h.t.Fatalf("Err = %v, want ErrDirMissing wrapping fs.ErrNotExist", s.Err)
	}
	return s
}

func (h *harness) traced() []traced {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]traced(nil), h.trace...)
}

func filesOrNil(t testing.TB, s Snapshot) map[string]string {
	if s.FS == nil {
		return nil
	}
	return files(t, s)
}

func TestWatcher_InPlaceChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		want   map[string]string
	}{
		{
			name:   "overwrite",
			change: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "x.toml"), "v2") },
			want:   map[string]string{"x.toml": "v2"},
		},
		{
			name: "append in two writes",
			change: func(t *testing.T, dir string) {
				f, err := os.OpenFile(filepath.Join(dir, "x.toml"), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				for _, part := range []string{"\npart1", "\npart2"} {
					if _, err := f.WriteString(part); err != nil {
						t.Fatal(err)
					}
				}
			},
			want: map[string]string{"x.toml": "v1\npart1\npart2"},
		},
		{
			name:   "new file",
			change: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "y.toml"), "y") },
			want:   map[string]string{"x.toml": "v1", "y.toml": "y"},
		},
		{
			name: "rename into place",
			change: func(t *testing.T, dir string) {
				tmp := filepath.Join(t.TempDir(), "y.toml")
				writeFile(t, tmp, "y")
				if err := os.Rename(tmp, filepath.Join(dir, "y.toml")); err != nil {
					t.Fatal(err)
				}
			},
			want: map[string]string{"x.toml": "v1", "y.toml": "y"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "x.toml"), "v1")
			h := startWatcher(t, dir, nil)
			if s := h.waitFiles(map[string]string{"x.toml": "v1"}); s.Seq != 1 {
				t.Errorf("first snapshot has Seq %d, want 1", s.Seq)
			}
			tt.change(t, dir)
			h.waitFiles(tt.want)
		})
	}
}

func TestWatcher_Chmod(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.toml")
	writeFile(t, path, "v1")
	h := startWatcher(t, dir, nil)
	h.waitFiles(map[string]string{"x.toml": "v1"})
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	h.waitFor("x.toml mode 0600", func(s Snapshot) bool {
		fi, err := fs.Stat(s.FS, "x.toml")
		return err == nil && fi.Mode().Perm() == 0o600
	})
}

func TestWatcher_EditorSave(t *testing.T) {
	rename := func(t *testing.T, from, to string) {
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(t *testing.T, path string) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		save func(t *testing.T, dir string, p func(string) string)
		want map[string]string
	}{
		{
			// vim, backupcopy=no: probe, swap file, move the original aside,
			// write a new file, drop the backup.
			name: "vim",
			save: func(t *testing.T, dir string, p func(string) string) {
				writeFile(t, p("4913"), "")
				remove(t, p("4913"))
				writeFile(t, p(".x.toml.swp"), "swap")
				rename(t, p("x.toml"), p("x.toml~"))
				writeFile(t, p("x.toml"), "v2")
				remove(t, p("x.toml~"))
				remove(t, p(".x.toml.swp"))
			},
			want: map[string]string{"x.toml": "v2"},
		},
		{
			// emacs: a lock symlink, a backup copy, an in-place write.
			name: "emacs",
			save: func(t *testing.T, dir string, p func(string) string) {
				mustSymlink(t, "root@host.1234:1700000000", p(".#x.toml"))
				writeFile(t, p("x.toml~"), "v1")
				writeFile(t, p("x.toml"), "v2")
				remove(t, p(".#x.toml"))
			},
			want: map[string]string{"x.toml": "v2"}, // x.toml~ stays, not a candidate
		},
		{
			name: "temp file renamed over",
			save: func(t *testing.T, dir string, p func(string) string) {
				writeFile(t, p("x.toml.tmp"), "v2")
				rename(t, p("x.toml.tmp"), p("x.toml"))
			},
			want: map[string]string{"x.toml": "v2"},
		},
		{
			// Only ignored names change; y.toml is the marker that shows the
			// watcher has seen all of it.
			name: "ignored names only",
			save: func(t *testing.T, dir string, p func(string) string) {
				for _, n := range []string{".x.toml.swp", "x.toml~", ".#x.toml", "4913", "x.toml.tmp", ".hidden.toml"} {
					writeFile(t, p(n), "junk")
					writeFile(t, p(n), "junk, again")
				}
				for _, n := range []string{".x.toml.swp", "4913", "x.toml.tmp"} {
					remove(t, p(n))
				}
				writeFile(t, p("y.toml"), "y")
			},
			want: map[string]string{"x.toml": "v1", "y.toml": "y"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := func(n string) string { return filepath.Join(dir, n) }
			writeFile(t, p("x.toml"), "v1")
			h := startWatcher(t, dir, nil)
			first := h.waitFiles(map[string]string{"x.toml": "v1"})
			tt.save(t, dir, p)
			h.waitFiles(tt.want)

			for _, tr := range h.traced() {
				if base := filepath.Base(tr.ev.Name); tr.err == nil && !isCandidate(base) && tr.k != kindNone {
					t.Errorf("event %v on an ignored name was given kind %v, want none (no read)", tr.ev, tr.k)
				}
			}
			if tt.name == "ignored names only" && h.last.Seq != first.Seq+1 {
				t.Errorf("got snapshot Seq %d after Seq %d: events on ignored names were handed over", h.last.Seq, first.Seq)
			}
		})
	}
}

func TestWatcher_RemoveAndReAdd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.toml")
	writeFile(t, path, "v1")
	writeFile(t, filepath.Join(dir, "y.toml"), "y")
	h := startWatcher(t, dir, nil)
	h.waitFiles(map[string]string{"x.toml": "v1", "y.toml": "y"})
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	h.waitFiles(map[string]string{"y.toml": "y"})
	writeFile(t, path, "v2")
	h.waitFiles(map[string]string{"x.toml": "v2", "y.toml": "y"})
}

func TestWatcher_DirGoneAndBack(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) // before Run; dir is base/a/conf.d
		gone  func(t *testing.T, dir string) // nil: missing from the start
		back  func(t *testing.T, dir string)
	}{
		{
			name:  "removed and recreated",
			setup: mkdirWith,
			gone:  removeAll,
			back:  mkdirWith,
		},
		{
			name:  "renamed away, another renamed in",
			setup: mkdirWith,
			gone: func(t *testing.T, dir string) {
				if err := os.Rename(dir, dir+".old"); err != nil {
					t.Fatal(err)
				}
			},
			back: func(t *testing.T, dir string) {
				mkdirWith(t, dir+".new")
				if err := os.Rename(dir+".new", dir); err != nil {
					t.Fatal(err)
				}
				// The old directory is no longer conf_dir.
				writeFile(t, filepath.Join(dir+".old", "stale.toml"), "stale")
			},
		},
		{
			name:  "missing at start",
			setup: func(t *testing.T, dir string) { mkdir(t, filepath.Dir(dir)) },
			back:  mkdirWith,
		},
		{
			name: "parent missing at start",
			back: mkdirWith,
		},
		{
			name:  "parent removed while watched",
			setup: mkdirWith,
			gone:  func(t *testing.T, dir string) { removeAll(t, filepath.Dir(dir)) },
			back:  mkdirWith,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "a", "conf.d")
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			h := startWatcher(t, dir, nil)
			if tt.gone != nil {
				h.waitFiles(map[string]string{"x.toml": "x"})
				tt.gone(t, dir)
			}
			missing := h.waitMissing()
			tt.back(t, dir)
			back := h.waitFiles(map[string]string{"x.toml": "x"})
			if back.Seq <= missing.Seq {
				t.Errorf("Seq %d after Seq %d", back.Seq, missing.Seq)
			}
			// Still watched after coming back.
			writeFile(t, filepath.Join(dir, "y.toml"), "y")
			h.waitFiles(map[string]string{"x.toml": "x", "y.toml": "y"})
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// mkdirWith creates dir (and its parents) holding x.toml.
func mkdirWith(t *testing.T, dir string) {
	t.Helper()
	mkdir(t, dir)
	writeFile(t, filepath.Join(dir, "x.toml"), "x")
}

func removeAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
}

func TestWatcher_ConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	configMap(t, dir, "..2025_01_01_00_00_00.1", map[string]string{"x.toml": "v1", "y.toml": "y1"})
	h := startWatcher(t, dir, nil)
	h.waitFiles(map[string]string{"x.toml": "v1", "y.toml": "y1"})

	// What the kubelet's atomic writer does on an update; the user-visible
	// symlinks x.toml and y.toml do not change.
	newTS := "..2025_01_01_00_05_00.2"
	mkdir(t, filepath.Join(dir, newTS))
	writeFile(t, filepath.Join(dir, newTS, "x.toml"), "v2")
	writeFile(t, filepath.Join(dir, newTS, "y.toml"), "y1")
	mustSymlink(t, newTS, filepath.Join(dir, "..data_tmp"))
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	removeAll(t, filepath.Join(dir, "..2025_01_01_00_00_00.1"))

	s := h.waitFiles(map[string]string{"x.toml": "v2", "y.toml": "y1"})
	got, err := fs.Stat(s.FS, "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.Stat(filepath.Join(dir, newTS, "x.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Mode().IsRegular() || !sameSys(got.Sys(), want.Sys()) {
		t.Errorf("x.toml info: mode %v, Sys %#v; want the regular file behind the symlinks, %#v", got.Mode(), got.Sys(), want.Sys())
	}
}

// holdOn returns a hold function that blocks the Run goroutine at the first
// event on name until release is closed; blocked is closed when it does.
func holdOn(name string) (hold func(fsnotify.Event), blocked <-chan struct{}, release chan struct{}) {
	b, r := make(chan struct{}), make(chan struct{})
	var once sync.Once
	return func(ev fsnotify.Event) {
		if filepath.Base(ev.Name) != name {
			return
		}
		once.Do(func() {
			close(b)
			<-r
		})
	}, b, r
}

func TestWatcher_BurstCoalesces(t *testing.T) {
	dir := t.TempDir()
	hold, blocked, release := holdOn("hold.swp")
	h := startWatcher(t, dir, hold)
	first := h.waitFiles(map[string]string{})

	// Hold the watcher so that the whole burst is queued, as it is when 50
	// files land while the agent is busy, then let it go.
	writeFile(t, filepath.Join(dir, "hold.swp"), "")
	<-blocked
	want := make(map[string]string)
	for i := range 50 {
		n := fmt.Sprintf("task-%02d.toml", i)
		writeFile(t, filepath.Join(dir, n), n)
		want[n] = n
	}
	close(release)
	s := h.waitFiles(want)
	if s.Seq != first.Seq+1 {
		t.Errorf("the burst gave snapshot Seq %d after Seq %d, want one snapshot", s.Seq, first.Seq)
	}
}

func TestWatcher_QueueOverflowReadsAgain(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		testenv.Skip(t, "inotify queue size unknown: %v", err)
	}
	maxQueued, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || maxQueued > 1<<20 {
		testenv.Skip(t, "fs.inotify.max_queued_events = %q: too large to overflow in a test", b)
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.toml"), "v1")
	for _, n := range []string{"a.swp", "b.swp"} {
		writeFile(t, filepath.Join(dir, n), "")
	}
	hold, blocked, release := holdOn("hold.swp")
	h := startWatcher(t, dir, hold)
	h.waitFiles(map[string]string{"x.toml": "v1"})

	writeFile(t, filepath.Join(dir, "hold.swp"), "")
	<-blocked
	// Fill the kernel queue with events on ignored names (alternating, so
	// that inotify cannot merge them), then change x.toml: its events are
	// lost, and only the overflow can tell the watcher to read again.
	for i := range 2*maxQueued + 10000 {
		n := []string{"a.swp", "b.swp"}[i%2]
		if err := syscall.Chmod(filepath.Join(dir, n), uint32(0o600+i%2)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "x.toml"), "v2")
	close(release)
	h.waitFiles(map[string]string{"x.toml": "v2"})

	overflowed := false
	for _, tr := range h.traced() {
		overflowed = overflowed || errors.Is(tr.err, fsnotify.ErrEventOverflow)
	}
	if !overflowed {
		t.Error("the watcher never saw fsnotify.ErrEventOverflow")
	}
}

func TestWatcher_RunTwice(t *testing.T) {
	h := startWatcher(t, t.TempDir(), nil)
	h.waitFiles(map[string]string{})
	if err := h.w.Run(context.Background()); err == nil {
		t.Error("second Run returned nil, want an error")
	}
}

// BenchmarkWatcher_RenameToSnapshot measures a task file renamed into
// conf_dir until its snapshot is handed over: the watcher's part of
// "rename to worker exec".
func BenchmarkWatcher_RenameToSnapshot(b *testing.B) {
	dir, tmp := b.TempDir(), b.TempDir()
	for i := range 20 {
		writeFile(b, filepath.Join(dir, fmt.Sprintf("task-%02d.toml", i)), "command = [\"/bin/true\"]\n")
	}
	w := New(dir, Options{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	<-w.Snapshots()

	i := 0
	for b.Loop() {
		i++
		content := fmt.Sprintf("command = [\"/bin/sleep\", \"%d\"]\n", i)
		src := filepath.Join(tmp, "new.toml")
		writeFile(b, src, content)
		if err := os.Rename(src, filepath.Join(dir, "new.toml")); err != nil {
			b.Fatal(err)
		}
		for s := range w.Snapshots() {
			if got, err := fs.ReadFile(s.FS, "new.toml"); err == nil && string(got) == content {
				break
			}
		}
	}
}
