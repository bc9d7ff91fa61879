package confwatch

import (
	"io/fs"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

func TestClassify(t *testing.T) {
	empty := func() (fs.FileInfo, error) { return fileInfo{name: "x.toml"}, nil }
	full := func() (fs.FileInfo, error) { return fileInfo{name: "x.toml", size: 10}, nil }
	gone := func() (fs.FileInfo, error) { return nil, fs.ErrNotExist }
	tests := []struct {
		name string
		op   fsnotify.Op
		stat func() (fs.FileInfo, error)
		want kind
	}{
		{"x.toml", fsnotify.Create, full, kindAtomic}, // renamed into place
		{"x.toml", fsnotify.Create, empty, kindWrite}, // open(O_CREAT), content to come
		{"x.toml", fsnotify.Create, gone, kindAtomic}, // already gone again: read soon
		{"x.toml", fsnotify.Write, full, kindWrite},   // in-place write
		{"x.toml", fsnotify.Create | fsnotify.Write, full, kindWrite},
		{"x.toml", fsnotify.Chmod, full, kindAtomic},      // ownership and modes matter
		{"x.toml", fsnotify.Remove, gone, kindWrite},      // may come back (editor)
		{"x.toml", fsnotify.Rename, gone, kindWrite},      // vim: x.toml -> x.toml~
		{"..data", fsnotify.Create, full, kindAtomic},     // ConfigMap swap
		{"..data_tmp", fsnotify.Rename, gone, kindAtomic}, // ConfigMap swap
		{"..2025_01_01_00_00_00.1", fsnotify.Remove, gone, kindAtomic},
		{".x.toml.swp", fsnotify.Write, full, kindNone},
		{"x.toml~", fsnotify.Create, full, kindNone},
		{".#x.toml", fsnotify.Create, full, kindNone},
		{"4913", fsnotify.Create, empty, kindNone},
		{"x.toml.tmp", fsnotify.Rename, gone, kindNone},
		{".x.toml", fsnotify.Create, full, kindNone},
		{"README", fsnotify.Write, full, kindNone},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.op.String(), func(t *testing.T) {
			called := false
			stat := func() (fs.FileInfo, error) { called = true; return tt.stat() }
			if got := classify(tt.name, tt.op, stat); got != tt.want {
				t.Errorf("classify(%q, %v) = %v, want %v", tt.name, tt.op, got, tt.want)
			}
			if called && !(tt.op == fsnotify.Create && isCandidate(tt.name)) {
				t.Errorf("classify(%q, %v) called stat; only a Create of a candidate needs it", tt.name, tt.op)
			}
		})
	}
}

func TestDebounce(t *testing.T) {
	const (
		settle = 5 * time.Millisecond
		write  = 100 * time.Millisecond
		maxD   = time.Second
	)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type step struct {
		at       time.Time
		k        kind
		wantWait time.Duration
		wantOK   bool
		fire     bool // the timer fired before this step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"rename settles fast", []step{
			{at: ms(0), k: kindAtomic, wantWait: settle, wantOK: true},
		}},
		{"ignored names leave the timer alone", []step{
			{at: ms(0), k: kindNone},
			{at: ms(1), k: kindNone},
		}},
		{"write waits longer", []step{
			{at: ms(0), k: kindWrite, wantWait: write, wantOK: true},
		}},
		{"each event restarts the quiet time", []step{
			{at: ms(0), k: kindAtomic, wantWait: settle, wantOK: true},
			{at: ms(3), k: kindAtomic, wantWait: settle, wantOK: true},
		}},
		{"the strongest pending kind wins", []step{
			{at: ms(0), k: kindWrite, wantWait: write, wantOK: true},
			{at: ms(50), k: kindAtomic, wantWait: write, wantOK: true},
		}},
		{"a write upgrades a pending rename", []step{
			{at: ms(0), k: kindAtomic, wantWait: settle, wantOK: true},
			{at: ms(2), k: kindWrite, wantWait: write, wantOK: true},
		}},
		{"bounded by max delay", []step{
			{at: ms(0), k: kindWrite, wantWait: write, wantOK: true},
			{at: ms(950), k: kindWrite, wantWait: 50 * time.Millisecond, wantOK: true},
			{at: ms(1000), k: kindWrite, wantWait: 0, wantOK: true},
			{at: ms(1200), k: kindWrite, wantWait: 0, wantOK: true},
		}},
		{"a read ends the burst", []step{
			{at: ms(0), k: kindWrite, wantWait: write, wantOK: true},
			{at: ms(950), k: kindWrite, wantWait: write, wantOK: true, fire: true}, // a new burst: max delay counts from here
			{at: ms(960), k: kindAtomic, wantWait: write, wantOK: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := debounce{settle: settle, writeSettle: write, maxDelay: maxD}
			for i, s := range tt.steps {
				if s.fire {
					d.fired()
				}
				wait, ok := d.add(s.at, s.k)
				if wait != s.wantWait || ok != s.wantOK {
					t.Errorf("step %d: add(%v, %v) = %v, %v; want %v, %v", i, s.at.Sub(t0), s.k, wait, ok, s.wantWait, s.wantOK)
				}
			}
		})
	}
}

func TestOffer_LatestWins(t *testing.T) {
	ch := make(chan Snapshot, 1)
	offer(ch, Snapshot{Seq: 1})
	offer(ch, Snapshot{Seq: 2})
	offer(ch, Snapshot{Seq: 3})
	if got := (<-ch).Seq; got != 3 {
		t.Errorf("received Seq %d, want the latest, 3", got)
	}
	select {
	case s := <-ch:
		t.Errorf("a second snapshot (Seq %d) was waiting; want only the latest", s.Seq)
	default:
	}
}
