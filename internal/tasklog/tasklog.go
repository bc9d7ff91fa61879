// Package tasklog captures the stdout and stderr of supervised workers into
// rotating per-instance log files, keeps an in-memory tail of each stream for
// `glmctl logs` and fans live output out to `glmctl logs -f`.
//
// Each task instance writes to <log_dir>/<task>/<instance>.stdout.log and
// <instance>.stderr.log. Rotated files keep that name as their prefix
// (<instance>.stdout.log.2006-01-02T15-04-05.000, plus .gz when compressed), so
// that a glob on <instance>.stdout.log* finds the current file and every
// rotated one. A stream's file is created with its first output, not by Open.
//
// A worker never waits for its log: per stream, a reader goroutine drains the
// pipe into a bounded queue and a writer goroutine per instance writes the
// queue to disk. When the disk is full or slow, the queue fills up and further
// output is dropped and counted (Stats), never pushed back onto the worker.
// Output is dropped in whole reads, so the lines at the edges of a gap may be
// cut; no marker goes into the file, which keeps exactly the bytes the worker
// wrote, less the gaps. The in-memory tail keeps dropped output too.
package tasklog

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Sentinel errors of the package.
var (
	// ErrClosed is returned by calls on an Instance after Close.
	ErrClosed = errors.New("tasklog: instance closed")
	// ErrFlushTimeout is returned by Close when queued output could not be
	// written in time (a stuck disk); the files close once the write returns.
	ErrFlushTimeout = errors.New("tasklog: flush timed out")
	// ErrInvalidName is returned by Open for a task name that is not a single
	// path element, or a negative instance number.
	ErrInvalidName = errors.New("tasklog: invalid task name or instance")
)

// Stream is one of the two output streams of a worker.
type Stream int

// The streams of a worker.
const (
	Stdout Stream = iota
	Stderr
)

// String returns "stdout" or "stderr", the name used in file names.
func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return fmt.Sprintf("stream(%d)", int(s))
}

// Defaults applied by Open and Update to zero fields of Options.
const (
	DefaultMaxSize  = 50 << 20
	DefaultMaxFiles = 5
	DefaultTailSize = 64 << 10
)

// Options are the rotation, retention and capture settings of an instance.
type Options struct {
	MaxSize     int64         // rotate a file when it reaches this many bytes (<= 0: DefaultMaxSize)
	MaxFiles    int           // rotated files kept per stream (0: DefaultMaxFiles; < 0: none kept)
	MaxAge      time.Duration // remove rotated files older than this; 0: by count only
	RotateEvery time.Duration // rotate a file whose oldest byte is this old; 0: by size only
	Compress    bool          // gzip rotated files in the background
	MergeStderr bool          // stderr goes into the stdout file (one pipe); fixed at Open
	TailSize    int           // in-memory tail per stream in bytes (<= 0: DefaultTailSize); fixed at Open
	// FileName replaces the instance number in the file names
	// (<FileName>.stdout.log): a cron task's runs are "runs/<id>-<attempt>".
	// Fixed at Open; "" = the instance number.
	FileName string
	Logger   *slog.Logger // warnings (disk full...), once per episode; nil: discarded
}

// withDefaults returns o with its zero fields set to the defaults.
func (o Options) withDefaults() Options {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxFiles == 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.MaxFiles < 0 {
		o.MaxFiles = 0
	}
	if o.MaxAge < 0 {
		o.MaxAge = 0
	}
	if o.RotateEvery < 0 {
		o.RotateEvery = 0
	}
	if o.TailSize <= 0 {
		o.TailSize = DefaultTailSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Stats counts what an instance's streams did since Open.
type Stats struct {
	Stdout StreamStats
	Stderr StreamStats // zero with MergeStderr: stderr is counted in Stdout
}

// StreamStats counts one stream's output.
type StreamStats struct {
	Bytes        uint64 // written to the log file
	DroppedBytes uint64 // lost to a full queue (slow disk) or a failed write (full disk)
	DroppedLines uint64 // newlines in the dropped bytes
	Rotations    uint64 // files rotated, by size, age or Rotate
}
