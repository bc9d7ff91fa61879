package health

import (
	"fmt"
	"time"

	"github.com/open-autoglm/glmd/supervisor"
)

// Tracker applies Kubernetes' probe rules to the results of one process's
// checks. It holds no timers, locks or clock: the time of each result comes
// in as an argument, so that its rules are table-tested.
//
//   - Startup gates the others: until it passes, liveness and readiness are
//     not probed and the instance is not ready. Its failures within
//     StartPeriod of the process start do not count (a model server loads
//     its weights); after that, FailureThreshold failures in a row make the
//     instance unhealthy (Docker's start period; Kubernetes' startup budget
//     is the case StartPeriod = 0).
//   - Liveness: FailureThreshold failures in a row make the instance
//     unhealthy; a success resets the count.
//   - Readiness: SuccessThreshold successes in a row make the instance
//     ready, FailureThreshold failures in a row make it not ready.
//   - Without a readiness check the instance is ready once startup passed,
//     or at once without a startup check.
//   - After the unhealthy verdict the tracker is done: it ignores further
//     results, and nothing needs probing any more.
type Tracker struct {
	start time.Time
	// checks by role; nil where the instance has no such check.
	startup, liveness, readiness *checkState

	startupPassed bool
	ready         bool
	unhealthy     bool
	message       string // the last verdict's
}

// checkState is what the tracker remembers of one check.
type checkState struct {
	check     Check
	successes int // in a row
	failures  int // in a row
	tries     int
	last      Result
}

// NewTracker returns the tracker of a process started at start, for checks
// that passed Validate.
func NewTracker(checks []Check, start time.Time) *Tracker {
	t := &Tracker{start: start}
	for _, c := range checks {
		cs := &checkState{check: c}
		switch c.Role {
		case RoleStartup:
			t.startup = cs
		case RoleLiveness:
			t.liveness = cs
		case RoleReadiness:
			t.readiness = cs
		}
	}
	t.startupPassed = t.startup == nil
	t.ready = t.startup == nil && t.readiness == nil
	switch {
	case len(checks) == 0:
		t.message = "no health checks"
	case t.startup != nil:
		t.message = fmt.Sprintf("startup: not passed yet (start_period %s)", t.startup.check.StartPeriod)
	case t.readiness != nil:
		t.message = "readiness: not passed yet"
	default:
		t.message = "no startup or readiness check"
	}
	return t
}

// Verdict is the current verdict. A monitor sends it first, as soon as the
// process starts: Ready is true at once only without startup and readiness
// checks.
func (t *Tracker) Verdict() supervisor.Verdict {
	return supervisor.Verdict{Ready: t.ready, Unhealthy: t.unhealthy, Message: t.message}
}

// Probing says whether the check of role is to be probed now: it exists,
// the tracker is not done, and startup gating allows it.
func (t *Tracker) Probing(role string) bool {
	cs := t.state(role)
	if cs == nil || t.unhealthy {
		return false
	}
	if role == RoleStartup {
		return !t.startupPassed
	}
	return t.startupPassed
}

// Done says whether the tracker gave the unhealthy verdict: the process is
// about to be stopped, and nothing is probed any more.
func (t *Tracker) Done() bool { return t.unhealthy }

// ConsecutiveFailures is the number of failures in a row of the check of
// role (0 without one).
func (t *Tracker) ConsecutiveFailures(role string) int {
	if cs := t.state(role); cs != nil {
		return cs.failures
	}
	return 0
}

// Observe records the result r of the check of role, which finished at now,
// and returns the verdict to send, if any: send is true when readiness
// changed or the instance became unhealthy. Results of checks that are not
// being probed (see Probing) are ignored.
func (t *Tracker) Observe(now time.Time, role string, r Result) (v supervisor.Verdict, send bool) {
	if !t.Probing(role) {
		return supervisor.Verdict{}, false
	}
	cs := t.state(role)
	cs.tries++
	cs.last = r
	if r.OK() {
		cs.successes++
		cs.failures = 0
	} else {
		cs.failures++
		cs.successes = 0
	}
	c := &cs.check
	switch role {
	case RoleStartup:
		if !r.OK() {
			if now.Before(t.start.Add(c.StartPeriod)) {
				cs.failures = 0 // within the start period failures do not count
				return supervisor.Verdict{}, false
			}
			if cs.failures < c.FailureThreshold {
				return supervisor.Verdict{}, false
			}
			return t.fail(fmt.Sprintf("startup: not passed within the start period of %s and %d failures after it: %s (%d tries)",
				c.StartPeriod, cs.failures, r.Message, cs.tries)), true
		}
		t.startupPassed = true
		if t.readiness != nil {
			// Readiness decides from now on; the instance stays not ready
			// until it passes.
			return supervisor.Verdict{}, false
		}
		return t.setReady(true, fmt.Sprintf("startup: passed after %d tries in %s: %s",
			cs.tries, now.Sub(t.start).Round(time.Millisecond), r.Message)), true
	case RoleLiveness:
		if cs.failures < c.FailureThreshold {
			return supervisor.Verdict{}, false
		}
		return t.fail(fmt.Sprintf("liveness: %s (%d/%d)", r.Message, cs.failures, c.FailureThreshold)), true
	case RoleReadiness:
		switch {
		case !t.ready && cs.successes >= c.SuccessThreshold:
			return t.setReady(true, fmt.Sprintf("readiness: %s (%d/%d)", r.Message, cs.successes, c.SuccessThreshold)), true
		case t.ready && cs.failures >= c.FailureThreshold:
			return t.setReady(false, fmt.Sprintf("readiness: %s (%d/%d)", r.Message, cs.failures, c.FailureThreshold)), true
		}
	}
	return supervisor.Verdict{}, false
}

func (t *Tracker) setReady(ready bool, msg string) supervisor.Verdict {
	t.ready, t.message = ready, msg
	return t.Verdict()
}

// fail makes the tracker done with the unhealthy verdict; an instance about
// to be restarted is not ready either.
func (t *Tracker) fail(msg string) supervisor.Verdict {
	t.unhealthy, t.ready, t.message = true, false, msg
	return t.Verdict()
}

func (t *Tracker) state(role string) *checkState {
	switch role {
	case RoleStartup:
		return t.startup
	case RoleLiveness:
		return t.liveness
	case RoleReadiness:
		return t.readiness
	}
	return nil
}
