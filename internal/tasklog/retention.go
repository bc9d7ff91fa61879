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
	"sync/atomic"
	"time"
)

// Rotation and retention are written here rather than taken from
// gopkg.in/natefinch/lumberjack.v2, which does not fit: it names backups
// <instance>.stdout-<time>.log, which a glob on <instance>.stdout.log* misses;
// its mill goroutine never ends (one leaked goroutine per closed instance);
// it counts MaxSize in MiB and MaxAge in days, rejects a write larger than
// MaxSize, creates files 0600, never reopens a deleted file, has no age
// rotation, and compresses without a bound on concurrent gzip work.

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
	// mu guards running, again, stopped and change.
	mu      sync.Mutex
	running bool
	again   bool // work arrived while running
	stopped bool
	change  uint64        // listGen after the instance last changed its rotated files
	stop    chan struct{} // closed by shutdown: abandon compression
	wg      sync.WaitGroup
}

// changed records that the instance has just changed its rotated files (a
// rotation, a pass of the mill): its next pass needs a listing of the
// directory that began after now.
func (m *mill) changed() {
	g := listGen.Load()
	m.mu.Lock()
	m.change = max(m.change, g)
	m.mu.Unlock()
}

func (m *mill) lastChange() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.change
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
	names, err := listDir(dir, i.mill.lastChange())
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			set.log.Warn("cannot list rotated log files", "file", dir, "err", err)
		}
		return
	}
	defer i.mill.changed()
	for _, s := range i.streams {
		base := filepath.Base(s.path)
		keep := i.retain(set, dir, base, names)
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
			// A file gone meanwhile was removed by an operator, or compressed
			// by an earlier instance of the same number (see listDir).
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				set.log.Warn("cannot compress rotated log file", "file", filepath.Join(dir, b.name), "err", err)
			}
		}
	}
}

// retain removes the stream's rotated files that retention no longer keeps and
// returns the others, oldest first.
func (i *Instance) retain(set *settings, dir, base string, names []string) []backup {
	byName := map[string]backup{}
	for _, name := range names {
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

// listTTL is how long a listing of a task's directory serves the mills of
// the task's instances.
var listTTL = time.Second

// dirLists shares the listings of the task directories between the mills.
// The instances of a task start together, and each one's mill looks for the
// rotated files its instance left in an earlier run: a listing each would
// read a directory of 2n entries n times, one listing serves them all.
//
// A listing serves a mill only when it began after the mill's instance last
// changed its rotated files (mill.changed), so that a mill never acts on a
// listing that misses what its own instance did; the files of the other
// instances in it do not matter to it. An operator's change less than
// listTTL old may be missed until the next pass, and files gone meanwhile
// are skipped. So is what an earlier Instance of the same number did in the
// last listTTL before its Close: at worst, retention keeps a file too many
// until the next rotation.
var dirLists = struct {
	mu sync.Mutex
	m  map[string]*dirList // by directory
}{m: map[string]*dirList{}}

// listGen numbers the listings in the order they begin: a listing began after
// a change when its gen is above the listGen read after the change.
var listGen atomic.Uint64

// dirList is one listing of a directory, in progress until done is closed.
type dirList struct {
	gen   uint64
	at    time.Time
	done  chan struct{}
	names []string
	err   error
}

// readDirNames lists a directory, unsorted; tests count its calls.
var readDirNames = func(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// listDir returns the names in dir, from a listing less than listTTL old that
// began after the change numbered after (mill.lastChange), and lists dir when
// there is none, in progress or done. The names are shared: read only.
func listDir(dir string, after uint64) ([]string, error) {
	dirLists.mu.Lock()
	l := dirLists.m[dir]
	if l != nil && l.gen > after && time.Since(l.at) < listTTL {
		dirLists.mu.Unlock()
		<-l.done
		return l.names, l.err
	}
	l = &dirList{gen: listGen.Add(1), at: time.Now(), done: make(chan struct{})}
	dirLists.m[dir] = l
	dirLists.mu.Unlock()

	l.names, l.err = readDirNames(dir)
	close(l.done)
	// Forget the listing once stale, so that the directory of a task gone
	// for good does not keep its names.
	time.AfterFunc(listTTL, func() {
		dirLists.mu.Lock()
		if dirLists.m[dir] == l {
			delete(dirLists.m, dir)
		}
		dirLists.mu.Unlock()
	})
	return l.names, l.err
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
