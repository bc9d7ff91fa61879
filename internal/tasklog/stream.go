package tasklog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
)

// Output waiting for the disk is bounded per stream and for all instances
// together (a stuck disk under 500 instances must not take gigabytes). Beyond
// either bound, output is dropped: the worker never waits for its log. The
// per-stream bound absorbs about 5 ms of a 1.5 GiB/s flood, the time the
// writer may lose to the scheduler on a busy host.
const (
	queueLimit      = 8 << 20
	totalQueueLimit = 256 << 20
)

// queuedTotal is the buffer capacity queued by every stream of the process.
var queuedTotal atomic.Int64

// The read buffers. A pipe starts at 64 KiB, and one read of a small buffer
// empties it. A flooded pipe grows to 1 MiB, and its reads take big buffers
// of 512 KiB: fewer reads mean fewer wake-ups and less spinning on the pipe's
// lock against the worker's writes, while a smaller buffer keeps the data in
// the CPU's cache until the writer copies it into the file. BenchmarkFlood
// measured 512 KiB best, by 5-15% of CPU, against 256 KiB and 1 MiB.
const (
	smallBuf = 64 << 10
	bigBuf   = 512 << 10
)

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	bigPool   = sync.Pool{New: func() any { b := make([]byte, bigBuf); return &b }}
)

func getBuf(size int) *[]byte {
	if size > smallBuf {
		return bigPool.Get().(*[]byte)
	}
	return smallPool.Get().(*[]byte)
}

func putBuf(b *[]byte) {
	if cap(*b) > smallBuf {
		bigPool.Put(b)
	} else {
		smallPool.Put(b)
	}
}

// chunk is n bytes of output in a pooled buffer.
type chunk struct {
	b *[]byte
	n int
}

func (c chunk) bytes() []byte { return (*c.b)[:c.n] }

// stream is one pipe of an instance: the reader goroutine moves its output
// into the tail, the followers and the queue; the instance's writer goroutine
// moves the queue into the file.
type stream struct {
	inst *Instance
	id   Stream
	path string
	r, w *os.File // read end (agent, non-blocking), write end (workers)
	rc   syscall.RawConn

	// Owned by the reader goroutine.
	pipeSize  int
	grown     bool // growPipe was tried
	qDropping bool // in a queue-full episode (guarded by qMu, logged by the reader)

	// tailMu guards tail.
	tailMu sync.Mutex
	tail   ring

	// qMu guards q and qBytes.
	qMu    sync.Mutex
	q      []chunk
	qBytes int // buffer capacity held by q and by the chunk being written

	// followMu guards followers and followClosed; nfollow mirrors
	// len(followers) so that the reader skips the lock when no one follows.
	followMu     sync.Mutex
	followers    map[*follower]struct{}
	followClosed bool
	nfollow      atomic.Int32

	file logFile // owned by the writer goroutine

	bytesW, droppedB, droppedL, rotations atomic.Uint64
}

func newStream(i *Instance, id Stream, dir string, tailSize int) (*stream, error) {
	s := &stream{
		inst: i,
		id:   id,
		path: filepath.Join(dir, fmt.Sprintf("%s.%s.log", i.base, id)),
		tail: ring{max: tailSize},
	}
	var err error
	s.r, s.w, err = newPipe(fmt.Sprintf("%s:%d:%s", i.task, i.instance, id))
	if err != nil {
		return nil, err
	}
	if s.rc, err = s.r.SyscallConn(); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("read end of %s: %w", s.path, err)
	}
	s.rc.Control(func(fd uintptr) { s.pipeSize = pipeSize(int(fd)) })
	if s.pipeSize <= 0 {
		s.pipeSize = smallBuf
	}
	return s, nil
}

// closeAll releases what newStream made, when Open fails.
func (s *stream) closeAll() {
	s.r.Close()
	s.w.Close()
}

func (s *stream) stats() StreamStats {
	return StreamStats{
		Bytes:        s.bytesW.Load(),
		DroppedBytes: s.droppedB.Load(),
		DroppedLines: s.droppedL.Load(),
		Rotations:    s.rotations.Load(),
	}
}

