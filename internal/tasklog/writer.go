package tasklog

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// recheckEvery is how often the writer compares the open file with its path,
// to notice an operator who deleted the file or the directory: one stat per
// second at most, whatever the write rate.
const recheckEvery = time.Second

// rotateRetry is when a failed age rotation is tried again.
const rotateRetry = time.Minute

// logFile is one stream's current log file. Only the writer goroutine
// touches it.
type logFile struct {
	live    bool        // the stream had output: the file exists, or is tried again
	f       *os.File    // nil until the first output, and while it cannot be opened
	fi      os.FileInfo // of f, to notice a deleted or moved file
	size    int64
	checked time.Time // when fi was last compared with the path
	oldest  time.Time // when the file got its first byte (in this run); zero while empty
	timer   *time.Timer
	armed   bool        // timer runs for RotateEvery
	last    backupStamp // of the latest rotation

	failing  bool // in a write-error episode (full disk, deleted directory)
	rotating bool // in a rotate-error episode
}

// openLog opens path for appending, creating it and its directory.
func openLog(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory was removed by an operator: make it again.
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, nil, fmt.Errorf("create log directory %s: %w", filepath.Dir(path), err)
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat log file %s: %w", path, err)
	}
	return f, fi, nil
}

// run is the writer goroutine: it owns the files, their timers and the
// rotations, and is the only one to wait for the disk.
func (i *Instance) run() {
	defer close(i.ownerDone)
	var batch []chunk
	for {
		select {
		case <-i.wake:
			batch = i.drain(batch)
		case <-i.timerC(0):
			i.rotateAged(i.streams[0])
		case <-i.timerC(1):
			i.rotateAged(i.streams[1])
		case reply := <-i.rotateReq:
			reply <- i.rotateAll()
		case <-i.updated:
			now := time.Now()
			for _, s := range i.streams {
				i.arm(s, now)
			}
			if i.opened {
				// Otherwise the first file's opening runs the mill.
				i.mill.trigger(i)
			}
		case <-i.stop:
			// The readers have ended: what is queued is all there is.
			for i.queued() {
				batch = i.drain(batch)
			}
			for _, s := range i.streams {
				i.disarm(s)
				if s.file.f != nil {
					if err := s.file.f.Close(); err != nil {
						i.closeFilesErr = errors.Join(i.closeFilesErr, fmt.Errorf("close log file: %w", err))
					}
					s.file.f = nil
				}
			}
			return
		}
	}
}

