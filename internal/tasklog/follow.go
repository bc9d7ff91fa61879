package tasklog

import (
	"bytes"
	"context"
)

// followBuffer is how many chunks a follower may lag behind before it loses
// output; a chunk is one read, at most 512 KiB.
const followBuffer = 16

// follower is one `glmctl logs -f`.
type follower struct {
	ch   chan []byte
	stop func() bool // unregisters the context.AfterFunc
}

func (s *stream) follow(ctx context.Context) <-chan []byte {
	f := &follower{ch: make(chan []byte, followBuffer)}
	// No goroutine waits for ctx: the runtime calls unfollow when it ends.
	f.stop = context.AfterFunc(ctx, func() { s.unfollow(f) })
	s.followMu.Lock()
	if s.followClosed {
		s.followMu.Unlock()
		f.stop()
		close(f.ch)
		return f.ch
	}
	if s.followers == nil {
		s.followers = make(map[*follower]struct{})
	}
	s.followers[f] = struct{}{}
	s.nfollow.Add(1)
	s.followMu.Unlock()
	if ctx.Err() != nil {
		// ctx ended before f was registered: its AfterFunc found nothing.
		s.unfollow(f)
	}
	return f.ch
}

// unfollow closes f's channel once.
func (s *stream) unfollow(f *follower) {
	s.followMu.Lock()
	defer s.followMu.Unlock()
	if _, ok := s.followers[f]; !ok {
		return
	}
	delete(s.followers, f)
	s.nfollow.Add(-1)
	close(f.ch)
}

// fanOut sends a copy of p to every follower with room for it.
func (s *stream) fanOut(p []byte) {
	s.followMu.Lock()
	defer s.followMu.Unlock()
	for f := range s.followers {
		// The reader is the only sender and holds the lock: room now means
		// the send cannot block.
		if len(f.ch) < cap(f.ch) {
			f.ch <- bytes.Clone(p)
		}
	}
}

// closeFollowers ends every follower, at Close once the reader has stopped.
func (s *stream) closeFollowers() {
	s.followMu.Lock()
	s.followClosed = true
	fs := make([]*follower, 0, len(s.followers))
	for f := range s.followers {
		fs = append(fs, f)
	}
	s.followMu.Unlock()
	for _, f := range fs {
		f.stop()
		s.unfollow(f)
	}
}
