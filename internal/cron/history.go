package cron

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Reason is how a run (one attempt) ended, or why a fire time did not run.
type Reason string

// The reasons, as recorded in the history and counted in the metrics. "" is a run still active.
const (
	ReasonSuccess  Reason = "success"  // exit code 0
	ReasonFailed   Reason = "failed"   // non-zero exit, a signal, or it could not start
	ReasonTimeout  Reason = "timeout"  // stopped after Spec.Timeout
	ReasonReplaced Reason = "replaced" // stopped (or never started) for a newer run under Replace
	ReasonStopped  Reason = "stopped"  // stopped by Kill (task removed, operator)
	ReasonSkipped  Reason = "skipped"  // a fire time under Forbid while a run was active
	ReasonMissed   Reason = "missed"   // fire times later than the starting deadline; Record.Missed counts them
	ReasonUnknown  Reason = "unknown"  // glmd stopped while the run was active: its end was not seen
)

// Record is one attempt of a run, or one decision not to run, in the history.
type Record struct {
	ID        uint64    `json:"id"`
	Attempt   int       `json:"attempt,omitempty"`
	Trigger   Trigger   `json:"trigger"`
	Scheduled time.Time `json:"scheduled,omitzero"`
	Start     time.Time `json:"start,omitzero"` // zero when it never started (skipped, missed, replaced while waiting)
	End       time.Time `json:"end,omitzero"`   // zero while active
	// ExitCode is -1 when there is none: not started, killed by a signal that the agent did not map, or active.
	ExitCode int    `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
	Reason   Reason `json:"reason,omitempty"` // "" while active
	Message  string `json:"message,omitempty"`
	Logs     Logs   `json:"logs,omitzero"`
	// Missed is how many fire times a missed record stands for (from Scheduled on).
	Missed int `json:"missed,omitempty"`
}

// Active reports whether the attempt is still running as far as the history knows.
func (r Record) Active() bool { return r.Reason == "" }

// Duration is how long the attempt ran; 0 when it never started or is active.
func (r Record) Duration() time.Duration {
	if r.Start.IsZero() || r.End.IsZero() {
		return 0
	}
	return r.End.Sub(r.Start)
}

// historyVersion is the format of the history files.
const historyVersion = 1

// TaskHistory is the history file of one task.
type TaskHistory struct {
	Version int    `json:"version"`
	Task    string `json:"task"`
	// Schedule is the schedule (expression and zone) LastScheduled belongs to; another schedule after a restart
	// means no catch-up.
	Schedule string `json:"schedule,omitempty"`
	// LastScheduled is the latest fire time handled (run, skipped or missed): after a restart, the fire times after
	// it and before now were missed. It is kept here, not derived from Runs, which manual runs may have pushed out.
	LastScheduled time.Time `json:"last_scheduled,omitzero"`
	LastSuccess   time.Time `json:"last_success,omitzero"` // end of the latest successful attempt
	NextID        uint64    `json:"next_id"`
	Runs          []Record  `json:"runs"` // oldest first
}

// History keeps the run history of cron tasks in a directory (state_dir/cron): one JSON file per task, replaced
// atomically on every change, so a reader (glmctl runs, over the agent's API) never sees half a file. It is safe
// for concurrent use; each task's file has a single writer, its Job.
type History struct {
	dir string
}

// NewHistory returns the history kept in dir; the directory is created on the first write.
func NewHistory(dir string) *History { return &History{dir: dir} }

// Dir returns the directory of the history files.
func (h *History) Dir() string { return h.dir }

// Read returns the history of task; an empty one (and no error) when the task has never run.
func (h *History) Read(task string) (TaskHistory, error) {
	p, err := h.path(task)
	if err != nil {
		return TaskHistory{}, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return TaskHistory{Version: historyVersion, Task: task}, nil
	}
	if err != nil {
		return TaskHistory{}, fmt.Errorf("read cron history of %s: %w", task, err)
	}
	var th TaskHistory
	if err := json.Unmarshal(data, &th); err != nil {
		return TaskHistory{}, fmt.Errorf("read cron history of %s: %s: %w", task, p, err)
	}
	if th.Version != historyVersion {
		return TaskHistory{}, fmt.Errorf("read cron history of %s: %s: format version %d, want %d", task, p, th.Version, historyVersion)
	}
	return th, nil
}

// Tasks returns the names of the tasks that have a history, sorted.
func (h *History) Tasks() ([]string, error) {
	ents, err := os.ReadDir(h.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list cron histories: %w", err)
	}
	var tasks []string
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok && e.Type().IsRegular() && !strings.HasPrefix(name, ".") {
			tasks = append(tasks, name)
		}
	}
	slices.Sort(tasks)
	return tasks, nil
}

// Remove deletes the history of task; no error when there is none.
func (h *History) Remove(task string) error {
	p, err := h.path(task)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cron history of %s: %w", task, err)
	}
	return nil
}

// Write replaces the history file of th.Task: a temporary file in the same directory, fsync, rename, fsync of the
// directory, so that a crash leaves the old or the new file, never a torn one.
func (h *History) Write(th TaskHistory) error {
	p, err := h.path(th.Task)
	if err != nil {
		return err
	}
	th.Version = historyVersion
	data, err := json.MarshalIndent(th, "", "  ")
	if err != nil {
		return fmt.Errorf("write cron history of %s: %w", th.Task, err)
	}
	if err := writeAtomic(p, append(data, '\n')); err != nil {
		return fmt.Errorf("write cron history of %s: %w", th.Task, err)
	}
	return nil
}

// path returns the file of task, refusing names that would leave the directory.
func (h *History) path(task string) (string, error) {
	if task == "" || strings.ContainsAny(task, `/\`) || strings.HasPrefix(task, ".") {
		return "", fmt.Errorf("cron history: invalid task name %q", task)
	}
	return filepath.Join(h.dir, task+".json"), nil
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// trim keeps the records of the newest n runs (by ID), every active record, and the newest run that failed or
// timed out in the end (after its retries) even when it is older, so that the history still shows why the job last
// failed after many good runs.
func trim(recs []Record, n int) []Record {
	ids := make([]uint64, 0, len(recs))
	final := map[uint64]Record{} // the last attempt of each run says how it ended
	for _, r := range recs {
		ids = append(ids, r.ID)
		if f, ok := final[r.ID]; !ok || r.Attempt >= f.Attempt {
			final[r.ID] = r
		}
	}
	var lastBad uint64
	for id, r := range final {
		if r.Reason == ReasonFailed || r.Reason == ReasonTimeout {
			lastBad = max(lastBad, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) <= n {
		return recs
	}
	cut := ids[len(ids)-n] // the oldest ID kept
	return slices.DeleteFunc(recs, func(r Record) bool {
		return r.ID < cut && r.ID != lastBad && !r.Active()
	})
}

// setAside renames an unreadable history file to <task>.json.corrupt, so that a new history does not overwrite
// what an operator may want to look at.
func (h *History) setAside(task string) {
	if p, err := h.path(task); err == nil {
		_ = os.Rename(p, p+".corrupt")
	}
}
