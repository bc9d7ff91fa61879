package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// workerPkg is the test worker's directory, relative to the module root.
const workerPkg = "internal/testworker"

// WorkerEnv is the environment variable that names a prebuilt test worker, which Worker then returns instead of
// building one.
const WorkerEnv = "GLMD_TESTWORKER"

// built is the test worker of this test binary, built at most once. A sync.Once outlives any one test, so its
// directory is removed by Main, not by a test's cleanup.
var built struct {
	once sync.Once
	dir  string // temporary directory holding the binary
	path string
	err  error
}

// Worker builds internal/testworker once per test binary (CGO_ENABLED=0, so a static binary; GOFLAGS and the rest
// of the environment are honoured, except -race, -msan and -asan, which need cgo) and returns the path of the binary.
// A failed build fails the test with the compiler's output, here and on every later call. The binary lives in a
// temporary directory that Main removes.
//
// When GLMD_TESTWORKER (WorkerEnv) is set, Worker builds nothing and returns that file, made absolute, which Main
// leaves alone: test binaries run where there is no Go toolchain (a User-Mode-Linux VM) get a worker built
// beforehand with `CGO_ENABLED=0 go build ./internal/testworker`. If the variable is set but names no executable
// file, Worker fails the test rather than trying to build, which there could only fail less clearly.
func Worker(t testing.TB) string {
	t.Helper()
	if env := os.Getenv(WorkerEnv); env != "" {
		path, err := prebuiltWorker(env)
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	built.once.Do(func() { built.dir, built.path, built.err = buildWorker() })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// prebuiltWorker checks that path, the value of WorkerEnv, is an executable file, and makes it absolute: tests run
// the worker from other working directories.
func prebuiltWorker(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("testenv: %s=%s: %w", WorkerEnv, path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("testenv: %s=%s: %w: point it at a built %s, or unset it to build one", WorkerEnv, path,
			err, workerPkg)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("testenv: %s=%s: not an executable file (mode %v): point it at a built %s, or unset it "+
			"to build one", WorkerEnv, path, fi.Mode(), workerPkg)
	}
	return abs, nil
}

// removeWorker deletes what Worker built; Main calls it after all tests have run.
func removeWorker() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	for _, c := range cleanups {
		c()
	}
	cleanups = nil
}

// cleanups are run by Main after all tests, for builds kept across tests.
var cleanups []func()

func buildWorker() (dir, path string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", "glmd-testworker-")
	if err != nil {
		return "", "", fmt.Errorf("testenv: build the test worker: %w", err)
	}
	path = filepath.Join(dir, "testworker")
	cmd := exec.Command("go", "build", "-o", path, "./"+workerPkg)
	cmd.Dir = root
	cmd.Env = buildEnv(os.Environ())
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("testenv: build the test worker: go build ./%s in %s: %w\n%s", workerPkg, root, err, out)
	}
	return dir, path, nil
}

// buildEnv is env with CGO_ENABLED=0 and, in GOFLAGS, without -race, -msan and -asan: those need cgo, and a
// worker does not need them to test glmd (GOFLAGS=-race is a common way to run every test with the race detector).
func buildEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if flags, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			var keep []string
			for _, f := range strings.Fields(flags) {
				name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
				if name != "race" && name != "msan" && name != "asan" {
					keep = append(keep, f)
				}
			}
			kv = "GOFLAGS=" + strings.Join(keep, " ")
		}
		if !strings.HasPrefix(kv, "CGO_ENABLED=") {
			out = append(out, kv)
		}
	}
	return append(out, "CGO_ENABLED=0")
}

// moduleRoot finds the glmd module: first the module of the working directory (go test runs a test in its package
// directory), then the directory of this source file, for binaries run from elsewhere.
func moduleRoot() (string, error) {
	var tried []string
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(out)); err == nil && gomod != "" && gomod != os.DevNull {
		root := filepath.Dir(gomod)
		if hasWorker(root) {
			return root, nil
		}
		tried = append(tried, root)
	} else if err != nil {
		tried = append(tried, fmt.Sprintf("go env GOMOD: %v", err))
	}
	// Useless under -trimpath, where the file name is not a path on this machine; hasWorker then says no.
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if hasWorker(root) {
			return root, nil
		}
		tried = append(tried, root)
	}
	return "", errors.New("testenv: cannot find the glmd module to build the test worker (tried " +
		strings.Join(tried, ", ") + "): run the tests inside the repository")
}

func hasWorker(root string) bool {
	_, err := os.Stat(filepath.Join(root, workerPkg, "main.go"))
	return err == nil
}
