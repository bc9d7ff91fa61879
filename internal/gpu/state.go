package gpu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateVersion is written into the state file; a file of another version
// is read as empty, as a corrupt one is.
const stateVersion = 1

// stateFile is the JSON layout of the Pool's state file. Assignments keep
// each owner's GPUs in allocation order, so that a restarted worker sees
// its GPUs under the same CUDA device numbers.
type stateFile struct {
	Version     int          `json:"version"`
	Assignments []assignment `json:"assignments"`
}

type assignment struct {
	UUID     string `json:"uuid"`
	Task     string `json:"task"`
	Instance int    `json:"instance"`
}

// loadState reads the last assignment of every owner. A missing file is
// no state; a file that cannot be parsed is an error the caller logs
// before starting empty: preferences are a convenience, never a reason to
// keep the agent down.
func loadState(path string) (map[Owner][]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[Owner][]string{}, nil
	}
	if err != nil {
		return map[Owner][]string{}, fmt.Errorf("read gpu state %s: %w", path, err)
	}
	var f stateFile
	if err := json.Unmarshal(data, &f); err != nil {
		return map[Owner][]string{}, fmt.Errorf("parse gpu state %s: %w", path, err)
	}
	if f.Version != stateVersion {
		return map[Owner][]string{}, fmt.Errorf("parse gpu state %s: version %d, want %d", path, f.Version, stateVersion)
	}
	out := map[Owner][]string{}
	for _, a := range f.Assignments {
		if a.UUID == "" || a.Task == "" {
			continue
		}
		o := Owner{Task: a.Task, Instance: a.Instance}
		out[o] = append(out[o], a.UUID)
	}
	return out, nil
}

// saveState writes the assignments atomically: a temporary file in the
// same directory, fsync, rename over the old one, fsync of the directory,
// so that a crash leaves either the old or the new file, never half of
// one.
func saveState(path string, prefer map[Owner][]string) error {
	owners := make([]Owner, 0, len(prefer))
	for o := range prefer {
		owners = append(owners, o)
	}
	sortOwners(owners)
	f := stateFile{Version: stateVersion, Assignments: []assignment{}}
	for _, o := range owners {
		for _, u := range prefer[o] {
			f.Assignments = append(f.Assignments, assignment{UUID: u, Task: o.Task, Instance: o.Instance})
		}
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode gpu state: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write gpu state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write gpu state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write gpu state %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write gpu state %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write gpu state %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write gpu state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write gpu state: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write gpu state: sync %s: %w", dir, err)
	}
	return nil
}
