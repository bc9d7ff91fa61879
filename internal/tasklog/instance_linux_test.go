package tasklog

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestOpen_InvalidName(t *testing.T) {
	tests := []struct {
		name     string
		task     string
		instance int
	}{
		{"empty", "", 0},
		{"dot", ".", 0},
		{"dotdot", "..", 0},
		{"slash", "a/b", 0},
		{"negative instance", "job", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := Open(t.TempDir(), tt.task, tt.instance, Options{})
			if err == nil {
				inst.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("err = %v, want ErrInvalidName", err)
			}
		})
	}
}

func TestInstance_Streams(t *testing.T) {
	tests := []struct {
		name       string
		merge      bool
		wantStdout string
		wantStderr string // "" with merge: no stderr file at all
	}{
		{"separate", false, "out1\nout2\nrestarted\n", "err1\n"},
		{"merged", true, "out1\nout2\nerr1\nrestarted\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			inst, err := Open(dir, "glm-serve", 3, Options{MergeStderr: tt.merge})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { inst.Close() })
			if want := filepath.Join(dir, "glm-serve", "3.stdout.log"); inst.Path(Stdout) != want {
				t.Errorf("Path(Stdout) = %s, want %s", inst.Path(Stdout), want)
			}
			shell(t, inst, `printf 'out1\nout2\n'; printf 'err1\n' >&2`)
			// A restart: the next process gets the same pipes.
			shell(t, inst, `echo restarted`)
			if err := inst.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			if got := readFile(t, inst.Path(Stdout)); string(got) != tt.wantStdout {
				t.Errorf("stdout file = %q, want %q", got, tt.wantStdout)
			}
			errPath := filepath.Join(dir, "glm-serve", "3.stderr.log")
			if tt.merge {
				if inst.Path(Stderr) != inst.Path(Stdout) || inst.Stderr() != inst.Stdout() {
					t.Error("merged stderr does not share stdout's pipe and file")
				}
				if _, err := os.Stat(errPath); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("stderr file exists with merge_stderr: %v", err)
				}
			} else if got := readFile(t, errPath); string(got) != tt.wantStderr {
				t.Errorf("stderr file = %q, want %q", got, tt.wantStderr)
			}
			fi, err := os.Stat(inst.Path(Stdout))
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm&^0o640 != 0 || perm&0o600 != 0o600 {
				t.Errorf("log file mode = %v, want 0640 (less the umask)", perm)
			}
			st := inst.Stats()
			if st.Stdout.Bytes != uint64(len(tt.wantStdout)) || st.Stderr.Bytes != uint64(len(tt.wantStderr)) {
				t.Errorf("Stats bytes = %d/%d, want %d/%d", st.Stdout.Bytes, st.Stderr.Bytes, len(tt.wantStdout), len(tt.wantStderr))
			}
		})
	}
}

func TestInstance_CloseDrains(t *testing.T) {
	inst := openTest(t, Options{}, nil)
	const total, line = 8 << 20, 100
	startFlood(t, inst, "stdout", total, line).wait(t)
	// No wait for the writer: Close itself reads to EOF and flushes.
	if err := inst.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := readFile(t, inst.Path(Stdout)), floodContent(total, line); !bytes.Equal(got, want) {
		t.Errorf("file has %d bytes, want the %d the worker wrote", len(got), len(want))
	}
	if st := inst.Stats().Stdout; st.DroppedBytes != 0 {
		t.Errorf("dropped %d bytes on a working disk", st.DroppedBytes)
	}
	if err := inst.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := inst.Rotate(); !errors.Is(err, ErrClosed) {
		t.Errorf("Rotate after Close = %v, want ErrClosed", err)
	}
}

