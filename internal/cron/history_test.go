package cron

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTrim(t *testing.T) {
	rec := func(id uint64, attempt int, reason Reason) Record {
		return Record{ID: id, Attempt: attempt, Reason: reason}
	}
	tests := []struct {
		name string
		in   []Record
		n    int
		want string
	}{
		{"under the limit", []Record{rec(1, 1, ReasonSuccess), rec(2, 1, ReasonSuccess)}, 3, "1.1 2.1"},
		{"oldest runs go, attempts together", []Record{rec(1, 1, ReasonSuccess), rec(2, 1, ReasonFailed), rec(2, 2, ReasonSuccess),
			rec(3, 0, ReasonSkipped), rec(4, 1, ReasonSuccess)}, 2, "3.0 4.1"},
		{"the newest failure stays", []Record{rec(1, 1, ReasonFailed), rec(2, 1, ReasonTimeout), rec(3, 1, ReasonSuccess),
			rec(4, 1, ReasonSuccess), rec(5, 1, ReasonSuccess)}, 2, "2.1 4.1 5.1"},
		{"active records stay", []Record{rec(1, 1, ""), rec(2, 1, ReasonSuccess), rec(3, 1, ReasonSuccess)}, 1, "1.1 3.1"},
		{"retry of an older run appended late", []Record{rec(1, 1, ReasonFailed), rec(2, 1, ReasonSuccess), rec(1, 2, ReasonSuccess),
			rec(3, 1, ReasonSuccess)}, 2, "2.1 3.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range trim(slices.Clone(tt.in), tt.n) {
				got = append(got, fmt.Sprintf("%d.%d", r.ID, r.Attempt))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("trim to %d: got %s, want %s", tt.n, strings.Join(got, " "), tt.want)
			}
		})
	}
}

func TestHistory_WriteRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cron") // created on the first write
	h := NewHistory(dir)
	empty, err := h.Read("export")
	if err != nil || empty.Task != "export" || len(empty.Runs) != 0 {
		t.Fatalf("Read of a task without history = %+v, %v", empty, err)
	}
	start := time.Date(2024, 6, 1, 3, 0, 0, 0, time.UTC)
	th := TaskHistory{Task: "export", NextID: 3, LastScheduled: start, Runs: []Record{
		{ID: 1, Attempt: 1, Trigger: TriggerSchedule, Scheduled: start, Start: start, End: start.Add(time.Minute),
			ExitCode: 0, Reason: ReasonSuccess, Logs: Logs{Stdout: "a.log", Stderr: "b.log"}},
		{ID: 2, Trigger: TriggerSchedule, Scheduled: start, End: start, ExitCode: -1, Reason: ReasonMissed, Missed: 4},
	}}
	if err := h.Write(th); err != nil {
		t.Fatal(err)
	}
	got, err := h.Read("export")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.NextID != 3 || len(got.Runs) != 2 || got.Runs[0].Duration() != time.Minute ||
		got.Runs[0].Logs.Stderr != "b.log" || got.Runs[1].Missed != 4 || !got.LastScheduled.Equal(start) {
		t.Errorf("read back %+v", got)
	}
	data, err := os.ReadFile(filepath.Join(dir, "export.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Zero times and empty fields stay out of the file; exit codes stay in (0 is an answer).
	if s := string(data); strings.Contains(s, `"start": "0001`) || !strings.Contains(s, `"exit_code": 0`) || strings.Contains(s, `"logs": {}`) {
		t.Errorf("file:\n%s", s)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := h.Remove("export"); err != nil {
		t.Fatal(err)
	}
	if err := h.Remove("export"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestHistory_Errors(t *testing.T) {
	dir := t.TempDir()
	h := NewHistory(dir)
	for _, name := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := h.Read(name); err == nil {
			t.Errorf("Read(%q) accepted", name)
		}
		if err := h.Write(TaskHistory{Task: name}); err == nil {
			t.Errorf("Write(%q) accepted", name)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Read("bad"); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("Read of a torn file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "future.json"), []byte(`{"version": 9, "task": "future"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Read("future"); err == nil || !strings.Contains(err.Error(), "format version 9") {
		t.Errorf("Read of a newer format: %v", err)
	}
	h.setAside("bad")
	if _, err := os.Stat(filepath.Join(dir, "bad.json.corrupt")); err != nil {
		t.Errorf("not set aside: %v", err)
	}
	tasks, err := h.Tasks()
	if err != nil || !slices.Equal(tasks, []string{"future"}) {
		t.Errorf("Tasks() = %v, %v", tasks, err)
	}
	if tasks, err := NewHistory(filepath.Join(dir, "none")).Tasks(); err != nil || tasks != nil {
		t.Errorf("Tasks() of a missing dir = %v, %v", tasks, err)
	}
}
