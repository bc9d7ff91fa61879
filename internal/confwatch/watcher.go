package confwatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Defaults for Options.
const (
	DefaultSettle      = 5 * time.Millisecond
	DefaultWriteSettle = 100 * time.Millisecond
	DefaultMaxDelay    = time.Second
)

// Retry delays while neither conf_dir nor its parent exists, the one case
// that polls: there is nothing left to watch.
const (
	minRetry = 100 * time.Millisecond
	maxRetry = 5 * time.Second
)

// Options tune a Watcher. The zero value gives the defaults.
type Options struct {
	// Settle is the quiet time after an atomic change (a rename into place,
	// a chmod, a ConfigMap swap) before conf_dir is read. Default 5 ms.
	Settle time.Duration
	// WriteSettle is the quiet time after an in-place write, a new empty
	// file or a removal: the writer may not be done, and fsnotify shows no
	// close. Default 100 ms.
	WriteSettle time.Duration
	// MaxDelay bounds the wait from the first event of a burst to the read,
	// so that a writer that never pauses still gets seen. Default 1 s.
	MaxDelay time.Duration
	// Logger receives watch changes and fsnotify errors. Default slog.Default().
	Logger *slog.Logger
}

// Watcher watches conf_dir and hands over a Snapshot after each burst of
// changes. Create it with New, run it with Run, read Snapshots.
type Watcher struct {
	dir    string // as given; Snapshot.Dir and what Read reads
	path   string // absolute dir, what is watched; fsnotify names events after it
	parent string
	opts   Options
	log    *slog.Logger
	out    chan Snapshot

	running atomic.Bool

	// trace, set by tests before Run, sees every event and error the Run
	// goroutine handles, with the kind it gave it, before acting on it.
	trace func(ev fsnotify.Event, err error, k kind)
}

// New returns a Watcher for dir. Nothing happens until Run.
func New(dir string, opts Options) *Watcher {
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	if opts.WriteSettle <= 0 {
		opts.WriteSettle = DefaultWriteSettle
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	path, err := filepath.Abs(dir)
	if err != nil {
		path = filepath.Clean(dir)
	}
	return &Watcher{
		dir:    dir,
		path:   path,
		parent: filepath.Dir(path),
		opts:   opts,
		log:    opts.Logger.With("dir", dir),
		out:    make(chan Snapshot, 1),
	}
}

// Snapshots delivers the snapshots Run hands over. It has room for one: an
// unread snapshot is replaced by a newer one, so a slow reader always gets
// the latest state. Run first hands over the content at the time the watch
// was set up (closing the gap after the agent's own start-up Read), then one
// snapshot per burst of changes whose Hash differs from the last one handed
// over. The channel is never closed.
func (w *Watcher) Snapshots() <-chan Snapshot { return w.out }

// Run watches until ctx ends, then returns nil. It returns an error only when
// fsnotify cannot start (inotify instance limit) or when called twice. A
// missing conf_dir is not an error: Run hands over a Snapshot with
// Err = ErrDirMissing, watches the parent until the directory is back (or
// polls with backoff when the parent is gone too) and then hands over its
// content.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("confwatch: Run called twice on one Watcher")
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("confwatch: watch %s: %w (raise fs.inotify.max_user_instances, or reload by hand with SIGHUP)", w.dir, err)
	}
	defer fw.Close()

	r := &run{
		w:          w,
		fw:         fw,
		deb:        debounce{settle: w.opts.Settle, writeSettle: w.opts.WriteSettle, maxDelay: w.opts.MaxDelay},
		readTimer:  stoppedTimer(),
		retryTimer: stoppedTimer(),
		retryDelay: minRetry,
	}
	defer r.readTimer.Stop()
	defer r.retryTimer.Stop()

	// Watch first, then read: a change after the read is an event.
	r.establish()
	r.readAndOffer()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("confwatch: fsnotify stopped delivering events")
			}
			r.event(ev)
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("confwatch: fsnotify stopped delivering events")
			}
			r.fsError(err)
		case <-r.readTimer.C:
			r.deb.fired()
			r.readAndOffer()
		case <-r.retryTimer.C:
			if r.establish(); r.mode != watchNone {
				r.schedule(kindAtomic)
			}
		}
	}
}

// mode is what the watcher watches.
type mode uint8

const (
	watchNone   mode = iota // neither conf_dir nor its parent: the retry timer polls
	watchDir                // conf_dir itself, the normal case
	watchParent             // the parent, waiting for conf_dir to be created
)

func (m mode) String() string {
	switch m {
	case watchDir:
		return "dir"
	case watchParent:
		return "parent"
	default:
		return "none"
	}
}