func TestInstance_CloseWithOrphan(t *testing.T) {
	inst := openTest(t, Options{}, nil)
	// sleep holds the write ends and never closes them, like an orphan would.
	start(t, inst, exec.Command("/bin/sh", "-c", "echo started; exec sleep 600"))
	waitFor(t, "the worker's first line", func() bool { return inst.Stats().Stdout.Bytes == 8 })
	done := make(chan error, 1)
	go func() { done <- inst.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("Close hangs while a process holds the pipe")
	}
	if got := readFile(t, inst.Path(Stdout)); string(got) != "started\n" {
		t.Errorf("file = %q", got)
	}
}

func TestInstance_RotateBySize(t *testing.T) {
	const maxSize, maxFiles, total, line = 4000, 3, 64 << 10, 100
	inst := openTest(t, Options{MaxSize: maxSize, MaxFiles: maxFiles}, nil)
	startFlood(t, inst, "stdout", total, line).wait(t)
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	content := floodContent(total, line)
	bs := backups(t, inst, Stdout)
	if len(bs) != maxFiles {
		t.Fatalf("%d rotated files, want MaxFiles = %d: %v", len(bs), maxFiles, bs)
	}
	var kept []byte
	for _, b := range append(bs, inst.Path(Stdout)) {
		data := readFile(t, b)
		if len(data) > maxSize || len(data) == 0 || data[len(data)-1] != '\n' {
			t.Errorf("%s: %d bytes, want 1..%d ending at a line end", b, len(data), maxSize)
		}
		kept = append(kept, data...)
	}
	if !bytes.HasSuffix(content, kept) {
		t.Error("the rotated files and the current one are not the end of the output, in order")
	}
	if st := inst.Stats().Stdout; st.Rotations < uint64(total/maxSize) {
		t.Errorf("Rotations = %d, want >= %d", st.Rotations, total/maxSize)
	}
}

func TestInstance_Rotate(t *testing.T) {
	inst := openTest(t, Options{}, nil)
	shell(t, inst, `echo one; echo err >&2`)
	waitFor(t, "the output in the files", func() bool {
		st := inst.Stats()
		return st.Stdout.Bytes == 4 && st.Stderr.Bytes == 4
	})
	if err := inst.Rotate(); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	for _, s := range []Stream{Stdout, Stderr} {
		bs := backups(t, inst, s)
		if len(bs) != 1 {
			t.Fatalf("%s: rotated files %v, want 1", s, bs)
		}
		if got := readFile(t, inst.Path(s)); len(got) != 0 {
			t.Errorf("%s: new file has %q", s, got)
		}
	}
	if got := readFile(t, backups(t, inst, Stdout)[0]); string(got) != "one\n" {
		t.Errorf("rotated stdout = %q", got)
	}

	// An empty file is not rotated again.
	if err := inst.Rotate(); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if bs := backups(t, inst, Stdout); len(bs) != 1 {
		t.Errorf("rotating an empty file made a backup: %v", bs)
	}

	// Rotate reopens a file an operator deleted.
	if err := os.Remove(inst.Path(Stdout)); err != nil {
		t.Fatal(err)
	}
	if err := inst.Rotate(); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if _, err := os.Stat(inst.Path(Stdout)); err != nil {
		t.Errorf("Rotate did not reopen the deleted file: %v", err)
	}
	shell(t, inst, `echo two`)
	waitFor(t, "output in the reopened file", func() bool {
		b, _ := os.ReadFile(inst.Path(Stdout))
		return string(b) == "two\n"
	})
}

func TestInstance_RotateEvery(t *testing.T) {
	inst := openTest(t, Options{RotateEvery: 20 * time.Millisecond}, nil)
	shell(t, inst, `echo aged`)
	waitFor(t, "a rotation by age", func() bool { return inst.Stats().Stdout.Rotations >= 1 })
	bs := backups(t, inst, Stdout)
	if len(bs) != 1 {
		t.Fatalf("rotated files %v, want 1", bs)
	}
	if got := readFile(t, bs[0]); string(got) != "aged\n" {
		t.Errorf("rotated file = %q", got)
	}
	if got := readFile(t, inst.Path(Stdout)); len(got) != 0 {
		t.Errorf("new file = %q", got)
	}
	if st := inst.Stats().Stderr; st.Rotations != 0 {
		t.Errorf("empty stderr was rotated %d times", st.Rotations)
	}
}

