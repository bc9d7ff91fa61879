package tasklog

import (
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// backupLayout is the UTC time of the rotation in a rotated file's name:
// <instance>.stdout.log.2006-01-02T15-04-05.000, with -N appended when two
// rotations fall in the same millisecond, and .gz once compressed. Names sort
// by age, and the stream's file name stays their prefix for globs.
const backupLayout = "2006-01-02T15-04-05.000"

// backupName returns a free name to rotate path to at now. Within one
// millisecond, the -N suffix keeps growing (from last, the previous rotation's
// stamp and suffix) even where retention removed the earlier names, so that
// names keep sorting by age.
func backupName(path string, now time.Time, last *backupStamp) (string, error) {
	stamp := backupStamp{t: now.UTC().Format(backupLayout)}
	if stamp.t == last.t {
		stamp.seq = last.seq + 1
	}
	for ; stamp.seq < last.seq+1000; stamp.seq++ {
		name := path + "." + stamp.t
		if stamp.seq > 0 {
			name += "-" + strconv.Itoa(stamp.seq)
		}
		if !exists(name) && !exists(name+".gz") {
			*last = stamp
			return name, nil
		}
	}
	return "", fmt.Errorf("no free name to rotate %s to at %s", path, stamp.t)
}

// backupStamp is the time and suffix of a rotated file's name.
type backupStamp struct {
	t   string
	seq int
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return !errors.Is(err, fs.ErrNotExist)
}

// backup is one rotated file of a stream.
type backup struct {
	name string // file name in the task's directory
	t    time.Time
	seq  int
	gz   bool
}

// parseBackup recognizes a rotated file of the stream file named base.
func parseBackup(base, name string) (backup, bool) {
	rest, ok := strings.CutPrefix(name, base+".")
	if !ok {
		return backup{}, false
	}
	rest, gz := strings.CutSuffix(rest, ".gz")
	if len(rest) < len(backupLayout) {
		return backup{}, false
	}
	t, err := time.Parse(backupLayout, rest[:len(backupLayout)])
	if err != nil {
		return backup{}, false
	}
	seq := 0
	if suffix := rest[len(backupLayout):]; suffix != "" {
		digits, ok := strings.CutPrefix(suffix, "-")
		if !ok {
			return backup{}, false
		}
		if seq, err = strconv.Atoi(digits); err != nil || seq <= 0 {
			return backup{}, false
		}
	}
	return backup{name: name, t: t, seq: seq, gz: gz}, true
}

// compressSlots bounds the gzip work of all instances together, so that a
// rotation of every instance at once does not take the workers' CPUs.
var compressSlots = make(chan struct{}, max(1, runtime.NumCPU()/4))

// mill applies retention and compression to the rotated files of one
// instance. It runs in a goroutine started when there is work, one at a
// time, so that an idle instance has none.
type mill struct {
	// mu guards running, again and stopped.
	mu      sync.Mutex
	running bool
	again   bool // work arrived while running
	stopped bool
	stop    chan struct{} // closed by shutdown: abandon compression
	wg      sync.WaitGroup
}

func (m *mill) trigger(i *Instance) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	if m.running {
		m.again = true
		return
	}
	m.running = true
	m.wg.Go(func() { m.run(i) })
}

func (m *mill) run(i *Instance) {
	for {
		i.millOnce(m.stop)
		m.mu.Lock()
		// After shutdown, a pending pass still runs: retention is quick, and
		// the stop channel cuts its compression short.
		if !m.again {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.again = false
		m.mu.Unlock()
	}
}

// shutdown stops compression and waits for the mill goroutine. A file left
// uncompressed is compressed by the next Open's mill.
func (m *mill) shutdown() {
	m.mu.Lock()
	if !m.stopped {
		m.stopped = true
		close(m.stop)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

var errStopped = errors.New("tasklog: compression stopped")

// millOnce removes the rotated files beyond MaxFiles or older than MaxAge,
// then compresses the remaining ones when Compress is set.
func (i *Instance) millOnce(stop <-chan struct{}) {
	set := i.settings()
	dir := filepath.Dir(i.streams[0].path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			set.log.Warn("cannot list rotated log files", "file", dir, "err", err)
		}
		return
	}
	for _, s := range i.streams {
		base := filepath.Base(s.path)
		keep := i.retain(set, dir, base, entries)
		if !set.opts.Compress {
			continue
		}
		for _, b := range keep {
			if b.gz {
				continue
			}
			select {
			case <-stop:
				return
			case compressSlots <- struct{}{}:
			}
			err := compress(filepath.Join(dir, b.name), stop)
			<-compressSlots
			if errors.Is(err, errStopped) {
				return
			}
			if err != nil {
				set.log.Warn("cannot compress rotated log file", "file", filepath.Join(dir, b.name), "err", err)
			}
		}
	}
}

// retain removes the stream's rotated files that retention no longer keeps and
// returns the others, oldest first.
func (i *Instance) retain(set *settings, dir, base string, entries []os.DirEntry) []backup {
	byName := map[string]backup{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "."+base+".") && strings.HasSuffix(name, ".gz.tmp") {
			// A compression that a crash or Close interrupted; only this mill writes them.
			os.Remove(filepath.Join(dir, name))
			continue
		}
		b, ok := parseBackup(base, name)
		if !ok {
			continue
		}
		plain := strings.TrimSuffix(name, ".gz")
		if other, dup := byName[plain]; dup {
			// Both the file and its .gz: the rename of the .gz is atomic, so
			// the .gz is whole and the file was not yet removed.
			if !other.gz {
				other, b = b, other
			}
			os.Remove(filepath.Join(dir, b.name))
			b = other
		}
		byName[plain] = b
	}
	backups := make([]backup, 0, len(byName))
	for _, b := range byName {
		backups = append(backups, b)
	}
	// Newest first.
	slices.SortFunc(backups, func(a, b backup) int {
		if c := b.t.Compare(a.t); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq)
	})
	now := time.Now()
	keep := backups[:0]
	for k, b := range backups {
		if k >= set.opts.MaxFiles || (set.opts.MaxAge > 0 && now.Sub(b.t) > set.opts.MaxAge) {
			if err := os.Remove(filepath.Join(dir, b.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				set.log.Warn("cannot remove rotated log file", "file", filepath.Join(dir, b.name), "err", err)
			}
			continue
		}
		keep = append(keep, b)
	}
	slices.Reverse(keep)
	return keep
}

var gzipPool = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

// compress replaces the file src by src.gz. It writes a hidden temporary file
// first, so that a glob on the stream's name never sees a partial .gz.
func compress(src string, stop <-chan struct{}) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	dst := src + ".gz"
	tmp := filepath.Join(filepath.Dir(src), "."+filepath.Base(dst)+".tmp")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	zw := gzipPool.Get().(*gzip.Writer)
	defer gzipPool.Put(zw)
	zw.Reset(out)
	zw.Name = filepath.Base(src)
	zw.ModTime = fi.ModTime()
	buf := smallPool.Get().(*[]byte)
	defer smallPool.Put(buf)
	for {
		select {
		case <-stop:
			return errStopped
		default:
		}
		n, rerr := in.Read(*buf)
		if n > 0 {
			if _, err := zw.Write((*buf)[:n]); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return os.Remove(src)
}
