// Package consultest runs real Consul agents for tests: RequireConsul finds the binary that .ci/consul-build
// built, Start runs a private agent on free ports, and the Agent can be stopped, restarted, frozen and thawed to
// play the faults discovery must survive.
package consultest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/open-autoglm/glmd/internal/testenv"
)

// Version is the Consul release the tests run against; .ci/consul-build builds it.
const Version = "1.20.6"

// BinEnv names the environment variable that points at the consul binary (the Makefile's unit target sets it).
const BinEnv = "CONSUL_BIN"

// readyTimeout bounds how long an agent may take to elect itself and pass serfHealth; a -dev agent needs about
// 0.2 s, a persistent one restarting from its data a few seconds.
const readyTimeout = 60 * time.Second

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// CachePath is where .ci/consul-build leaves the binary: ${XDG_CACHE_HOME:-$HOME/.cache}/glmd-test/consul-<Version>/consul.
func CachePath() string {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "glmd-test", "consul-"+Version, "consul")
}

// RequireConsul returns the consul binary to test against: $CONSUL_BIN, else the cache path of .ci/consul-build.
// Without one it skips the test, or fails it under GLMD_TEST_STRICT=1 (testenv.Skip).
func RequireConsul(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinEnv); p != "" {
		if err := executable(p); err != nil {
			testenv.Skip(t, "test needs consul: %s=%s: %v", BinEnv, p, err)
		}
		return p
	}
	p := CachePath()
	if err := executable(p); err != nil {
		testenv.Skip(t, "test needs consul %s: none at %s and %s is unset: run `make consul` (.ci/consul-build)",
			Version, p, BinEnv)
	}
	return p
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// Options shape the agent Start runs.
type Options struct {
	// Persistent runs `-server -bootstrap-expect 1 -data-dir DIR` instead of -dev, so that the agent keeps its
	// state (KV, sessions, registrations, raft indexes) across Stop and Start. A -dev agent starts empty.
	Persistent bool
	// Node is the Consul node name; default "consultest".
	Node string
}

// Agent is one Consul agent process owned by a test. Its methods fail the test on error; the test's cleanup
// stops it (SIGTERM, SIGKILL after 10 s), also when the test fails, and logs the tail of its output then.
type Agent struct {
	bin  string
	opts Options
	dir  string
	log  string

	http, server, serfLAN, serfWAN int

	// mu guards cmd and exited.
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// Start runs a Consul agent on free loopback ports and returns when it is ready: it has elected a leader and
// its node's serfHealth passes (what creating a session needs).
func Start(t testing.TB, opts Options) *Agent {
	t.Helper()
	bin := RequireConsul(t)
	if opts.Node == "" {
		opts.Node = "consultest"
	}
	a := &Agent{bin: bin, opts: opts, dir: t.TempDir()}
	a.log = filepath.Join(a.dir, "consul.log")
	t.Cleanup(func() {
		a.stop(t)
		if t.Failed() {
			a.logTail(t, 60)
		}
	})
	// Free ports can be taken between choosing and binding: try a few sets.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = a.choosePorts(); err != nil {
			break
		}
		if err = a.launch(); err != nil {
			break
		}
		if err = a.waitReady(); err == nil {
			return a
		}
		a.stop(t)
		if !a.logContains("address already in use") {
			break
		}
	}
	t.Fatalf("consultest: start consul: %v", err)
	return nil
}

// Address is the agent's HTTP API address, "127.0.0.1:PORT".
func (a *Agent) Address() string { return "127.0.0.1:" + strconv.Itoa(a.http) }

// Node is the agent's Consul node name.
func (a *Agent) Node() string { return a.opts.Node }