func TestInstance_Compress(t *testing.T) {
	const total, line = 64 << 10, 100
	inst := openTest(t, Options{MaxSize: 4000, MaxFiles: 100, Compress: true}, nil)
	startFlood(t, inst, "stderr", total, line).wait(t)
	content := floodContent(total, line)
	waitFor(t, "the output in the file", func() bool { return inst.Stats().Stderr.Bytes == uint64(len(content)) })
	waitFor(t, "every rotated file compressed", func() bool {
		bs := backups(t, inst, Stderr)
		for _, b := range bs {
			if filepath.Ext(b) != ".gz" {
				return false
			}
		}
		return len(bs) == len(content)/4000
	})
	var got []byte
	for _, b := range backups(t, inst, Stderr) {
		f, err := os.Open(b)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		data, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		got = append(got, data...)
	}
	got = append(got, readFile(t, inst.Path(Stderr))...)
	if !bytes.Equal(got, content) {
		t.Errorf("decompressed files and current file: %d bytes, want the %d written", len(got), len(content))
	}
	hidden, _ := filepath.Glob(filepath.Join(filepath.Dir(inst.Path(Stderr)), ".*"))
	if len(hidden) != 0 {
		t.Errorf("temporary files left: %v", hidden)
	}
}

func TestInstance_Update(t *testing.T) {
	inst := openTest(t, Options{MaxSize: 1000, MaxFiles: 5}, nil)
	startFlood(t, inst, "stdout", 20000, 100).wait(t)
	waitFor(t, "5 rotated files", func() bool { return len(backups(t, inst, Stdout)) == 5 })
	inst.Update(Options{MaxSize: 1000, MaxFiles: 1})
	waitFor(t, "retention down to 1 file", func() bool { return len(backups(t, inst, Stdout)) == 1 })
}

func TestInstance_Tail(t *testing.T) {
	tests := []struct {
		name     string
		tailSize int
		lines    int
		want     string
	}{
		{"last lines and partial", 0, 3, "l18\nl19\nl20\npart"},
		{"all", 0, 0, "l01\nl02\nl03\nl04\nl05\nl06\nl07\nl08\nl09\nl10\nl11\nl12\nl13\nl14\nl15\nl16\nl17\nl18\nl19\nl20\npart"},
		{"more than there are", 0, 100, "l01\nl02\nl03\nl04\nl05\nl06\nl07\nl08\nl09\nl10\nl11\nl12\nl13\nl14\nl15\nl16\nl17\nl18\nl19\nl20\npart"},
		// 16 bytes keep exactly the last 3 lines and the partial one.
		{"small tail", 16, 0, "l18\nl19\nl20\npart"},
		// 14 bytes cut "l18" in two: whole lines only.
		{"small tail cuts a line", 14, 0, "l19\nl20\npart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := openTest(t, Options{TailSize: tt.tailSize}, nil)
			shell(t, inst, `for i in 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20; do echo l$i; done; printf part; echo oops >&2`)
			waitFor(t, "the partial line in the tail", func() bool { return bytes.HasSuffix(inst.Tail(Stdout, 1), []byte("part")) })
			if got := inst.Tail(Stdout, tt.lines); string(got) != tt.want {
				t.Errorf("Tail(Stdout, %d) = %q, want %q", tt.lines, got, tt.want)
			}
			waitFor(t, "stderr in its tail", func() bool { return string(inst.Tail(Stderr, 5)) == "oops\n" })
		})
	}
}

