package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/concurry/concurry/backend"
)

// Replies of the acquire script.
const (
	codeRefused  = 0 // not now: see ready, blocked and wake
	codeGranted  = 1 // taken (or taken by an earlier try of the same id)
	codeCanGrant = 2 // check mode: could be taken now; nothing was
)

// reply is the acquire script's answer; instants are Redis µs.
type reply struct {
	code    int64
	now     int64 // the script's instant
	ready   int64 // when the rate limits could grant, ≥ now
	blocked bool  // resources are short
	wake    int64 // the earliest lease expiry while blocked, 0 if none
}

// waiter is a blocked Acquire of this process; turn is closed when it
// reaches the head of the queue.
type waiter struct{ turn chan struct{} }

// queued reports whether a blocked Acquire of this process is waiting.
func (s *Set) queued() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) > 0
}

// enqueue appends a waiter and waits until it is the head of the queue.
func (s *Set) enqueue(ctx context.Context) (*waiter, error) {
	w := &waiter{turn: make(chan struct{})}
	s.mu.Lock()
	s.queue = append(s.queue, w)
	if len(s.queue) == 1 {
		close(w.turn)
	}
	s.mu.Unlock()
	select {
	case <-w.turn:
		return w, nil
	case <-ctx.Done():
		s.dequeue(w)
		return nil, backend.ContextError(ctx)
	case <-s.closed:
		s.dequeue(w)
		return nil, backend.ErrClosed
	}
}

// dequeue removes w and hands the turn to the next waiter.
func (s *Set) dequeue(w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.queue {
		if x != w {
			continue
		}
		s.queue = append(s.queue[:i:i], s.queue[i+1:]...)
		if i == 0 && len(s.queue) > 0 {
			close(s.queue[0].turn)
		}
		return
	}
}

// loop makes attempts until the request is granted, refused (without
// opts.Wait) or abandoned. With a claim it only checks until the request
// could be granted, then takes the claim and the grant; once the claim is
// won the request is committed and waits even without opts.Wait.
func (s *Set) loop(ctx context.Context, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	id, claim, committed, listening := newLease(), opts.Claim, false, false
	m := member(id, amounts)
	for {
		if s.isClosed() {
			return 0, backend.ErrClosed
		}
		if claim != nil && claim.Taken() {
			return 0, backend.ErrClaimed
		}
		e := acquireEntry
		if claim != nil {
			e = checkEntry
		}
		notice := s.notifier.current()
		r, err := s.attempt(ctx, e, m, amounts)
		switch {
		case err != nil:
			return s.outage(err)
		case r.code == codeGranted:
			s.track(id, m)
			return id, nil
		case r.code == codeCanGrant:
			if !claim.TryClaim() {
				return 0, backend.ErrClaimed
			}
			claim, committed = nil, true
			continue
		case !opts.Wait && !committed:
			return 0, backend.ErrWouldBlock
		}
		if err := checkDeadline(ctx, r); err != nil {
			return 0, err
		}
		if s.notify && !listening {
			// Listen first, then look again, so no release is missed.
			listening = true
			if err := s.notifier.start(ctx, s); err != nil {
				return 0, err
			}
			continue
		}
		if err := s.sleep(ctx, r, notice); err != nil {
			return 0, err
		}
	}
}

// checkDeadline fails at once when the rate limits cannot grant before ctx's
// deadline.
func checkDeadline(ctx context.Context, r reply) error {
	d, ok := ctx.Deadline()
	if !ok || r.ready <= r.now {
		return nil
	}
	wait := time.Duration(r.ready-r.now) * time.Microsecond
	if time.Until(d) < wait {
		return fmt.Errorf("concurry: limits available in %v, after the context deadline: %w", wait, context.DeadlineExceeded)
	}
	return nil
}

// sleep waits until the instant r says the request could be granted (plus
// jitter), a release notice, the end of ctx, or Close.
func (s *Set) sleep(ctx context.Context, r reply, notice <-chan struct{}) error {
	until := r.ready
	if r.blocked {
		// Only a release can help before the earliest lease expires.
		wake := r.wake
		if wake <= r.now {
			wake = r.now + s.b.opts.LeaseTTL.Microseconds()/3
		}
		until = max(until, wake)
	}
	d := time.Duration(until-r.now) * time.Microsecond
	if j := s.b.opts.Jitter; j > 0 {
		d += rand.N(j)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-notice:
		return nil
	case <-ctx.Done():
		return backend.ContextError(ctx)
	case <-s.closed:
		return backend.ErrClosed
	}
}
