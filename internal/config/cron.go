package config

import (
	"maps"
	"slices"
	"time"

	"github.com/open-autoglm/glmd/internal/cron"
)

// Cron is what a task of kind "cron" adds: when it runs and what happens
// around each run. Everything else (command, user, env, resources, gpu,
// logs) is as for other tasks.
type Cron struct {
	Schedule string // cron expression or descriptor, checked by ParseSchedule
	Timezone string // IANA zone the schedule is read in; "" = the agent's [cron] timezone
	// Concurrency says what a due run does while the previous one is
	// still active: CronForbid (skip it), CronReplace, CronAllow.
	Concurrency      string
	StartingDeadline time.Duration // a run missed by more than this is skipped; 0 = the default
	Jitter           time.Duration // random delay up to this before each scheduled run
	Timeout          time.Duration // a run longer than this is killed (reason "timeout"); 0 = none
	Retry            Retry
	Suspend          bool   // no scheduled runs; `glmctl run` still works
	History          int    // runs kept in the history
	Scope            string // CronNode or CronFleet
}

// Retry is a cron task's [retry] table: a failed run is tried again.
type Retry struct {
	Attempts int           // how many times a failed run is tried again; 0 = never (2: at most 3 attempts)
	Delay    time.Duration // before the second try; doubles each time, with jitter
	MaxDelay time.Duration
}

// Values of the cron keys.
const (
	CronForbid  = "forbid"
	CronReplace = "replace"
	CronAllow   = "allow"
	CronNode    = "node"
	CronFleet   = "fleet"
)

// Defaults of a cron task, shared with docs/tasks.md; internal/cron
// explains them.
const (
	DefaultCronHistory      = cron.DefaultHistory
	DefaultRetryDelay       = cron.DefaultRetryDelay
	DefaultRetryMaxDelay    = cron.DefaultRetryMaxDelay
	DefaultStartingDeadline = cron.DefaultStartingDeadline
	maxCronHistory          = cron.MaxHistory
	maxRetryAttempts        = 100
)

// cronKeys are the top-level keys that only kind = "cron" may use.
var cronKeys = []string{"schedule", "timezone", "concurrency", "starting_deadline", "jitter", "timeout", "suspend", "history", "scope", "retry"}

// plainTaskKeys is the task schema without the cron keys, for the hints
// given when a task of another kind uses one.
var plainTaskKeys = func() *keySet {
	ks := *taskKeys
	ks.keys = maps.Clone(taskKeys.keys)
	for _, k := range cronKeys {
		delete(ks.keys, k)
	}
	return &ks
}()

func (f *taskFile) decodeCron() {
	c := &f.t.Cron
	if s, ok := f.str("schedule"); ok {
		c.Schedule = s
	}
	if s, ok := f.str("timezone"); ok {
		c.Timezone = s
	}
	if s, ok := f.str("concurrency"); ok {
		c.Concurrency = s
	}
	if d, ok := f.duration("starting_deadline"); ok {
		c.StartingDeadline = d
	}
	if d, ok := f.duration("jitter"); ok {
		c.Jitter = d
	}
	if d, ok := f.duration("timeout"); ok {
		c.Timeout = d
	}
	if b, ok := f.boolean("suspend"); ok {
		c.Suspend = b
	}
	if n, ok := f.integer("history"); ok {
		c.History = n
	}
	if s, ok := f.str("scope"); ok {
		c.Scope = s
	}
	if _, ok := f.table("retry"); ok {
		if n, ok := f.integer("retry", "attempts"); ok {
			c.Retry.Attempts = n
		}
		if d, ok := f.duration("retry", "delay"); ok {
			c.Retry.Delay = d
		}
		if d, ok := f.duration("retry", "max_delay"); ok {
			c.Retry.MaxDelay = d
		}
	}
}

func (f *taskFile) defaultCron() {
	if f.t.Kind != KindCron {
		return
	}
	c := &f.t.Cron
	set := func(key string) bool { return f.given[key] }
	if !set("concurrency") {
		c.Concurrency = CronForbid
	}
	if !set("starting_deadline") {
		c.StartingDeadline = DefaultStartingDeadline
	}
	if !set("history") {
		c.History = DefaultCronHistory
	}
	if !set("scope") {
		c.Scope = CronNode
	}
	if !set("retry.delay") {
		c.Retry.Delay = DefaultRetryDelay
	}
	if !set("retry.max_delay") {
		c.Retry.MaxDelay = DefaultRetryMaxDelay
	}
	// A run is not restarted by the supervisor: [retry] decides.
	if !set("restart.policy") {
		f.t.Restart.Policy = RestartNever
	}
}