func TestInstance_Follow(t *testing.T) {
	inst := openTest(t, Options{}, nil)
	shell(t, inst, `echo before >&2`)
	waitFor(t, "the first line in the tail", func() bool { return len(inst.Tail(Stderr, 1)) > 0 })

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := inst.Follow(ctx, Stderr)
	other := inst.Follow(t.Context(), Stdout)
	shell(t, inst, `echo after >&2`)
	var got []byte
	for !bytes.Contains(got, []byte("after\n")) {
		select {
		case b, ok := <-ch:
			if !ok {
				t.Fatal("follow channel closed early")
			}
			got = append(got, b...)
		case <-time.After(deadline):
			t.Fatalf("no output followed; got %q", got)
		}
	}
	if string(got) != "after\n" {
		t.Errorf("followed %q, want only what came after Follow", got)
	}
	cancel()
	waitClosed(t, ch)

	// Close ends the followers that are left.
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, other)
	if _, ok := <-inst.Follow(t.Context(), Stdout); ok {
		t.Error("Follow after Close returned an open channel")
	}
}

func waitClosed(t *testing.T, ch <-chan []byte) {
	t.Helper()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-time.After(deadline):
			t.Fatal("follow channel not closed")
		}
	}
}

func TestInstance_ReopenDeleted(t *testing.T) {
	inst := openTest(t, Options{}, nil)
	shell(t, inst, `echo one`)
	waitFor(t, "the first line in the file", func() bool { return inst.Stats().Stdout.Bytes == 4 })
	// An operator removes the whole task directory.
	if err := os.RemoveAll(filepath.Dir(inst.Path(Stdout))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the file to come back", func() bool {
		shell(t, inst, `echo two`)
		b, err := os.ReadFile(inst.Path(Stdout))
		return err == nil && bytes.HasPrefix(b, []byte("two\n"))
	})
}

func TestInstance_DropPath(t *testing.T) {
	tests := []struct {
		disk    string
		episode string // the one message the episode logs
	}{
		{"stuck", "WARN log disk too slow"},
		{"full", "WARN cannot write log file"},
	}
	for _, tt := range tests {
		t.Run(tt.disk, func(t *testing.T) {
			const total, line = 16 << 20, 100
			d := newDisk(tt.disk)
			rec := &recorder{}
			inst := openTest(t, Options{Logger: slog.New(rec)}, d.write)

			// The worker finishes although the disk takes nothing.
			startFlood(t, inst, "stdout", total, line).wait(t)
			st := inst.Stats().Stdout
			if st.DroppedBytes == 0 || st.DroppedLines == 0 {
				t.Fatalf("dropped %d bytes, %d lines; want some", st.DroppedBytes, st.DroppedLines)
			}

			d.recover()
			// Until the writer has drained what queued up, a full queue
			// still drops new output (by design): write after it did.
			waitFor(t, "the queue to drain", func() bool { return !inst.queued() })
			shell(t, inst, `echo after`)
			waitFor(t, "output after the disk recovered", func() bool {
				b, _ := os.ReadFile(inst.Path(Stdout))
				return bytes.HasSuffix(b, []byte("after\n"))
			})
			if err := inst.Close(); err != nil {
				t.Fatal(err)
			}
			st = inst.Stats().Stdout
			written := uint64(len(floodContent(total, line)))
			if got, want := st.Bytes+st.DroppedBytes, written+6; got != want {
				t.Errorf("written %d + dropped %d bytes = %d, want %d", st.Bytes, st.DroppedBytes, got, want)
			}
			file := readFile(t, inst.Path(Stdout))
			if uint64(len(file)) != st.Bytes {
				t.Errorf("file has %d bytes, Stats says %d", len(file), st.Bytes)
			}
			lines := uint64(bytes.Count(file, newline))
			if got, want := lines+st.DroppedLines, written/line+1; got != want {
				t.Errorf("%d lines in the file + %d dropped = %d, want %d", lines, st.DroppedLines, got, want)
			}
			if n := rec.count(tt.episode); n != 1 {
				t.Errorf("%q logged %d times, want once per episode; log: %q", tt.episode, n, rec.msgs)
			}
			// The tail saw everything, the dropped output too.
			if got := inst.Tail(Stdout, 1); string(got) != "after\n" {
				t.Errorf("tail = %q", got)
			}
		})
	}
}

