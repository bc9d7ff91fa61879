package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// cworkerSrc is the benchmarks' C worker, relative to the module root.
const cworkerSrc = "bench/cworker/worker.c"

var cbuilt struct {
	once sync.Once
	path string
	err  error
}

// CWorker compiles bench/cworker/worker.c once per test binary and returns
// the binary's path. Benchmarks use it so that what they time is glmd, not a
// worker's runtime. Like Worker, call it before anything starts glmd's
// reaper. It skips (fails under GLMD_TEST_STRICT=1) without a C compiler.
func CWorker(t testing.TB) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		if cc, err = exec.LookPath("gcc"); err != nil {
			Skip(t, "no C compiler (cc or gcc) to build %s", cworkerSrc)
		}
	}
	cbuilt.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			cbuilt.err = err
			return
		}
		dir, err := os.MkdirTemp("", "glmd-cworker-")
		if err != nil {
			cbuilt.err = err
			return
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		path := filepath.Join(dir, "cworker")
		out, err := exec.Command(cc, "-O2", "-o", path, filepath.Join(root, cworkerSrc)).CombinedOutput()
		if err != nil {
			cbuilt.err = fmt.Errorf("testenv: %s %s: %w\n%s", cc, cworkerSrc, err, out)
			return
		}
		cbuilt.path = path
	})
	if cbuilt.err != nil {
		t.Fatal(cbuilt.err)
	}
	return cbuilt.path
}
