package cron_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	_ "time/tzdata"

	"github.com/open-autoglm/glmd/internal/cron"
	"github.com/open-autoglm/glmd/internal/cron/crontest"
)

const layout = "2006-01-02 15:04:05 -0700"

// fakeStarter records the attempts it is asked to start; the test ends them.
type fakeStarter struct {
	clock *crontest.Clock

	mu       sync.Mutex // guards the fields below
	runs     []*fakeRun
	startErr func(cron.Run) error        // when it returns an error, the start fails
	auto     func(cron.Run) *cron.Result // when it returns a result, the attempt ends with it at once
}

func (s *fakeStarter) StartRun(_ context.Context, r cron.Run) (cron.Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fr := &fakeRun{run: r, at: s.clock.Now(), done: make(chan cron.Result, 1), killOnStop: true}
	if s.startErr != nil {
		if err := s.startErr(r); err != nil {
			fr.startErr = err
			s.runs = append(s.runs, fr)
			return nil, err
		}
	}
	if s.auto != nil {
		if res := s.auto(r); res != nil {
			fr.end(*res)
		}
	}
	s.runs = append(s.runs, fr)
	return fr, nil
}

// started returns the attempts asked for so far (failed starts included).
func (s *fakeStarter) started() []*fakeRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.runs)
}

func (s *fakeStarter) last(t *testing.T) *fakeRun {
	t.Helper()
	runs := s.started()
	if len(runs) == 0 {
		t.Fatal("no run started")
	}
	return runs[len(runs)-1]
}

type fakeRun struct {
	run        cron.Run
	at         time.Time // clock time of the start
	startErr   error
	done       chan cron.Result
	killOnStop bool // Stop ends the attempt with SIGKILL, as the agent's cgroup kill

	mu    sync.Mutex
	stops []string
	ended bool
}

func (r *fakeRun) Logs() cron.Logs {
	base := fmt.Sprintf("logs/%d.%d", r.run.ID, r.run.Attempt)
	return cron.Logs{Stdout: base + ".stdout.log", Stderr: base + ".stderr.log"}
}

func (r *fakeRun) Done() <-chan cron.Result { return r.done }

func (r *fakeRun) Stop(reason string) {
	r.mu.Lock()
	r.stops = append(r.stops, reason)
	r.mu.Unlock()
	if r.killOnStop {
		r.end(cron.Result{ExitCode: 137, Signal: "SIGKILL"})
	}
}

func (r *fakeRun) end(res cron.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ended {
		r.ended = true
		r.done <- res
	}
}

func (r *fakeRun) stopReasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.stops)
}

// harness runs a Job on a fake clock inside a synctest bubble: after each step, synctest.Wait returns once the Job
// has done everything the step caused.
type harness struct {
	t     *testing.T
	clock *crontest.Clock
	st    *fakeStarter
	hist  *cron.History
	job   *cron.Job

	mu     sync.Mutex
	events []cron.Event

	cancel context.CancelFunc
	done   chan error
}

var success = &cron.Result{}

// newHarness makes a Job for task "export" at the clock's time now, with its history in dir ("" for a new one).
func newHarness(t *testing.T, now time.Time, spec cron.Spec, dir string) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	clock := crontest.NewClock(now)
	h := &harness{t: t, clock: clock, st: &fakeStarter{clock: clock}, hist: cron.NewHistory(dir)}
	job, err := cron.New(cron.Options{
		Task:    "export",
		Spec:    spec,
		Starter: h.st,
		History: h.hist,
		Clock:   clock,
		Rand:    rand.New(rand.NewPCG(1, 2)),
		Log:     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent: func(e cron.Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.job = job
	return h
}

// run starts the Job's loop; it is stopped at the end of the test.
func (h *harness) run() *harness {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.job.Run(ctx) }()
	h.t.Cleanup(h.stop)
	synctest.Wait()
	return h
}

// stop cancels Run (glmd stopping) and waits for it; active runs are left alone.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.cancel = nil
}

// stepTo moves the clock to t through every timer deadline on the way, as real time would pass.
func (h *harness) stepTo(t time.Time) {
	h.t.Helper()
	for {
		synctest.Wait()
		d, ok := h.clock.NextDeadline()
		if !ok || d.After(t) {
			break
		}
		h.clock.Set(d)
	}
	h.clock.Set(t)
	synctest.Wait()
}

func (h *harness) step(d time.Duration) { h.stepTo(h.clock.Now().Add(d)) }

func (h *harness) eventKinds() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, fmt.Sprintf("%s %d.%d", e.Kind, e.Record.ID, e.Record.Attempt))
	}
	return out
}

func (h *harness) history() cron.TaskHistory {
	h.t.Helper()
	th, err := h.hist.Read("export")
	if err != nil {
		h.t.Fatal(err)
	}
	return th
}

// records summarises the history as "id.attempt trigger reason" lines.
func (h *harness) records() []string {
	var out []string
	for _, r := range h.history().Runs {
		reason := string(r.Reason)
		if r.Active() {
			reason = "active"
		}
		out = append(out, fmt.Sprintf("%d.%d %s %s", r.ID, r.Attempt, r.Trigger, reason))
	}
	return out
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := cron.ValidateZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func sched(t *testing.T, expr string, loc *time.Location) cron.Schedule {
	t.Helper()
	s, err := cron.Parse(expr, loc)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(layout, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func equal[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}
