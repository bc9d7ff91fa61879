package discovery

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestNextToken(t *testing.T) {
	const e1 = 1 << tokenIndexBits
	tests := []struct {
		name                    string
		kvEpoch, index, highest uint64
		wantToken, wantEpoch    uint64
	}{
		{"first ever", 0, 17, 0, 17, 0},
		{"index grows", 0, 40, 17, 40, 0},
		{"epoch from kv", 3, 40, 0, 3*e1 | 40, 3},
		{"index went backwards: new epoch", 0, 12, 900, e1 | 12, 1},
		{"backwards again in epoch 1", 1, 5, e1 | 700, 2*e1 | 5, 2},
		{"highest from another epoch", 0, 50, 2*e1 | 10, 2*e1 | 50, 2},
		{"kv epoch ahead of what we saw", 4, 9, e1 | 100, 4*e1 | 9, 4},
		{"equal is not greater", 0, 17, 17, e1 | 17, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token, epoch := nextToken(tc.kvEpoch, tc.index, tc.highest)
			if token != tc.wantToken || epoch != tc.wantEpoch {
				t.Errorf("nextToken(%d, %d, %d) = %d, %d; want %d, %d", tc.kvEpoch, tc.index, tc.highest,
					token, epoch, tc.wantToken, tc.wantEpoch)
			}
			if token <= tc.highest {
				t.Errorf("token %d is not above the highest seen %d", token, tc.highest)
			}
		})
	}
}

func TestParseEpoch(t *testing.T) {
	for in, want := range map[string]uint64{"": 0, " 7\n": 7, "0": 0} {
		if got, err := parseEpoch([]byte(in)); err != nil || got != want {
			t.Errorf("parseEpoch(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseEpoch([]byte("seven")); err == nil {
		t.Error("parseEpoch(seven) did not fail")
	}
}

func TestLeaderValue_RoundTrip(t *testing.T) {
	v := leaderValue{Node: "gpu01", Address: "10.0.0.1", Since: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Token: 42}
	got, err := decodeLeaderValue(v.encode())
	if err != nil || got != v {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", v, got, err)
	}
	if _, err := decodeLeaderValue([]byte("edited in the UI")); err == nil {
		t.Error("garbage decoded without error")
	}
}

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
