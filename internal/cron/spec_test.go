package cron

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestSpec_Validate(t *testing.T) {
	s, err := Parse("@daily", nil)
	if err != nil {
		t.Fatal(err)
	}
	good := Spec{Schedule: s}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		mutate func(*Spec)
		want   string
	}{
		{func(s *Spec) { s.Schedule = Schedule{} }, "schedule is required"},
		{func(s *Spec) { s.Concurrency = "parallel" }, `concurrency "parallel": want "forbid"`},
		{func(s *Spec) { s.Timeout = -time.Second }, "timeout -1s: must not be negative"},
		{func(s *Spec) { s.Jitter = -time.Second }, "jitter -1s"},
		{func(s *Spec) { s.StartingDeadline = -time.Second }, "starting_deadline -1s"},
		{func(s *Spec) { s.Retry.Attempts = -1 }, "retry.attempts -1"},
		{func(s *Spec) { s.Retry.Delay, s.Retry.MaxDelay = time.Minute, time.Second }, "retry.max_delay 1s is less than retry.delay 1m0s"},
		{func(s *Spec) { s.History = MaxHistory + 1 }, "history 1001: want 1 to 1000 runs"},
		{func(s *Spec) { s.Schedule, _ = Parse("*/5 * * * *", nil); s.Jitter = 5 * time.Minute },
			`jitter 5m0s: must be shorter than the time between two runs of "*/5 * * * *" (5m0s)`},
		{func(s *Spec) { s.Schedule, _ = Parse("@every 30s", nil); s.Jitter = time.Minute }, "jitter 1m0s"},
	} {
		spec := good
		tt.mutate(&spec)
		err := spec.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want %q", err, tt.want)
			continue
		}
		if !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%v is not ErrInvalidSpec", err)
		}
	}
}

func TestParseConcurrency(t *testing.T) {
	for in, want := range map[string]Concurrency{"": Forbid, "forbid": Forbid, "replace": Replace, "allow": Allow} {
		if got, err := ParseConcurrency(in); err != nil || got != want {
			t.Errorf("ParseConcurrency(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseConcurrency("Allow"); err == nil {
		t.Error("ParseConcurrency is case-insensitive")
	}
}

func TestRetry_RetryDelay(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	r := Retry{Attempts: 10, Delay: 10 * time.Second, MaxDelay: time.Minute}
	for range 100 {
		for n, hi := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 4: time.Minute, 9: time.Minute} {
			if d := r.RetryDelay(n, rnd); d < r.Delay || d > hi {
				t.Fatalf("retry %d waits %s, want %s..%s", n, d, r.Delay, hi)
			}
		}
	}
	if d := (Retry{Attempts: 1}).RetryDelay(1, rnd); d != DefaultRetryDelay {
		t.Errorf("default delay %s", d)
	}
	// The upper bound is reached (full jitter, not a fixed sequence).
	var top bool
	for range 200 {
		top = top || r.RetryDelay(3, rnd) > 35*time.Second
	}
	if !top {
		t.Error("retry 3 never waited more than 35s of its 10s..40s")
	}
}