func TestInstance_RetentionAtFirstOutput(t *testing.T) {
	old := "0.stdout.log.2020-01-02T03-04-05.000"
	recent := "0.stdout.log." + time.Now().UTC().Add(-time.Minute).Format(backupLayout)
	foreign := "0.stdout.log.old"
	tests := []struct {
		name string
		opts Options
		want []string // files of the task directory once the mill is done
	}{
		// No stderr file: the worker wrote only to stdout.
		{"by count", Options{MaxFiles: 1}, []string{"0.stdout.log", foreign, recent}},
		{"none kept", Options{MaxFiles: -1}, []string{"0.stdout.log", foreign}},
		{"by age", Options{MaxAge: 24 * time.Hour}, []string{"0.stdout.log", foreign, recent}},
		{"compress left over", Options{Compress: true}, []string{"0.stdout.log", foreign, old + ".gz", recent + ".gz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logDir := t.TempDir()
			dir := filepath.Join(logDir, "job")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{old, recent, foreign} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(name+"\n"), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			inst, err := Open(logDir, "job", 0, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { inst.Close() })
			shell(t, inst, `echo started`)
			slices.Sort(tt.want) // as ReadDir lists
			var got []string
			waitFor(t, "retention to leave "+strings.Join(tt.want, " "), func() bool {
				entries, err := os.ReadDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				got = got[:0]
				for _, e := range entries {
					got = append(got, e.Name())
				}
				return slices.Equal(got, tt.want)
			})
		})
	}
}

