package tasklog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// drainTimeout bounds how long Close keeps reading after it closed the
// agent's write ends: a worker's orphans may hold them open forever.
const drainTimeout = time.Second

// flushTimeout bounds how long Close waits for the queued output to reach a
// disk that stopped answering.
const flushTimeout = 5 * time.Second

// Instance owns the pipes, log files and tails of one task instance for the
// instance's lifetime, across restarts of its process: every new process gets
// the same write ends, so that the readers see EOF only once Close closed
// the agent's own copies.
type Instance struct {
	task     string
	instance int
	base     string // file names: <base>.stdout.log
	merged   bool
	streams  []*stream // streams[Stdout], and streams[Stderr] unless merged

	set     atomic.Pointer[settings]
	writeFn func(f *os.File, p []byte) (int, error) // the disk; tests inject a full or stuck one

	wake      chan struct{}   // cap 1: a reader queued output
	updated   chan struct{}   // cap 1: Update stored new settings
	rotateReq chan chan error // Rotate asks the writer
	stop      chan struct{}   // closed by Close once the readers ended
	ownerDone chan struct{}   // closed when the writer goroutine returned
	readers   sync.WaitGroup

	mill   mill
	opened bool // a log file was opened, so the mill looked at the earlier run's files; owned by the writer

	closeFilesErr error // set by the writer goroutine before ownerDone

	closeOnce sync.Once
	closeErr  error
}

// settings is what Update can change, swapped as a whole.
type settings struct {
	opts Options
	log  *slog.Logger // opts.Logger narrowed to the task and instance
}

// Open creates the instance's pipes and the goroutines that drain them. The
// caller hands Stdout and Stderr to each process of the instance and calls
// Close once the instance is gone for good.
//
// Open does not touch the disk, so that a slow or broken log disk never delays
// a worker's start, and starting n instances does not wait for 2n file
// creations: the writer creates <logDir>/<task>/ (mode 0755) and a stream's
// log file (mode 0640, appended to when it exists) on the stream's first
// output, and a stream that never writes has no file. Output that finds
// neither can be created is dropped and counted like a failed write, and the
// creation is tried again with the next output. Retention and compression of
// the rotated files an earlier run left run in the background once the
// instance's first file is open.
func Open(logDir, task string, instance int, opts Options) (*Instance, error) {
	return open(logDir, task, instance, opts, nil)
}

// open is Open with the disk's write replaceable, for the tests of the drop path.
func open(logDir, task string, instance int, opts Options, writeFn func(*os.File, []byte) (int, error)) (*Instance, error) {
	if task == "" || task == "." || task == ".." || strings.ContainsRune(task, os.PathSeparator) || instance < 0 {
		return nil, fmt.Errorf("open log of %q instance %d: %w", task, instance, ErrInvalidName)
	}
	opts = opts.withDefaults()
	dir := filepath.Join(logDir, task)
	base := strconv.Itoa(instance)
	if opts.FileName != "" {
		if strings.Contains(opts.FileName, "..") || filepath.IsAbs(opts.FileName) {
			return nil, fmt.Errorf("open log of %q as %q: %w", task, opts.FileName, ErrInvalidName)
		}
		dir, base = filepath.Join(dir, filepath.Dir(opts.FileName)), filepath.Base(opts.FileName)
	}
	if writeFn == nil {
		writeFn = (*os.File).Write
	}
	i := &Instance{
		task:      task,
		instance:  instance,
		base:      base,
		merged:    opts.MergeStderr,
		writeFn:   writeFn,
		wake:      make(chan struct{}, 1),
		updated:   make(chan struct{}, 1),
		rotateReq: make(chan chan error),
		stop:      make(chan struct{}),
		ownerDone: make(chan struct{}),
	}
	i.mill.stop = make(chan struct{})
	i.storeSettings(opts)

	ids := []Stream{Stdout, Stderr}
	if opts.MergeStderr {
		ids = ids[:1]
	}
	for _, id := range ids {
		s, err := newStream(i, id, dir, opts.TailSize)
		if err != nil {
			for _, s := range i.streams {
				s.closeAll()
			}
			return nil, err
		}
		i.streams = append(i.streams, s)
	}

	for _, s := range i.streams {
		i.readers.Go(s.readLoop)
	}
	go i.run()
	return i, nil
}

func (i *Instance) storeSettings(opts Options) {
	i.set.Store(&settings{opts: opts, log: opts.Logger.With("task", i.task, "instance", i.instance)})
}

func (i *Instance) settings() *settings { return i.set.Load() }

