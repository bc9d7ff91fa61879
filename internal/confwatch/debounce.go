package confwatch

import (
	"io/fs"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// kind is how long an event makes the watcher wait before reading: the
// strongest kind of a burst sets the quiet time.
type kind uint8

const (
	// kindNone: the event touches nothing a snapshot holds (swap files,
	// backups, other names); it neither starts nor extends a burst.
	kindNone kind = iota
	// kindAtomic: the change is complete when the event is seen, as a
	// rename into place (IN_MOVED_TO, reported as Create), a chmod or the
	// ConfigMap "..data" swap. Settle applies.
	kindAtomic
	// kindWrite: a writer may still be busy (in-place write; a new, still
	// empty file) or a name has just gone and may be about to come back
	// (editors that move the original aside, then write a new one).
	// WriteSettle applies.
	kindWrite
)

func (k kind) String() string {
	switch k {
	case kindAtomic:
		return "atomic"
	case kindWrite:
		return "write"
	default:
		return "none"
	}
}

// classify returns the kind of an event on name, a base name directly in
// conf_dir. stat looks at the file now (os.Stat); it is only called for
// a Create of a candidate.
func classify(name string, op fsnotify.Op, stat func() (fs.FileInfo, error)) kind {
	// Kubernetes' atomic writer swaps "..data" (and creates "..<timestamp>"
	// dirs and "..data_tmp"): hidden, yet what makes the candidates change.
	configMap := strings.HasPrefix(name, "..")
	if !configMap && !isCandidate(name) {
		return kindNone
	}
	switch {
	case op.Has(fsnotify.Write):
		return kindWrite
	case configMap:
		return kindAtomic
	case op.Has(fsnotify.Remove) || op.Has(fsnotify.Rename):
		// vim (backupcopy=no/auto) renames x.toml to x.toml~ and then
		// writes a new x.toml. Reading in between would hand over a snapshot
		// without the task and stop it; a removal is never urgent.
		return kindWrite
	case op.Has(fsnotify.Create):
		// A rename into place and open(O_CREAT) both arrive as Create. An
		// empty file is most likely still being written.
		if fi, err := stat(); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			return kindWrite
		}
		return kindAtomic
	default: // Chmod
		return kindAtomic
	}
}

// debounce decides when to read after a burst of events. It is pure: the
// caller passes the time and owns the timer.
type debounce struct {
	settle, writeSettle, maxDelay time.Duration

	pending kind      // strongest kind since the last read; kindNone: no burst
	first   time.Time // first event of the burst
}

// add records an event of kind k seen at now and returns how long to wait,
// from now, before reading. Each event restarts the quiet time of the
// strongest pending kind, but never past first+maxDelay, so that a writer
// that never pauses still gets a snapshot. ok is false for kindNone, which
// leaves the timer as it is.
func (d *debounce) add(now time.Time, k kind) (wait time.Duration, ok bool) {
	if k == kindNone {
		return 0, false
	}
	if d.pending == kindNone {
		d.first = now
	}
	d.pending = max(d.pending, k)
	quiet := d.settle
	if d.pending == kindWrite {
		quiet = d.writeSettle
	}
	deadline := now.Add(quiet)
	if limit := d.first.Add(d.maxDelay); deadline.After(limit) {
		deadline = limit
	}
	return max(deadline.Sub(now), 0), true
}

// fired ends the burst; the caller is about to read.
func (d *debounce) fired() { d.pending = kindNone }
