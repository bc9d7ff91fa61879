package health

import (
	"strings"
	"testing"
	"time"
)

// step is one event fed to a Tracker: a result of role's check at a time
// since the process start, and the verdict it must give.
type step struct {
	at      time.Duration
	role    string
	outcome Outcome // of the result
	want    string  // "" (no verdict), "ready", "not ready" or "unhealthy"
	msg     string  // substring of the verdict's message
}

// probeMsg is the message of every result in the tracker tests.
const probeMsg = "GET http://127.0.0.1:8000/health: x"

func TestTracker(t *testing.T) {
	startup := validCheck(RoleStartup, TypeHTTP) // start period 10m
	startup.StartPeriod = time.Minute
	live := validCheck(RoleLiveness, TypeHTTP) // failure threshold 3
	ready := validCheck(RoleReadiness, TypeHTTP)
	ready.SuccessThreshold, ready.FailureThreshold = 2, 3
	const (
		S = OutcomeSuccess
		F = OutcomeFailure
		T = OutcomeTimeout
		E = OutcomeError
		L = RoleLiveness
		R = RoleReadiness
		U = RoleStartup
	)
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	for _, tc := range []struct {
		name         string
		checks       []Check
		initialReady bool
		initialMsg   string
		steps        []step
	}{
		{name: "no checks: ready at once", initialReady: true, initialMsg: "no health checks"},
		{
			name:   "liveness only: ready at once, unhealthy after 3 failures in a row",
			checks: []Check{live}, initialReady: true, initialMsg: "no startup or readiness check",
			steps: []step{
				{at: sec(1), role: L, outcome: S},
				{at: sec(2), role: L, outcome: F},
				{at: sec(3), role: L, outcome: T},
				{at: sec(4), role: L, outcome: S}, // resets the count
				{at: sec(5), role: L, outcome: F},
				{at: sec(6), role: L, outcome: E},
				{at: sec(7), role: L, outcome: F, want: "unhealthy", msg: "liveness: " + probeMsg + " (3/3)"},
				{at: sec(8), role: L, outcome: F}, // done: one verdict only
				{at: sec(9), role: L, outcome: S},
			},
		},
		{
			name:   "startup gates liveness and readiness",
			checks: []Check{startup, live, ready}, initialMsg: "startup: not passed yet (start_period 1m0s)",
			steps: []step{
				// Results of gated checks are ignored: no unhealthy, no ready.
				{at: sec(1), role: L, outcome: F},
				{at: sec(2), role: L, outcome: F},
				{at: sec(3), role: L, outcome: F},
				{at: sec(4), role: R, outcome: S},
				{at: sec(5), role: R, outcome: S},
				// Failures within the start period do not count (the failure
				// threshold is 3).
				{at: sec(10), role: U, outcome: F},
				{at: sec(20), role: U, outcome: F},
				{at: sec(30), role: U, outcome: F},
				{at: sec(40), role: U, outcome: F},
				{at: sec(50), role: U, outcome: S}, // passed; readiness decides now
				{at: sec(51), role: U, outcome: F}, // startup is not probed any more
				{at: sec(52), role: R, outcome: S},
				{at: sec(53), role: R, outcome: S, want: "ready", msg: "readiness: " + probeMsg + " (2/2)"},
				{at: sec(62), role: L, outcome: F},
				{at: sec(63), role: L, outcome: F},
				{at: sec(64), role: L, outcome: F, want: "unhealthy", msg: "(3/3)"},
			},
		},
		{
			name:   "startup passes: ready without readiness check",
			checks: []Check{startup, live},
			steps: []step{
				{at: sec(10), role: U, outcome: F},
				{at: sec(20), role: U, outcome: T},
				{at: sec(30), role: U, outcome: S, want: "ready", msg: "startup: passed after 3 tries in 30s: " + probeMsg},
			},
		},
		{
			name:   "startup failures count only after the start period",
			checks: []Check{startup, live},
			steps: []step{
				{at: sec(10), role: U, outcome: F},
				{at: sec(20), role: U, outcome: F},
				{at: sec(30), role: U, outcome: F},
				{at: sec(59), role: U, outcome: F}, // still inside the minute: 0 counted
				{at: sec(61), role: U, outcome: F},
				{at: sec(71), role: U, outcome: T},
				{at: sec(81), role: U, outcome: F, want: "unhealthy",
					msg: "startup: not passed within the start period of 1m0s and 3 failures after it: " + probeMsg + " (7 tries)"},
				{at: sec(91), role: U, outcome: S}, // done: too late
			},
		},
		{
			name:   "a success after the start period still passes startup",
			checks: []Check{startup},
			steps: []step{
				{at: sec(61), role: U, outcome: F},
				{at: sec(62), role: U, outcome: F},
				{at: sec(63), role: U, outcome: S, want: "ready", msg: "startup: passed after 3 tries in 1m3s"},
			},
		},
		{
			name: "start period 0: the failure threshold from the first probe (Kubernetes' startup budget)",
			checks: []Check{func() Check {
				c := startup
				c.StartPeriod = 0
				return c
			}()},
			steps: []step{
				{at: sec(10), role: U, outcome: F},
				{at: sec(20), role: U, outcome: F},
				{at: sec(30), role: U, outcome: F, want: "unhealthy", msg: "3 failures after it"},
			},
		},
		{
			name:   "readiness flips both ways, never unhealthy",
			checks: []Check{ready}, initialMsg: "readiness: not passed yet",
			steps: []step{
				{at: sec(1), role: R, outcome: F}, // not ready already: no verdict
				{at: sec(2), role: R, outcome: F},
				{at: sec(3), role: R, outcome: F},
				{at: sec(4), role: R, outcome: F},
				{at: sec(5), role: R, outcome: S},
				{at: sec(6), role: R, outcome: S, want: "ready", msg: "(2/2)"},
				{at: sec(7), role: R, outcome: F},
				{at: sec(8), role: R, outcome: F},
				{at: sec(9), role: R, outcome: S}, // resets the failures
				{at: sec(10), role: R, outcome: F},
				{at: sec(11), role: R, outcome: T},
				{at: sec(12), role: R, outcome: E, want: "not ready", msg: "readiness: " + probeMsg + " (3/3)"},
				{at: sec(13), role: R, outcome: S},
				{at: sec(14), role: R, outcome: F}, // resets the successes
				{at: sec(15), role: R, outcome: S},
				{at: sec(16), role: R, outcome: S, want: "ready"},
				{at: sec(17), role: R, outcome: S},
			},
		},
		{
			name:   "liveness failure makes a ready instance unhealthy and not ready",
			checks: []Check{live, ready},
			steps: []step{
				{at: sec(1), role: R, outcome: S},
				{at: sec(2), role: R, outcome: S, want: "ready"},
				{at: sec(3), role: L, outcome: F},
				{at: sec(4), role: L, outcome: F},
				{at: sec(5), role: L, outcome: F, want: "unhealthy"},
				{at: sec(6), role: R, outcome: S},
			},
		},
		{
			name:         "failure threshold 1",
			checks:       []Check{func() Check { c := live; c.FailureThreshold = 1; return c }()},
			initialReady: true,
			steps: []step{
				{at: sec(1), role: L, outcome: S},
				{at: sec(2), role: L, outcome: T, want: "unhealthy", msg: "(1/1)"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			tr := NewTracker(tc.checks, start)
			v := tr.Verdict()
			if v.Ready != tc.initialReady || v.Unhealthy {
				t.Fatalf("initial verdict %+v, want ready=%v", v, tc.initialReady)
			}
			if tc.initialMsg != "" && v.Message != tc.initialMsg {
				t.Errorf("initial message %q, want %q", v.Message, tc.initialMsg)
			}
			for i, s := range tc.steps {
				now := start.Add(s.at)
				var send bool
				v, send = tr.Observe(now, s.role, Result{Outcome: s.outcome, Message: probeMsg})
				got := ""
				switch {
				case send && v.Unhealthy:
					got = "unhealthy"
				case send && v.Ready:
					got = "ready"
				case send:
					got = "not ready"
				}
				if got != s.want {
					t.Fatalf("step %d (%s %s at %s): verdict %q %+v, want %q", i, s.role, s.outcome, s.at, got, v, s.want)
				}
				if s.msg != "" && !strings.Contains(v.Message, s.msg) {
					t.Fatalf("step %d: message %q, want it to contain %q", i, v.Message, s.msg)
				}
				if send && v != tr.Verdict() {
					t.Fatalf("step %d: sent %+v, but Verdict says %+v", i, v, tr.Verdict())
				}
			}
		})
	}
}

func TestTracker_Probing(t *testing.T) {
	start := time.Unix(0, 0)
	startup := validCheck(RoleStartup, TypeTCP)
	checks := []Check{startup, validCheck(RoleLiveness, TypeTCP), validCheck(RoleReadiness, TypeTCP)}
	tr := NewTracker(checks, start)
	probing := func() [3]bool {
		return [3]bool{tr.Probing(RoleStartup), tr.Probing(RoleLiveness), tr.Probing(RoleReadiness)}
	}
	if got := probing(); got != [3]bool{true, false, false} {
		t.Fatalf("before startup passed: probing %v, want startup only", got)
	}
	tr.Observe(start.Add(time.Second), RoleStartup, Result{Outcome: OutcomeSuccess})
	if got := probing(); got != [3]bool{false, true, true} {
		t.Fatalf("after startup passed: probing %v, want liveness and readiness", got)
	}
	for range 3 {
		tr.Observe(start.Add(2*time.Second), RoleLiveness, Result{Outcome: OutcomeFailure})
	}
	if got := probing(); got != [3]bool{} || !tr.Done() {
		t.Fatalf("after unhealthy: probing %v, done %v; want nothing probed, done", got, tr.Done())
	}

	none := NewTracker(nil, start)
	if none.Probing(RoleStartup) || none.Probing(RoleLiveness) || none.Probing(RoleReadiness) {
		t.Fatal("a tracker without checks probes something")
	}
}

func TestTracker_ConsecutiveFailures(t *testing.T) {
	start := time.Unix(0, 0)
	c := validCheck(RoleReadiness, TypeTCP)
	c.FailureThreshold = 5
	tr := NewTracker([]Check{c}, start)
	for i, o := range []Outcome{OutcomeFailure, OutcomeTimeout, OutcomeSuccess, OutcomeError} {
		tr.Observe(start.Add(time.Duration(i)*time.Second), RoleReadiness, Result{Outcome: o})
	}
	if got := tr.ConsecutiveFailures(RoleReadiness); got != 1 {
		t.Fatalf("ConsecutiveFailures = %d after F T S E, want 1", got)
	}
	if got := tr.ConsecutiveFailures(RoleLiveness); got != 0 {
		t.Fatalf("ConsecutiveFailures of a missing check = %d", got)
	}
}
