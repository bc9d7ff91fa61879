package discovery

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/open-autoglm/glmd/internal/consultest"
)

// faultHold is how long each fault lasts: a frozen leader, a frozen or stopped Consul.
const faultHold = 20 * time.Second

// contender is one glmd-like process (this test binary re-executed, see contenderMain).
type contender struct {
	node    string
	cmd     *exec.Cmd
	exited  chan struct{}
	actions string
	log     string
	killed  bool   // the test SIGKILLed it: a non-zero exit is expected
	proxy   *proxy // its path to Consul, when the test partitions it
}

// startContender runs one contender process; with viaProxy its Consul traffic goes through a proxy the test
// can cut.
func startContender(t testing.TB, a *consultest.Agent, dir, node string, checkTTL, lockDelay time.Duration,
	viaProxy bool) *contender {
	t.Helper()
	c := &contender{node: node, actions: filepath.Join(dir, node+".actions"), log: filepath.Join(dir, node+".log"),
		exited: make(chan struct{})}
	addr := a.Address()
	if viaProxy {
		c.proxy = startProxy(t, addr)
		addr = c.proxy.Address()
	}
	cfg, _ := json.Marshal(contenderConfig{Address: addr, Node: node, Actions: c.actions,
		CheckTTL: checkTTL, LockDelay: lockDelay})
	out, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), contenderEnv+"="+string(cfg))
	c.cmd.Stdout, c.cmd.Stderr = out, out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start contender %s: %v", node, err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			logTail(t, c.log, 40)
		}
	})
	return c
}

func (c *contender) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, c.node, err)
	}
}

func (c *contender) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop ends the contender gracefully (SIGTERM; SIGKILL after 10 s) and checks that it exited cleanly.
func (c *contender) stop(t testing.TB) {
	t.Helper()
	if !c.alive() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGCONT)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("contender %s ignored SIGTERM for 10 s; killing it", c.node)
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 && !c.killed {
		t.Errorf("contender %s exited with %v", c.node, c.cmd.ProcessState)
	}
}

func logTail(t testing.TB, path string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("read %s: %v", path, err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	t.Logf("last lines of %s:\n%s", filepath.Base(path), strings.Join(lines, "\n"))
}

// action is one leader action a contender recorded.
type action struct {
	token uint64
	at    time.Time
	node  string
}

// readActions merges the contenders' action files, in time order.
func readActions(t testing.TB, cs []*contender) []action {
	t.Helper()
	var all []action
	for _, c := range cs {
		f, err := os.Open(c.actions)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) != 3 {
				continue // a line cut short by SIGKILL
			}
			token, err1 := strconv.ParseUint(fields[0], 10, 64)
			ns, err2 := strconv.ParseInt(fields[1], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			all = append(all, action{token: token, at: time.Unix(0, ns), node: fields[2]})
		}
		f.Close()
	}
	slices.SortFunc(all, func(a, b action) int { return a.at.Compare(b.at) })
	return all
}

// span is the stretch of time one leadership (one token) acted.
type span struct {
	token       uint64
	node        string
	first, last time.Time
	n           int
}

func spans(actions []action) []span {
	by := map[uint64]*span{}
	var order []uint64
	for _, a := range actions {
		s := by[a.token]
		if s == nil {
			s = &span{token: a.token, node: a.node, first: a.at}
			by[a.token] = s
			order = append(order, a.token)
		}
		s.last, s.n = a.at, s.n+1
		if s.node != a.node {
			s.node += "+" + a.node
		}
	}
	var out []span
	for _, tok := range order {
		out = append(out, *by[tok])
	}
	return out
}

// checkNoOverlap asserts the safety property: no two leaderships ever acted at the same time. Each token's
// actions span [first, last]; the spans of different tokens must not overlap, a token belongs to one node, and
// tokens grow with time (fencing).
func checkNoOverlap(t testing.TB, actions []action) []span {
	t.Helper()
	ss := spans(actions)
	for i, s := range ss {
		if strings.Contains(s.node, "+") {
			t.Errorf("token %d used by several nodes: %s", s.token, s.node)
		}
		for _, p := range ss[:i] {
			if !s.first.After(p.last) {
				t.Errorf("two leaders at once: token %d (%s) acted from %s while token %d (%s) acted until %s (%v overlap)",
					s.token, s.node, s.first.Format("15:04:05.000"), p.token, p.node, p.last.Format("15:04:05.000"),
					p.last.Sub(s.first))
			}
		}
		if i > 0 && s.token <= ss[i-1].token {
			t.Errorf("token went backwards: %d (%s) after %d (%s)", s.token, s.node, ss[i-1].token, ss[i-1].node)
		}
	}
	if t.Failed() || testing.Verbose() {
		for _, s := range ss {
			t.Logf("leadership token %d %s: %s .. %s, %d actions", s.token, s.node, s.first.Format("15:04:05.000"),
				s.last.Format("15:04:05.000"), s.n)
		}
	}
	return ss
}

