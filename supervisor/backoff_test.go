package supervisor

import (
	"math/rand/v2"
	"testing"
	"time"
)

func policy() RestartPolicy {
	return RestartPolicy{Policy: "always", SuccessCodes: []int{0}, Delay: 100 * time.Millisecond,
		MaxDelay: 5 * time.Minute, MinUptime: time.Minute}
}

func TestBackoff_Sequence(t *testing.T) {
	b := NewBackoff(rand.New(rand.NewPCG(1, 2)))
	p := policy()
	now := time.Unix(1_000_000, 0)
	// A long healthy run: the first restart waits exactly Delay.
	d, giveUp := b.Next(p, now.Add(-72*time.Hour), now)
	if giveUp || d != p.Delay {
		t.Fatalf("after a long run: delay %v giveUp %v, want %v", d, giveUp, p.Delay)
	}
	// Quick failures: each delay lies in [Delay, min(MaxDelay, 100ms*2^n)].
	for n := 1; n <= 15; n++ {
		started := now
		now = now.Add(time.Second)
		d, giveUp := b.Next(p, started, now)
		ceil := min(p.MaxDelay, 100*time.Millisecond<<n)
		if giveUp || d < p.Delay || d > ceil {
			t.Fatalf("failure %d: delay %v giveUp %v, want within [%v, %v]", n, d, giveUp, p.Delay, ceil)
		}
		now = now.Add(d)
	}
	// A run of MinUptime resets the backoff.
	started := now
	now = now.Add(p.MinUptime)
	if d, _ := b.Next(p, started, now); d != p.Delay {
		t.Fatalf("after MinUptime: delay %v, want %v", d, p.Delay)
	}
}

func TestBackoff_JitterIsSpread(t *testing.T) {
	b := NewBackoff(rand.New(rand.NewPCG(3, 4)))
	p := policy()
	seen := map[time.Duration]bool{}
	now := time.Unix(0, 0)
	for range 50 {
		b.Reset()
		b.Next(p, now, now)
		d, _ := b.Next(p, now, now)
		d2, _ := b.Next(p, now, now)
		seen[d], seen[d2] = true, true
	}
	if len(seen) < 20 {
		t.Fatalf("only %d distinct delays in 100 draws: no jitter?", len(seen))
	}
}

func TestBackoff_ZeroDelay(t *testing.T) {
	b := NewBackoff(rand.New(rand.NewPCG(5, 6)))
	p := policy()
	p.Delay = 0
	now := time.Unix(0, 0)
	if d, _ := b.Next(p, now, now); d != 0 {
		t.Fatalf("first restart with delay 0 waited %v", d)
	}
	var total time.Duration
	for range 10 {
		d, _ := b.Next(p, now, now)
		total += d
	}
	if total == 0 {
		t.Fatal("a crash loop with delay 0 never backed off")
	}
}

func TestBackoff_Limit(t *testing.T) {
	tests := []struct {
		name     string
		limit    int
		window   time.Duration
		gap      time.Duration // between failures
		restarts int           // restarts granted before giving up; -1 = never gives up in 50
	}{
		{"three in a minute", 3, time.Minute, time.Second, 3},
		{"window slides", 3, 10 * time.Second, 4 * time.Second, -1},
		{"no limit", 0, time.Minute, 0, -1},
		{"limit one", 1, time.Hour, time.Minute, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBackoff(rand.New(rand.NewPCG(7, 8)))
			p := policy()
			p.Limit, p.Window = tt.limit, tt.window
			now := time.Unix(0, 0)
			granted := 0
			for range 50 {
				now = now.Add(tt.gap)
				if _, giveUp := b.Next(p, now, now); giveUp {
					break
				}
				granted++
			}
			want := tt.restarts
			if want < 0 {
				want = 50
			}
			if granted != want {
				t.Fatalf("granted %d restarts, want %d", granted, want)
			}
		})
	}
}

func TestRestartPolicy_Wants(t *testing.T) {
	ok := Exit{Code: 0, Reason: ReasonExited}
	fail := Exit{Code: 3, Reason: ReasonExited}
	sig := Exit{Code: 137, Signal: "SIGKILL", Reason: ReasonSignal}
	stopped := Exit{Code: 143, Signal: "SIGTERM", Reason: ReasonStopped}
	tests := []struct {
		policy string
		codes  []int
		exit   Exit
		want   bool
	}{
		{"always", []int{0}, ok, true},
		{"always", []int{0}, stopped, false},
		{"on-failure", []int{0}, ok, false},
		{"on-failure", []int{0}, fail, true},
		{"on-failure", []int{0, 3}, fail, false},
		{"on-failure", []int{0}, sig, true},
		{"never", []int{0}, fail, false},
	}
	for _, tt := range tests {
		p := RestartPolicy{Policy: tt.policy, SuccessCodes: tt.codes}
		if got := p.Wants(tt.exit); got != tt.want {
			t.Errorf("%s %v after %v: got %v, want %v", tt.policy, tt.codes, tt.exit, got, tt.want)
		}
	}
}