func TestOpen_CreatesFilesOnFirstOutput(t *testing.T) {
	logDir := t.TempDir()
	inst, err := Open(logDir, "job", 2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	dir := filepath.Join(logDir, "job")
	if want := filepath.Join(dir, "2.stdout.log"); inst.Path(Stdout) != want {
		t.Errorf("Path(Stdout) = %s, want %s", inst.Path(Stdout), want)
	}
	// The worker runs, holding the pipes, and writes once told to on stdin.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdinR.Close(); stdinW.Close() })
	cmd := exec.Command("/bin/sh", "-c", "read go; echo hello")
	cmd.Stdin = stdinR
	w := start(t, inst, cmd)
	// Nothing to rotate, and Rotate must not create the files either.
	if err := inst.Rotate(); err != nil {
		t.Errorf("Rotate without output: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the log directory exists before any output: %v", err)
	}

	if _, err := stdinW.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	w.wait(t)
	waitFor(t, "the output in a new file", func() bool {
		b, _ := os.ReadFile(inst.Path(Stdout))
		return string(b) == "hello\n"
	})
	if _, err := os.Stat(inst.Path(Stderr)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stderr file exists without stderr output: %v", err)
	}
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	if st := inst.Stats(); st.Stdout.Bytes != 6 || st.Stdout.DroppedBytes != 0 || st.Stderr != (StreamStats{}) {
		t.Errorf("Stats = %+v", st)
	}
}

func TestOpen_CannotCreateFiles(t *testing.T) {
	// A regular file where the log directory should be: even root cannot
	// create the directory or the files below it.
	logDir := filepath.Join(t.TempDir(), "logs")
	if err := os.WriteFile(logDir, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	inst, err := Open(logDir, "job", 0, Options{Logger: slog.New(rec)})
	if err != nil {
		t.Fatalf("Open failed on a broken log disk: %v", err)
	}
	t.Cleanup(func() { inst.Close() })

	shell(t, inst, `echo one`)
	waitFor(t, "the first line dropped", func() bool { return inst.Stats().Stdout.DroppedBytes == 4 })
	shell(t, inst, `echo two`)
	waitFor(t, "the second line dropped", func() bool { return inst.Stats().Stdout.DroppedBytes == 8 })
	if n := rec.count("WARN cannot open log file"); n != 1 {
		t.Errorf("warned %d times, want once per episode; log: %q", n, rec.msgs)
	}

	// The disk is repaired: the next output creates the directory and file.
	if err := os.Remove(logDir); err != nil {
		t.Fatal(err)
	}
	shell(t, inst, `echo three`)
	waitFor(t, "the output in the file", func() bool {
		b, _ := os.ReadFile(inst.Path(Stdout))
		return string(b) == "three\n"
	})
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	st := inst.Stats().Stdout
	if st.Bytes != 6 || st.DroppedBytes != 8 || st.DroppedLines != 2 {
		t.Errorf("Stats = %+v, want 6 bytes written, 8 bytes in 2 lines dropped", st)
	}
	if n := rec.count("INFO log file writable again"); n != 1 {
		t.Errorf("recovery logged %d times, want once; log: %q", n, rec.msgs)
	}
	if got := inst.Tail(Stdout, 0); string(got) != "one\ntwo\nthree\n" {
		t.Errorf("tail = %q, want every line, the dropped ones too", got)
	}
}

// TestOpen_SharedListing opens many instances of a task whose earlier run
// left rotated files, as the agent does at its start: retention handles each
// instance's files, and the directory is listed once for all of them.
func TestOpen_SharedListing(t *testing.T) {
	const n = 50
	var listings atomic.Int32
	// Restored last, once the instances are closed and their mills ended.
	ttl, read := listTTL, readDirNames
	t.Cleanup(func() { listTTL, readDirNames = ttl, read })
	// Long enough that the test does not depend on how fast it runs.
	listTTL = time.Hour
	readDirNames = func(dir string) ([]string, error) {
		listings.Add(1)
		return read(dir)
	}

	logDir := t.TempDir()
	dir := filepath.Join(logDir, "job")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var want []string
	for k := range n {
		for _, name := range []string{
			fmt.Sprintf("%d.stdout.log.2020-01-02T03-04-05.000", k), // beyond MaxFiles
			fmt.Sprintf("%d.stdout.log.2020-01-02T03-04-06.000", k),
		} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(name+"\n"), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, fmt.Sprintf("%d.stdout.log", k), fmt.Sprintf("%d.stdout.log.2020-01-02T03-04-06.000", k))
	}
	slices.Sort(want)
	for k := range n {
		inst, err := Open(logDir, "job", k, Options{MaxFiles: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { inst.Close() })
		if _, err := inst.Stdout().Write([]byte("started\n")); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	waitFor(t, "retention of every instance's files", func() bool {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range entries {
			got = append(got, e.Name())
		}
		return slices.Equal(got, want)
	})
	if l := listings.Load(); l != 1 {
		t.Errorf("the directory was listed %d times for %d instances, want once", l, n)
	}
}

func TestInstance_FileName(t *testing.T) {
	dir := t.TempDir()
	inst, err := Open(dir, "export", 0, Options{FileName: "runs/7-2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	if want := filepath.Join(dir, "export", "runs", "7-2.stdout.log"); inst.Path(Stdout) != want {
		t.Errorf("Path(Stdout) = %s, want %s", inst.Path(Stdout), want)
	}
	shell(t, inst, `echo run`)
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, inst.Path(Stdout)); string(got) != "run\n" {
		t.Errorf("run log = %q", got)
	}
	if _, err := Open(dir, "export", 0, Options{FileName: "../x"}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("FileName ../x: err = %v, want ErrInvalidName", err)
	}
}

func TestTailFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "1-1.stdout.log")
	if err := os.WriteFile(p, []byte("a\nb\nc\npartial"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := TailFile(p, 2)
	if err != nil || string(got) != "b\nc\npartial" {
		t.Errorf("TailFile = %q, %v; want the last 2 lines and the partial one", got, err)
	}
	if _, err := TailFile(filepath.Join(t.TempDir(), "none"), 2); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
