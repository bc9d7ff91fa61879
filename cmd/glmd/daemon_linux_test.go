package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/testenv"
)

// TestDaemon runs the real binary as systemd would: READY=1 over
// NOTIFY_SOCKET once it supervises, SIGHUP reloads, SIGTERM stops every
// worker (grandchildren too), sends STOPPING=1 and exits 0.
func TestDaemon_SignalsAndNotify(t *testing.T) {
	testenv.RequireLinux(t)
	worker := testenv.Worker(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf.d")
	os.MkdirAll(conf, 0o755)
	sock := filepath.Join(dir, "glmd.sock")
	cfgFile := filepath.Join(dir, "glmd.toml")
	os.WriteFile(cfgFile, fmt.Appendf(nil, "node_name = \"e2e\"\nconf_dir = %q\nstate_dir = %q\nlog_dir = %q\nsocket = %q\n[metrics]\nlisten = \"127.0.0.1:0\"\n[cgroup]\nparent = %q\n",
		conf, filepath.Join(dir, "state"), filepath.Join(dir, "log"), sock, testenv.CgroupParent(t)), 0o644)
	kids := filepath.Join(dir, "kids")
	os.WriteFile(filepath.Join(conf, "e2e-tree.toml"), fmt.Appendf(nil,
		"command = [%q, \"-spawn-setsid\", \"1\", \"-daemonize\", \"1\", \"-children-file\", %q]\ninstances = 2\n", worker, kids), 0o644)

	notify := filepath.Join(dir, "notify.sock")
	nl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	states := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := nl.Read(buf)
			if err != nil {
				close(states)
				return
			}
			for _, s := range strings.Split(string(buf[:n]), "\n") {
				states <- s
			}
		}
	}()

	logFile := filepath.Join(dir, "glmd.log")
	logOut, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logOut.Close()
	cmd := exec.Command(glmdBin, "--config", cfgFile)
	// WATCHDOG_USEC asks for keep-alive pings (WatchdogSec= in the unit).
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify, "WATCHDOG_USEC=200000")
	cmd.Stderr = logOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("glmd log:\n%s", b)
		}
	})
	waitNotify(t, states, "READY=1")
	waitNotify(t, states, "WATCHDOG=1")

	c := api.NewClient(sock)
	ctx := context.Background()
	testenv.Eventually(t, 20*time.Second, func() bool {
		st, err := c.Status(ctx, api.StatusOptions{})
		return err == nil && len(st) == 2 && st[0].State == "running" && st[1].State == "running"
	}, "two running instances")
	testenv.Eventually(t, 10*time.Second, func() bool { return len(testenv.ReadPids(t, kids)) == 4 }, "grandchildren not started")

	// SIGHUP reloads: a file added with the watcher's help or not, it is
	// there after the reload. Before, validate --diff shows the plan.
	os.WriteFile(filepath.Join(conf, "e2e-extra.toml"), fmt.Appendf(nil, "command = [%q]\n", worker), 0o644)
	if out, err := exec.Command(glmdBin, "validate", "--diff", "--config", cfgFile).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "+ e2e-extra  add") && !strings.Contains(string(out), "no changes") {
		t.Errorf("validate --diff: %v\n%s", err, out)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	testenv.Eventually(t, 20*time.Second, func() bool {
		st, _ := c.Status(ctx, api.StatusOptions{})
		return len(st) == 3
	}, "extra task not loaded")

	pids := append(testenv.ReadPids(t, kids), testenv.ProcsWithEnv("GLMD_TASK=e2e-extra")...)
	cmd.Process.Signal(syscall.SIGTERM)
	waitNotify(t, states, "STOPPING=1")
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("glmd exited with %v, want 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("glmd did not exit after SIGTERM")
	}
	testenv.WaitGone(t, 10*time.Second, pids...)
	for _, task := range []string{"e2e-tree", "e2e-extra"} {
		if left := testenv.ProcsWithEnv("GLMD_TASK=" + task); len(left) > 0 {
			t.Errorf("processes of %s left after SIGTERM: %v", task, left)
		}
	}
	if _, err := os.Stat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("control socket left behind: %v", err)
	}
	b, _ := os.ReadFile(logFile)
	if !strings.Contains(string(b), "glmd stopped") {
		t.Error("no 'glmd stopped' log line")
	}
	// Every process here ends on SIGTERM: none may have waited for the
	// escalation to SIGKILL (a process missed by the stop signal would).
	if strings.Contains(string(b), "stop timeout") {
		t.Error("a worker needed SIGKILL although all of them handle SIGTERM")
	}
}

func waitNotify(t *testing.T, states <-chan string, want string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case s, ok := <-states:
			if !ok {
				t.Fatalf("notify socket closed before %s", want)
			}
			if s == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %s from glmd", want)
		}
	}
}