// readLoop drains the pipe until EOF, or until Close's deadline.
func (s *stream) readLoop() {
	for {
		c, err := s.read()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, os.ErrClosed) {
				s.inst.settings().log.Warn("cannot read worker output", "file", s.path, "err", err)
			}
			return
		}
		s.consume(c)
	}
}

// read returns the next chunk of output. The buffer is taken only once the
// pipe has data, so that an idle stream holds none.
func (s *stream) read() (chunk, error) {
	var c chunk
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		b := getBuf(s.pipeSize)
		n, err := readFd(int(fd), *b)
		if errors.Is(err, syscall.EAGAIN) {
			putBuf(b)
			return false // park in the poller until the pipe is readable
		}
		if err != nil || n <= 0 {
			putBuf(b)
			rerr = err
			if err == nil {
				rerr = io.EOF
			}
			return true
		}
		c = chunk{b: b, n: n}
		if n >= s.pipeSize && !s.grown {
			// A full pipe: the worker floods, give it room.
			s.grown = true
			s.pipeSize = growPipe(int(fd), s.pipeSize)
		}
		return true
	})
	if err != nil {
		return chunk{}, err
	}
	return c, rerr
}

func readFd(fd int, b []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, b)
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}

// consume hands one chunk to the tail, the followers and the queue.
func (s *stream) consume(c chunk) {
	p := c.bytes()
	s.tailMu.Lock()
	s.tail.write(p)
	s.tailMu.Unlock()
	if s.nfollow.Load() > 0 {
		s.fanOut(p)
	}
	s.enqueue(c)
}

// enqueue queues c for the writer, or drops it when the queue is full.
func (s *stream) enqueue(c chunk) {
	p := c.bytes()
	s.qMu.Lock()
	if k := len(s.q); k > 0 {
		// The writer lags: pack small reads into the last queued buffer
		// rather than holding one buffer per read.
		last := &s.q[k-1]
		if cap(*last.b)-last.n >= c.n {
			last.n += copy((*last.b)[last.n:cap(*last.b)], p)
			s.qMu.Unlock()
			putBuf(c.b)
			s.inst.signal()
			return
		}
	}
	if s.qBytes+cap(*c.b) > queueLimit || queuedTotal.Load()+int64(cap(*c.b)) > totalQueueLimit {
		started := !s.qDropping
		s.qDropping = true
		s.qMu.Unlock()
		s.drop(p)
		putBuf(c.b)
		if started {
			s.inst.settings().log.Warn("log disk too slow, dropping worker output", "file", s.path)
		}
		return
	}
	s.q = append(s.q, c)
	s.qBytes += cap(*c.b)
	queuedTotal.Add(int64(cap(*c.b)))
	// Hysteresis: the episode ends once the writer caught up by half.
	ended := s.qDropping && s.qBytes <= queueLimit/2
	if ended {
		s.qDropping = false
	}
	s.qMu.Unlock()
	s.inst.signal()
	if ended {
		s.inst.settings().log.Info("log disk caught up, capturing worker output again", "file", s.path, "dropped_bytes", s.droppedB.Load())
	}
}

// take returns the queued chunks, in order, appended to buf.
func (s *stream) take(buf []chunk) []chunk {
	s.qMu.Lock()
	buf = append(buf, s.q...)
	clear(s.q)
	s.q = s.q[:0]
	s.qMu.Unlock()
	return buf
}

// release returns a written chunk's buffer to the pool and its room to the queue.
func (s *stream) release(c chunk) {
	s.qMu.Lock()
	s.qBytes -= cap(*c.b)
	s.qMu.Unlock()
	queuedTotal.Add(-int64(cap(*c.b)))
	putBuf(c.b)
}

// drop counts p as lost.
func (s *stream) drop(p []byte) {
	if len(p) == 0 {
		return
	}
	s.droppedB.Add(uint64(len(p)))
	s.droppedL.Add(uint64(bytes.Count(p, newline)))
}

var newline = []byte{'\n'}

func (i *Instance) signal() {
	select {
	case i.wake <- struct{}{}:
	default:
	}
}
