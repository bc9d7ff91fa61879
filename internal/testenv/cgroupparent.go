package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

var parents atomic.Int64

// CgroupParent returns a cgroup path no other test or agent uses, for
// `[cgroup] parent`: an agent kills whatever it finds under its parent when
// it starts, so concurrent tests must never share one. The cleanup removes
// the (then empty) parent directory from every hierarchy.
func CgroupParent(t testing.TB) string {
	t.Helper()
	p := fmt.Sprintf("/glmd-test-%d-%d", os.Getpid(), parents.Add(1))
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + p)
		dirs = append(dirs, "/sys/fs/cgroup"+p)
		for _, d := range dirs {
			// Deepest first: the parent may hold per-task directories.
			sub, _ := filepath.Glob(d + "/*/")
			for _, s := range sub {
				if fi, err := os.Stat(s); err == nil && fi.IsDir() {
					os.Remove(s)
				}
			}
			if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("remove the test's cgroup %s: %v", d, err)
			}
		}
	})
	return p
}