// stream returns the stream that carries s, or nil for an unknown s.
func (i *Instance) stream(s Stream) *stream {
	switch {
	case s == Stdout || (s == Stderr && i.merged):
		return i.streams[0]
	case s == Stderr:
		return i.streams[1]
	}
	return nil
}

// Stdout returns the write end for the worker's fd 1, in blocking mode.
// It stays open until Close.
func (i *Instance) Stdout() *os.File { return i.streams[0].w }

// Stderr returns the write end for the worker's fd 2: the same file as
// Stdout with MergeStderr.
func (i *Instance) Stderr() *os.File { return i.stream(Stderr).w }

// Path returns the current log file of s: the stdout file for Stderr with
// MergeStderr, "" for an unknown stream. The file exists once s had output.
func (i *Instance) Path(s Stream) string {
	if st := i.stream(s); st != nil {
		return st.path
	}
	return ""
}

// Update applies new rotation and retention settings in place, from the next
// write on; retention runs at once, or with the first output of an instance
// that has not written yet. MergeStderr and TailSize keep the values
// given to Open, and so does the Logger when opts.Logger is nil.
func (i *Instance) Update(opts Options) {
	cur := i.settings().opts
	opts.MergeStderr = cur.MergeStderr
	opts.TailSize = cur.TailSize
	if opts.Logger == nil {
		opts.Logger = cur.Logger
	}
	i.storeSettings(opts.withDefaults())
	select {
	case i.updated <- struct{}{}:
	default:
	}
}

// Rotate rotates both streams now (`glmctl logs --rotate`) and reopens log
// files that an operator deleted. An empty file is kept as it is, and a stream
// that never had output (no file) is left alone. Rotate waits for a write in
// progress, so it returns late on a stuck disk.
func (i *Instance) Rotate() error {
	reply := make(chan error, 1)
	select {
	case i.rotateReq <- reply:
	case <-i.ownerDone:
		return ErrClosed
	}
	return <-reply
}

// Tail returns the last `lines` complete lines of s, plus a trailing partial
// line, from the in-memory tail; lines <= 0 returns the whole tail. The tail
// outlives process restarts and keeps what a full disk dropped.
func (i *Instance) Tail(s Stream, lines int) []byte {
	st := i.stream(s)
	if st == nil {
		return nil
	}
	st.tailMu.Lock()
	data := st.tail.snapshot()
	st.tailMu.Unlock()
	return lastLines(data, lines)
}

// Follow returns the output of s from now on, in chunks as read from the
// pipe, until ctx ends or Close; then the channel is closed. A follower that
// does not keep up loses chunks rather than slowing anything down.
func (i *Instance) Follow(ctx context.Context, s Stream) <-chan []byte {
	st := i.stream(s)
	if st == nil {
		ch := make(chan []byte)
		close(ch)
		return ch
	}
	return st.follow(ctx)
}

// Stats returns the counters of both streams.
func (i *Instance) Stats() Stats {
	var st Stats
	st.Stdout = i.streams[0].stats()
	if !i.merged {
		st.Stderr = i.streams[1].stats()
	}
	return st
}

// Close closes the agent's write ends, reads what the worker wrote until EOF
// or for at most a second (orphans may keep the pipe open), writes it out,
// closes the files and stops every goroutine of the instance. A worker still
// writing after Close gets EPIPE. On a disk that stopped answering, Close
// gives up after 5 s with ErrFlushTimeout; the writer then closes the files
// once its write returns. Close is idempotent.
func (i *Instance) Close() error {
	i.closeOnce.Do(func() { i.closeErr = i.close() })
	return i.closeErr
}

func (i *Instance) close() error {
	var errs []error
	for _, s := range i.streams {
		if err := s.w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close write end of %s: %w", s.path, err))
		}
	}
	deadline := time.Now().Add(drainTimeout)
	for _, s := range i.streams {
		// The read end is in the poller, so the deadline wakes a parked reader.
		if err := s.r.SetReadDeadline(deadline); err != nil {
			errs = append(errs, fmt.Errorf("bound drain of %s: %w", s.path, err))
		}
	}
	i.readers.Wait()
	for _, s := range i.streams {
		s.r.Close()
		s.closeFollowers()
	}

	close(i.stop)
	t := time.NewTimer(flushTimeout)
	defer t.Stop()
	select {
	case <-i.ownerDone:
		errs = append(errs, i.closeFilesErr)
	case <-t.C:
		errs = append(errs, fmt.Errorf("close log of %s instance %d: disk did not take the output in %v: %w",
			i.task, i.instance, flushTimeout, ErrFlushTimeout))
	}
	i.mill.shutdown()
	return errors.Join(errs...)
}