// Pid is the agent process's pid, 0 when it is not running.
func (a *Agent) Pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// Client returns a consul/api client for the agent; its idle connections are closed when the test ends.
func (a *Agent) Client(t testing.TB) *api.Client {
	t.Helper()
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = a.Address()
	cfg.Token = ""
	tr := cfg.Transport
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("consultest: client: %v", err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// Stop stops the agent (SIGTERM; SIGKILL after 10 s) and waits for it.
func (a *Agent) Stop(t testing.TB) {
	t.Helper()
	a.stop(t)
}

// Start starts the stopped agent again on the same ports (and data, when Persistent) and waits until it is
// ready.
func (a *Agent) Start(t testing.TB) {
	t.Helper()
	if a.Pid() != 0 {
		t.Fatal("consultest: Start: the agent is running")
	}
	if err := a.launch(); err != nil {
		t.Fatalf("consultest: restart consul: %v", err)
	}
	if err := a.waitReady(); err != nil {
		t.Fatalf("consultest: restart consul: %v", err)
	}
}

// Freeze stops the agent with SIGSTOP: it keeps its sockets but answers nothing, like a hung agent.
func (a *Agent) Freeze(t testing.TB) {
	t.Helper()
	a.signal(t, syscall.SIGSTOP)
}

// Thaw resumes a frozen agent with SIGCONT.
func (a *Agent) Thaw(t testing.TB) {
	t.Helper()
	a.signal(t, syscall.SIGCONT)
}

func (a *Agent) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	pid := a.Pid()
	if pid == 0 {
		t.Fatalf("consultest: signal %v: the agent is not running", sig)
	}
	if err := syscall.Kill(-pid, sig); err != nil {
		t.Fatalf("consultest: signal %v to consul's group %d: %v", sig, pid, err)
	}
}

// WaitReady waits until the agent has a leader and its serfHealth passes, e.g. after Thaw.
func (a *Agent) WaitReady(t testing.TB) {
	t.Helper()
	if err := a.waitReady(); err != nil {
		t.Fatalf("consultest: %v", err)
	}
}

func (a *Agent) args() []string {
	args := []string{"agent",
		"-node", a.opts.Node,
		"-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", strconv.Itoa(a.http),
		"-server-port", strconv.Itoa(a.server),
		"-serf-lan-port", strconv.Itoa(a.serfLAN),
		"-serf-wan-port", strconv.Itoa(a.serfWAN),
		"-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1", "-https-port", "-1",
		"-hcl", "disable_update_check = true",
		"-log-level", "debug",
	}
	if a.opts.Persistent {
		return append(args, "-server", "-bootstrap-expect", "1", "-data-dir", filepath.Join(a.dir, "data"),
			"-hcl", "performance { raft_multiplier = 1 }")
	}
	return append(args, "-dev")
}

func (a *Agent) launch() error {
	out, err := os.OpenFile(a.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	fmt.Fprintf(out, "==== consultest: %s %s\n", a.bin, strings.Join(a.args(), " "))
	cmd := exec.Command(a.bin, a.args()...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: signals reach the agent and nothing else, and a test's ^C does not.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "CONSUL_") })
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", a.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	a.mu.Lock()
	a.cmd, a.exited = cmd, exited
	a.mu.Unlock()
	return nil
}

func (a *Agent) stop(t testing.TB) {
	a.mu.Lock()
	cmd, exited := a.cmd, a.exited
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	pid := cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGCONT) // a frozen agent cannot handle SIGTERM
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(stopGrace):
	}
	t.Logf("consultest: consul (pid %d) ignored SIGTERM for %v; killing it", pid, stopGrace)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-exited
}

// waitReady polls until the agent has a raft leader and its serfHealth check passes.
func (a *Agent) waitReady() error {
	a.mu.Lock()
	exited := a.exited
	a.mu.Unlock()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	base := "http://" + a.Address()
	deadline := time.Now().Add(readyTimeout)
	var last error
	for d := 5 * time.Millisecond; ; d = min(2*d, 100*time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("consul exited before it was ready (log: %s)", a.log)
		default:
		}
		if last = a.ready(client, base); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consul not ready after %v: %w", readyTimeout, last)
		}
		time.Sleep(d)
	}
}

func (a *Agent) ready(client *http.Client, base string) error {
	body, err := get(client, base+"/v1/status/leader")
	if err != nil {
		return err
	}
	if strings.Trim(strings.TrimSpace(body), `"`) == "" {
		return errors.New("no raft leader yet")
	}
	body, err = get(client, base+"/v1/health/node/"+a.opts.Node)
	if err != nil {
		return err
	}
	var checks []struct{ CheckID, Status string }
	if err := json.Unmarshal([]byte(body), &checks); err != nil {
		return fmt.Errorf("node health: %w", err)
	}
	for _, c := range checks {
		if c.CheckID == "serfHealth" && c.Status == api.HealthPassing {
			return nil
		}
	}
	return errors.New("serfHealth not passing yet")
}

func get(client *http.Client, url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, b.String())
	}
	return b.String(), nil
}

// choosePorts picks four distinct free loopback ports; the serf ports are free on TCP and UDP.
func (a *Agent) choosePorts() error {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	var ports []int
	for len(ports) < 4 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("choose a port: %w", err)
		}
		closers = append(closers, l.Close)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // taken on UDP: keep the TCP one open so it is not offered again
		}
		closers = append(closers, u.Close)
		ports = append(ports, port)
	}
	a.http, a.server, a.serfLAN, a.serfWAN = ports[0], ports[1], ports[2], ports[3]
	return nil
}

func (a *Agent) logContains(s string) bool {
	b, err := os.ReadFile(a.log)
	return err == nil && strings.Contains(string(b), s)
}

func (a *Agent) logTail(t testing.TB, n int) {
	b, err := os.ReadFile(a.log)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.Logf("consultest: read consul log: %v", err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	t.Logf("consultest: last %d lines of consul's log (%s):\n%s", len(lines), a.log, strings.Join(lines, "\n"))
}