// faultRun is one fault scenario's world: a Consul agent and three contenders.
type faultRun struct {
	t      *testing.T
	agent  *consultest.Agent
	client *api.Client
	cs     []*contender
	ld     time.Duration
}

func newFaultRun(t *testing.T, persistent, viaProxy bool, checkTTL, lockDelay time.Duration) *faultRun {
	a := consultest.Start(t, consultest.Options{Persistent: persistent})
	r := &faultRun{t: t, agent: a, client: a.Client(t), ld: lockDelay}
	dir := t.TempDir()
	for i := range 3 {
		r.cs = append(r.cs, startContender(t, a, dir, fmt.Sprintf("c%d", i), checkTTL, lockDelay, viaProxy))
	}
	return r
}

// waitActing waits until some leadership accepted by cond has acted at least n times, and returns its span.
func (r *faultRun) waitActing(timeout time.Duration, n int, cond func(span) bool, what string) span {
	r.t.Helper()
	return waitSpan(r.t, r.cs, timeout, n, cond, what)
}

// waitSpan waits until the contenders' actions show a leadership accepted by cond with at least n actions.
func waitSpan(t testing.TB, cs []*contender, timeout time.Duration, n int, cond func(span) bool, what string) span {
	t.Helper()
	var got span
	eventually(t, timeout, func() bool {
		for _, s := range spans(readActions(t, cs)) {
			if s.n >= n && cond(s) {
				got = s
				return true
			}
		}
		return false
	}, "%s", what)
	return got
}

func (r *faultRun) contender(node string) *contender {
	for _, c := range r.cs {
		if c.node == node {
			return c
		}
	}
	r.t.Fatalf("no contender %s", node)
	return nil
}

// checkOutput waits until node's alive check says it is a follower: it has seen, after the fault, that it lost.
func (r *faultRun) waitFollower(node string) {
	r.t.Helper()
	eventually(r.t, 2*wait, func() bool {
		chk := agentCheck(r.t, r.client, "glmd-"+node+":alive")
		return chk != nil && chk.Status == api.HealthPassing && strings.Contains(chk.Output, "follower")
	}, "%s reports itself a follower on its check", node)
}