// run is the state of one Run call; only the Run goroutine touches it.
type run struct {
	w  *Watcher
	fw *fsnotify.Watcher

	mode    mode
	watched fs.FileInfo // conf_dir as it was when watched (watchDir), to spot a replaced directory

	deb        debounce
	readTimer  *time.Timer
	retryTimer *time.Timer
	retryDelay time.Duration

	seq  uint64
	last string // Hash of the last snapshot handed over
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// event handles one fsnotify event.
func (r *run) event(ev fsnotify.Event) {
	name := filepath.Clean(ev.Name)
	k := kindNone
	switch {
	case r.mode == watchDir && name != r.w.path && filepath.Dir(name) == r.w.path:
		k = classify(filepath.Base(name), ev.Op, func() (fs.FileInfo, error) { return os.Stat(name) })
	case name == r.w.path || name == r.w.parent:
		// The directory itself (removed, renamed, replaced, chmod'ed) or, while
		// it is missing, its parent: the watch may be gone or stale.
		if r.verify() || ev.Has(fsnotify.Chmod) {
			k = kindAtomic
		}
	}
	if r.w.trace != nil {
		r.w.trace(ev, nil, k)
	}
	r.schedule(k)
}

// fsError handles an error from fsnotify. Events may have been lost, so the
// watch is checked and the directory read again.
func (r *run) fsError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		r.w.log.Warn("fsnotify event queue overflowed, reading conf_dir again (raise fs.inotify.max_queued_events if this repeats)", "err", err)
	} else {
		r.w.log.Warn("fsnotify error, reading conf_dir again", "err", err)
	}
	if r.w.trace != nil {
		r.w.trace(fsnotify.Event{}, err, kindWrite)
	}
	r.verify()
	r.schedule(kindWrite)
}

// schedule (re)starts the read timer for an event of kind k.
func (r *run) schedule(k kind) {
	if wait, ok := r.deb.add(time.Now(), k); ok {
		r.readTimer.Reset(wait)
	}
}

// readAndOffer reads conf_dir and hands the snapshot over unless nothing
// changed since the last one.
func (r *run) readAndOffer() {
	s := Read(r.w.dir)
	if r.seq > 0 && s.Hash == r.last {
		return
	}
	r.seq++
	s.Seq = r.seq
	r.last = s.Hash
	offer(r.w.out, s)
	r.w.log.Debug("conf_dir snapshot handed over", "seq", s.Seq, "hash", s.Hash[:12], "err", s.Err)
}

// offer puts s into ch, replacing an unread snapshot. The watcher is the only
// sender, so after draining there is room (or the reader drained it first).
func offer(ch chan Snapshot, s Snapshot) {
	for {
		select {
		case ch <- s:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// verify checks that the watch still covers conf_dir (or, while it is
// missing, its parent) and sets it up again if not. It reports whether the
// watch changed.
func (r *run) verify() bool {
	switch r.mode {
	case watchDir:
		fi, err := os.Stat(r.w.path)
		if err == nil && os.SameFile(fi, r.watched) && r.watching(r.w.path) {
			return false
		}
	case watchParent:
		if _, err := os.Stat(r.w.path); err != nil && r.watching(r.w.parent) {
			return false
		}
	case watchNone:
		return false // the retry timer is on it
	}
	r.establish()
	return true
}

func (r *run) watching(path string) bool {
	return slices.Contains(r.fw.WatchList(), path)
}

// establish drops every watch and watches conf_dir, or its parent while
// conf_dir is missing, or arms the retry timer when neither can be watched.
func (r *run) establish() {
	for _, p := range r.fw.WatchList() {
		_ = r.fw.Remove(p) // the kernel may have dropped it already
	}
	r.watched = nil
	r.retryTimer.Stop()

	err := r.fw.Add(r.w.path)
	if err == nil {
		r.watched, _ = os.Stat(r.w.path) // a failure here is an event on its way
		r.setMode(watchDir, nil)
		return
	}
	if errors.Is(err, fs.ErrNotExist) {
		if err = r.fw.Add(r.w.parent); err == nil {
			// conf_dir may have been created between the two calls.
			if r.fw.Add(r.w.path) == nil {
				_ = r.fw.Remove(r.w.parent)
				r.watched, _ = os.Stat(r.w.path)
				r.setMode(watchDir, nil)
				return
			}
			r.setMode(watchParent, nil)
			return
		}
	}
	r.setMode(watchNone, err)
	r.retryTimer.Reset(r.retryDelay)
	r.retryDelay = min(2*r.retryDelay, maxRetry)
}

// setMode records the new mode and logs transitions (not every retry).
func (r *run) setMode(m mode, err error) {
	prev := r.mode
	r.mode = m
	if m != watchNone {
		r.retryDelay = minRetry
	}
	if m == prev {
		return
	}
	switch m {
	case watchDir:
		if prev != watchNone || r.seq > 0 {
			r.w.log.Info("watching conf_dir again")
		}
	case watchParent:
		r.w.log.Warn("conf_dir is missing, watching its parent until it is created; running tasks are kept", "parent", r.w.parent)
	case watchNone:
		r.w.log.Warn("cannot watch conf_dir or its parent, polling until one is back; running tasks are kept", "err", err)
	}
}