// Location returns the time zone a cron task's schedule is read in:
// its timezone, else def (the agent's [cron] timezone), else UTC.
func (c Cron) Location(def *time.Location) (*time.Location, error) {
	if c.Timezone == "" {
		if def == nil {
			return time.UTC, nil
		}
		return def, nil
	}
	return LoadZone(c.Timezone)
}

// LoadZone loads an IANA time zone with an error an operator can act on.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	return cron.ValidateZone(name)
}

func (f *taskFile) validateCron() {
	t := &f.t
	c := &t.Cron
	given := func(key string) bool { return f.given[key] }
	if t.Kind != KindCron {
		for _, k := range cronKeys {
			if !given(k) || !f.ok(k) {
				continue
			}
			// timeout at the top of a service is most likely stop.timeout.
			if hint := keyHint(plainTaskKeys, plainTaskKeys, "", k); hint != "" {
				f.errorAt(k, "", &unknownKeyError{key: k, hint: hint})
				continue
			}
			f.errorf(k, "is for scheduled tasks only (set kind = \"cron\")")
		}
		return
	}
	if !given("schedule") {
		if f.ok("schedule") {
			f.errorf("schedule", `missing: when the task runs, e.g. schedule = "0 3 * * *" (03:00 daily) or "@hourly"`)
		}
	} else if f.ok("schedule") {
		loc := time.UTC
		if given("timezone") && f.ok("timezone") {
			l, err := LoadZone(c.Timezone)
			if err != nil {
				f.errorAt("timezone", "timezone", err)
			} else {
				loc = l
			}
		}
		sched, err := cron.Parse(c.Schedule, loc)
		if err != nil {
			f.errorAt("schedule", "schedule", err)
		} else if given("jitter") && f.ok("jitter") && c.Jitter > 0 {
			// cron's own check: a jitter as long as the time between two runs
			// would make every run late enough to count as missed.
			if err := (cron.Spec{Schedule: sched, Jitter: c.Jitter}).Validate(); err != nil {
				f.errorAt("jitter", "", err)
			}
		}
	}
	if given("concurrency") && !slices.Contains([]string{CronForbid, CronReplace, CronAllow}, c.Concurrency) {
		f.errorf("concurrency", "%q is not a concurrency policy (use \"forbid\", \"replace\" or \"allow\")", c.Concurrency)
	}
	if given("scope") && c.Scope != CronNode && c.Scope != CronFleet {
		f.errorf("scope", "%q is not a scope (use \"node\": run on every node with the file, or \"fleet\": once in the fleet)", c.Scope)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"starting_deadline", c.StartingDeadline}, {"jitter", c.Jitter}, {"timeout", c.Timeout},
		{"retry.delay", c.Retry.Delay}, {"retry.max_delay", c.Retry.MaxDelay},
	} {
		if given(d.key) && d.v < 0 {
			f.errorf(d.key, "must not be negative")
		}
	}
	if given("history") && (c.History < 1 || c.History > maxCronHistory) {
		f.errorf("history", "%d is out of range (1 to %d)", c.History, maxCronHistory)
	}
	if given("retry.attempts") && (c.Retry.Attempts < 0 || c.Retry.Attempts > maxRetryAttempts) {
		f.errorf("retry.attempts", "%d is out of range (0 to %d: how many times a failed run is tried again)", c.Retry.Attempts, maxRetryAttempts)
	}
	if c.Retry.MaxDelay < c.Retry.Delay && f.ok("retry.max_delay") && f.ok("retry.delay") {
		f.errorf("retry.max_delay", "%s is below retry.delay %s", c.Retry.MaxDelay, c.Retry.Delay)
	}
	if given("instances") && t.Instances != 1 && f.ok("instances") {
		f.errorf("instances", "a scheduled task runs one process per run; instances must be 1 (use concurrency = \"allow\" for overlapping runs)")
	}
	for _, k := range []string{"restart.delay", "restart.max_delay", "restart.limit", "restart.window", "restart.min_uptime"} {
		if given(k) {
			f.errorf(k, "does not apply to scheduled tasks: a failed run is tried again per [retry] (attempts, delay, max_delay)")
		}
	}
	if given("restart.policy") && t.Restart.Policy != RestartNever {
		f.errorf("restart.policy", "does not apply to scheduled tasks: a failed run is tried again per [retry]")
	}
}