func (i *Instance) queued() bool {
	for _, s := range i.streams {
		s.qMu.Lock()
		n := len(s.q)
		s.qMu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}

// drain writes what each stream had queued, then returns to the select loop
// so that rotations and timers get their turn during a flood.
func (i *Instance) drain(batch []chunk) []chunk {
	for _, s := range i.streams {
		batch = s.take(batch[:0])
		if len(batch) == 0 {
			continue
		}
		now := time.Now()
		for k, c := range batch {
			i.write(s, c.bytes(), now)
			s.release(c)
			batch[k] = chunk{}
		}
	}
	return batch[:0]
}

// write appends p to s's file, rotating by size on the way: a rotated file
// ends at a line boundary when the line fits, and never exceeds MaxSize.
func (i *Instance) write(s *stream, p []byte, now time.Time) {
	lf := &s.file
	if lf.f == nil || now.Sub(lf.checked) >= recheckEvery {
		lf.live = true
		i.check(s, now)
	}
	maxSize := i.settings().opts.MaxSize
	for len(p) > 0 {
		if lf.f == nil {
			s.drop(p)
			return
		}
		room := maxSize - lf.size
		if int64(len(p)) <= room {
			i.writeFile(s, p, now)
			return
		}
		cut := 0
		if room > 0 {
			cut = bytes.LastIndexByte(p[:room], '\n') + 1
			if cut == 0 && lf.size == 0 {
				cut = int(room) // one line longer than MaxSize
			}
		}
		if cut > 0 {
			if !i.writeFile(s, p[:cut], now) {
				s.drop(p[cut:])
				return
			}
			p = p[cut:]
		}
		if err := i.rotate(s, now); err != nil {
			if lf.f == nil {
				s.drop(p)
				return
			}
			// Keep the output rather than the size limit; retried on the next write.
			i.writeFile(s, p, now)
			return
		}
	}
}

// writeFile writes p to the open file and reports whether all of it went out.
func (i *Instance) writeFile(s *stream, p []byte, now time.Time) bool {
	lf := &s.file
	n, err := i.writeFn(lf.f, p)
	if n > 0 {
		if lf.size == 0 {
			lf.oldest = now
			i.arm(s, now)
		}
		lf.size += int64(n)
		s.bytesW.Add(uint64(n))
	}
	if err != nil {
		s.drop(p[n:])
		lf.checked = time.Time{} // look at the path again on the next write
		if !lf.failing {
			lf.failing = true
			i.settings().log.Warn("cannot write log file, dropping worker output until it works again", "file", s.path, "err", err)
		}
		return false
	}
	if lf.failing {
		lf.failing = false
		i.settings().log.Info("log file writable again", "file", s.path, "dropped_bytes", s.droppedB.Load())
	}
	return true
}

// check reopens s's file when it is not open or its path no longer leads to
// it (deleted or moved by an operator).
func (i *Instance) check(s *stream, now time.Time) {
	lf := &s.file
	lf.checked = now
	if lf.f != nil {
		fi, err := os.Stat(s.path)
		if err == nil && os.SameFile(fi, lf.fi) {
			lf.size = fi.Size() // an operator may have truncated it
			if lf.size == 0 {
				lf.oldest = time.Time{}
				i.disarm(s)
			}
			return
		}
		i.settings().log.Info("log file was removed or moved, reopening it", "file", s.path)
		lf.f.Close()
		lf.f = nil
	}
	i.reopen(s, now)
}

// reopen opens s's path as the current file, creating it and the task's
// directory when missing. Output an earlier run left in the file counts from
// now for RotateEvery.
func (i *Instance) reopen(s *stream, now time.Time) error {
	lf := &s.file
	f, fi, err := openLog(s.path)
	if err != nil {
		if !lf.failing {
			lf.failing = true
			i.settings().log.Warn("cannot open log file, dropping worker output until it works again", "file", s.path, "err", err)
		}
		return err
	}
	lf.f, lf.fi, lf.size, lf.checked = f, fi, fi.Size(), now
	lf.oldest = time.Time{}
	i.disarm(s)
	if lf.size > 0 {
		lf.oldest = now
		i.arm(s, now)
	}
	if !i.opened {
		// Rotated files of an earlier run may wait for retention or
		// compression; an instance that never writes leaves them be.
		i.opened = true
		i.mill.trigger(i)
	}
	return nil
}

// rotate moves s's current file aside under a free backup name and opens a
// new one. A missing file is just reopened.
func (i *Instance) rotate(s *stream, now time.Time) error {
	lf := &s.file
	rotated := false
	if lf.f != nil {
		name, err := backupName(s.path, now, &lf.last)
		if err == nil {
			err = os.Rename(s.path, name)
		}
		switch {
		case err == nil:
			rotated = true
		case errors.Is(err, fs.ErrNotExist):
			// Deleted by an operator: nothing to keep.
		default:
			err = fmt.Errorf("rotate log file %s: %w", s.path, err)
			if !lf.rotating {
				lf.rotating = true
				i.settings().log.Warn("cannot rotate log file, it grows past its limit", "file", s.path, "err", err)
			}
			return err
		}
		lf.f.Close()
		lf.f = nil
	}
	if rotated {
		s.rotations.Add(1)
		if lf.rotating {
			lf.rotating = false
			i.settings().log.Info("log file rotates again", "file", s.path)
		}
		i.mill.changed()
		i.mill.trigger(i)
	}
	lf.size = 0
	return i.reopen(s, now)
}

// rotateAll serves Rotate.
func (i *Instance) rotateAll() error {
	now := time.Now()
	var errs []error
	for _, s := range i.streams {
		if !s.file.live {
			continue // no output yet, no file
		}
		if s.file.f != nil && s.file.size == 0 {
			// Nothing to move aside; still reopen a deleted file.
			i.check(s, now)
			continue
		}
		if err := i.rotate(s, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rotateAged serves s's RotateEvery timer.
func (i *Instance) rotateAged(s *stream) {
	s.file.armed = false
	now := time.Now()
	i.check(s, now)
	if s.file.f == nil || s.file.size == 0 {
		return
	}
	if err := i.rotate(s, now); err != nil && s.file.f != nil {
		if every := i.settings().opts.RotateEvery; every > 0 {
			s.file.timer.Reset(min(rotateRetry, every))
			s.file.armed = true
		}
	}
}

// arm starts s's RotateEvery timer for the file's oldest byte, or stops it
// when RotateEvery is off or the file is empty. An idle instance has no timer
// running once its files rotated.
func (i *Instance) arm(s *stream, now time.Time) {
	every := i.settings().opts.RotateEvery
	lf := &s.file
	if every <= 0 || lf.oldest.IsZero() {
		i.disarm(s)
		return
	}
	d := max(lf.oldest.Add(every).Sub(now), 0)
	if lf.timer == nil {
		lf.timer = time.NewTimer(d)
	} else {
		lf.timer.Reset(d)
	}
	lf.armed = true
}

func (i *Instance) disarm(s *stream) {
	if s.file.timer != nil {
		s.file.timer.Stop()
	}
	s.file.armed = false
}

// timerC returns the channel of stream k's RotateEvery timer, nil when it
// does not run.
func (i *Instance) timerC(k int) <-chan time.Time {
	if k >= len(i.streams) || !i.streams[k].file.armed {
		return nil
	}
	return i.streams[k].file.timer.C
}
