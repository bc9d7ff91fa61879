package tasklog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRing(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"empty", 8, nil, ""},
		{"fits", 8, []string{"ab\n", "cd\n"}, "ab\ncd\n"},
		{"exactly full", 6, []string{"ab\n", "cd\n"}, "ab\ncd\n"},
		{"wraps, first line cut", 8, []string{"ab\n", "cd\n", "ef\n"}, "cd\nef\n"},
		{"wraps many times", 8, []string{"1\n", "2\n", "3\n", "4\n", "5\n", "6\n", "7\n"}, "4\n5\n6\n7\n"},
		{"one write larger than max", 8, []string{"xx\n", "0123456789\nab\n"}, "ab\n"},
		{"one line longer than max", 4, []string{"abcdefgh"}, "efgh"},
		{"write of exactly max into empty", 4, []string{"ab\nc"}, "ab\nc"},
		{"grows past first allocation", 2000, []string{strings.Repeat("x", 600) + "\n", strings.Repeat("y", 600) + "\n"},
			strings.Repeat("x", 600) + "\n" + strings.Repeat("y", 600) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ring{max: tt.max}
			for _, w := range tt.writes {
				r.write([]byte(w))
			}
			if got := r.snapshot(); string(got) != tt.want {
				t.Errorf("snapshot = %q, want %q", got, tt.want)
			}
			if cap(r.buf) > tt.max {
				t.Errorf("buffer grew to %d, past max %d", cap(r.buf), tt.max)
			}
		})
	}
}

func TestLastLines(t *testing.T) {
	tests := []struct {
		data string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 9, "a\nb\nc\n"},
		{"a\nb\nc\n", 0, "a\nb\nc\n"},
		{"a\nb\nc", 1, "b\nc"},
		{"a\nb\nc", 2, "a\nb\nc"},
		{"abc", 1, "abc"},
		{"", 3, ""},
		{"\n\n", 1, "\n"},
	}
	for _, tt := range tests {
		if got := lastLines([]byte(tt.data), tt.n); string(got) != tt.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tt.data, tt.n, got, tt.want)
		}
	}
}

func TestParseBackup(t *testing.T) {
	ts := time.Date(2025, 3, 4, 5, 6, 7, 890e6, time.UTC)
	tests := []struct {
		name   string
		ok     bool
		seq    int
		gz     bool
		wantTS time.Time
	}{
		{"0.stdout.log.2025-03-04T05-06-07.890", true, 0, false, ts},
		{"0.stdout.log.2025-03-04T05-06-07.890.gz", true, 0, true, ts},
		{"0.stdout.log.2025-03-04T05-06-07.890-12", true, 12, false, ts},
		{"0.stdout.log.2025-03-04T05-06-07.890-3.gz", true, 3, true, ts},
		{"0.stdout.log", false, 0, false, time.Time{}},
		{"0.stderr.log.2025-03-04T05-06-07.890", false, 0, false, time.Time{}},
		{"10.stdout.log.2025-03-04T05-06-07.890", false, 0, false, time.Time{}},
		{"0.stdout.log.2025-03-04T05-06-07.890-x", false, 0, false, time.Time{}},
		{"0.stdout.log.2025-03-04T05-06-07.890x", false, 0, false, time.Time{}},
		{"0.stdout.log.old", false, 0, false, time.Time{}},
		{".0.stdout.log.2025-03-04T05-06-07.890.gz.tmp", false, 0, false, time.Time{}},
	}
	for _, tt := range tests {
		b, ok := parseBackup("0.stdout.log", tt.name)
		if ok != tt.ok {
			t.Errorf("parseBackup(%q) ok = %v, want %v", tt.name, ok, tt.ok)
			continue
		}
		if ok && (b.seq != tt.seq || b.gz != tt.gz || !b.t.Equal(tt.wantTS)) {
			t.Errorf("parseBackup(%q) = %+v", tt.name, b)
		}
	}
}

func TestBackupName_SortsByAge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.stdout.log")
	now := time.Date(2025, 3, 4, 5, 6, 7, 890e6, time.UTC)
	var last backupStamp
	var names []string
	for range 12 {
		name, err := backupName(path, now, &last)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, nil, 0o640); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		// Retention removes the oldest names; the next ones must not reuse them.
		if len(names) > 2 {
			os.Remove(names[len(names)-3])
		}
	}
	var prev backup
	for k, name := range names {
		b, ok := parseBackup("0.stdout.log", filepath.Base(name))
		if !ok {
			t.Fatalf("backupName made %s, which parseBackup does not take", name)
		}
		if k > 0 && !(b.t.After(prev.t) || (b.t.Equal(prev.t) && b.seq > prev.seq)) {
			t.Errorf("%s does not sort after %s", name, names[k-1])
		}
		prev = b
	}
}

func TestStream_String(t *testing.T) {
	for s, want := range map[Stream]string{Stdout: "stdout", Stderr: "stderr", Stream(7): "stream(7)"} {
		if got := s.String(); got != want {
			t.Errorf("Stream(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}