// TestElection_Faults plays each fault against three contender processes and asserts that another (or the same,
// confirmed) leader acts afterwards and that no two leaderships ever acted at the same time.
func TestElection_Faults(t *testing.T) {
	t.Parallel()
	consultest.RequireConsul(t)
	tests := []struct {
		name       string
		persistent bool
		viaProxy   bool
		lockDelay  time.Duration
		fault      func(r *faultRun, leader span)
	}{
		{name: "leader SIGKILLed", fault: func(r *faultRun, leader span) {
			c := r.contender(leader.node)
			c.killed = true
			c.signal(r.t, syscall.SIGKILL)
			r.waitActing(2*wait, 5, func(s span) bool { return s.token > leader.token && s.node != leader.node },
				"another contender leads after the leader was killed")
		}},
		{name: "leader SIGSTOPped", fault: func(r *faultRun, leader span) {
			c := r.contender(leader.node)
			c.signal(r.t, syscall.SIGSTOP)
			frozen := time.Now()
			r.waitActing(2*wait, 5, func(s span) bool { return s.token > leader.token && s.node != leader.node },
				"another contender leads while the leader is frozen")
			time.Sleep(time.Until(frozen.Add(faultHold))) // the fault's length, not a wait for a condition
			c.signal(r.t, syscall.SIGCONT)
			r.waitFollower(leader.node)
		}},
		{name: "leader partitioned from consul", viaProxy: true, fault: func(r *faultRun, leader span) {
			c := r.contender(leader.node)
			c.proxy.Cut()
			cut := time.Now()
			r.waitActing(2*wait, 5, func(s span) bool { return s.token > leader.token && s.node != leader.node },
				"another contender leads while the leader is cut off")
			time.Sleep(time.Until(cut.Add(faultHold)))
			c.proxy.Heal()
			r.waitFollower(leader.node)
		}},
		{name: "consul frozen", fault: func(r *faultRun, leader span) {
			r.agent.Freeze(r.t)
			frozen := time.Now()
			time.Sleep(faultHold)
			r.agent.Thaw(r.t)
			thawed := time.Now()
			r.waitActing(2*wait, 5, func(s span) bool { return s.last.After(thawed) }, "a leader acts after consul thawed")
			// Nobody can confirm a lease while Consul is frozen: every leader must have stopped within its lease.
			quiet := frozen.Add(r.ld + time.Second)
			for _, a := range readActions(r.t, r.cs) {
				if a.at.After(quiet) && a.at.Before(thawed) {
					r.t.Errorf("%s acted at %s with token %d while consul was frozen (since %s)", a.node,
						a.at.Format("15:04:05.000"), a.token, frozen.Format("15:04:05.000"))
					break
				}
			}
		}},
		{name: "session invalidated by an operator", fault: func(r *faultRun, leader span) {
			session, _ := leaderOf(r.t, r.client, DefaultKVPrefix)
			if _, err := r.client.Session().Destroy(session, nil); err != nil {
				r.t.Fatal(err)
			}
			r.waitActing(2*wait, 5, func(s span) bool { return s.token > leader.token }, "a new leadership after the invalidation")
		}},
		{name: "consul stopped and restarted", persistent: true, fault: func(r *faultRun, leader span) {
			r.agent.Stop(r.t)
			time.Sleep(faultHold)
			r.agent.Start(r.t)
			back := time.Now()
			r.waitActing(2*wait, 5, func(s span) bool { return s.last.After(back) }, "a leader acts after consul restarted")
			// Every contender kept running and registered itself again: three glmd services, three web
			// instances, all passing.
			eventually(r.t, 2*wait, func() bool {
				g, w := catalogService(r.t, r.client, "glmd"), catalogService(r.t, r.client, "web")
				return len(g) == 3 && len(w) == 3 && allPassing(g) && allPassing(w)
			}, "all registrations back and passing")
			for _, c := range r.cs {
				if !c.alive() {
					r.t.Errorf("contender %s exited during the consul outage", c.node)
				}
			}
		}},
		{name: "leader stops gracefully", lockDelay: 5 * time.Second, fault: func(r *faultRun, leader span) {
			r.contender(leader.node).stop(r.t)
			next := r.waitActing(2*wait, 1, func(s span) bool { return s.token > leader.token }, "a new leader after a graceful stop")
			// Released, not invalidated: the successor did not wait out the lock delay.
			final := spans(readActions(r.t, r.cs))
			old := final[slices.IndexFunc(final, func(s span) bool { return s.token == leader.token })]
			if gap := next.first.Sub(old.last); gap >= r.ld {
				r.t.Errorf("graceful hand-over took %v, not below the lock delay %v: the lock was not released", gap, r.ld)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ld := tc.lockDelay
			if ld == 0 {
				ld = DefaultLockDelay
			}
			r := newFaultRun(t, tc.persistent, tc.viaProxy, DefaultCheckTTL, ld)
			leader := r.waitActing(2*wait, 10, func(span) bool { return true }, "a leader acts")
			tc.fault(r, leader)
			// Let the new state run a little, then stop everyone and judge the whole history.
			last := readActions(t, r.cs)
			r.waitActing(2*wait, 1, func(s span) bool { return s.last.After(last[len(last)-1].at.Add(200 * time.Millisecond)) },
				"leader actions continue")
			for _, c := range r.cs {
				c.stop(t)
			}
			checkNoOverlap(t, readActions(t, r.cs))
		})
	}
}

func allPassing(es []*api.ServiceEntry) bool {
	for _, e := range es {
		if e.Checks.AggregatedStatus() != api.HealthPassing {
			return false
		}
	}
	return true
}

// TestCheckNoOverlap: the judge itself must catch overlaps, shared tokens and tokens that go backwards.
func TestCheckNoOverlap(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(1000, int64(ms)*int64(time.Millisecond)) }
	tests := []struct {
		name    string
		actions []action
		bad     bool
	}{
		{"hand-over", []action{{5, at(0), "a"}, {5, at(100), "a"}, {9, at(150), "b"}, {9, at(300), "b"}}, false},
		{"overlap", []action{{5, at(0), "a"}, {9, at(50), "b"}, {5, at(100), "a"}}, true},
		{"token shared", []action{{5, at(0), "a"}, {5, at(100), "b"}}, true},
		{"token backwards", []action{{9, at(0), "a"}, {5, at(100), "b"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeT{TB: t}
			checkNoOverlap(ft, tc.actions)
			if ft.failed != tc.bad {
				t.Errorf("judged bad=%v, want %v", ft.failed, tc.bad)
			}
		})
	}
}

// fakeT records failures instead of failing.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Failed() bool          { return f.failed }
func (f *fakeT) Logf(string, ...any)   {}
func (f *fakeT) Helper()               {}
