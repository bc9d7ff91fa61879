package discovery

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A fencing token is epoch<<tokenIndexBits | the raft ModifyIndex of the write that acquired the lock. Within one
// Consul cluster the index only grows; the epoch, kept in KV next to the lock, grows when the index went
// backwards (Consul's state was wiped: a rebuilt cluster, a -dev agent restarted), so that tokens never do.
// 2^40 raft writes is 35 years at 1000 writes/s.
const tokenIndexBits = 40

const tokenIndexMask = 1<<tokenIndexBits - 1

// nextToken returns the token for an acquisition at raft index index, given the epoch stored in KV and the
// highest token this process has seen (its own, other leaders', Config.MinToken), and the epoch to store. The
// token is greater than highestSeen.
func nextToken(kvEpoch, index, highestSeen uint64) (token, epoch uint64) {
	epoch = max(kvEpoch, highestSeen>>tokenIndexBits)
	token = epoch<<tokenIndexBits | index&tokenIndexMask
	if token <= highestSeen {
		epoch = highestSeen>>tokenIndexBits + 1
		token = epoch<<tokenIndexBits | index&tokenIndexMask
	}
	return token, epoch
}

// parseEpoch reads the epoch key's value; a missing or empty key is epoch 0.
func parseEpoch(v []byte) (uint64, error) {
	s := strings.TrimSpace(string(v))
	if s == "" {
		return 0, nil
	}
	e, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("epoch key holds %q, not a number", s)
	}
	return e, nil
}

// leaderValue is the JSON in the leader key: who holds the role, where to reach it, since when, with which
// token. Operators read it in the Consul UI; glmctl leader shows it.
type leaderValue struct {
	Node    string    `json:"node"`
	Address string    `json:"address,omitempty"`
	Since   time.Time `json:"since"`
	Token   uint64    `json:"token"`
}

func (v leaderValue) encode() []byte {
	b, _ := json.Marshal(v) // cannot fail: plain fields
	return b
}

// decodeLeaderValue reads the leader key's value; an edited or foreign value yields what could be read.
func decodeLeaderValue(b []byte) (leaderValue, error) {
	var v leaderValue
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("leader key holds no glmd leader record: %w", err)
	}
	return v, nil
}
