package redis

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/concurry/concurry/backend"
)

// waiter is a blocked Acquire of this process; turn is closed when it
// reaches the head of its set's line.
type waiter struct {
	turn    chan struct{}
	amounts []int64
	claim   *backend.Claim
	arrived time.Time // when it started to wait
	hint    int64     // set before turn is closed: since when (Redis µs) the queue has been waiting, 0 if unknown
	blocker int       // guarded by the line's mu; the spec its latest refusal named, -1 if none yet
}

// queued reports whether a blocked Acquire of this process is waiting in
// the set's line: in this set or another of its name.
func (s *set) queued() bool {
	l := s.line
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue) > 0
}

// enqueue appends a waiter and waits until it is the head of the queue. A
// waiter that joins behind others starts to wait at once (req.wait), with
// the blocker of the head; with a ctx deadline the rate limits cannot meet
// once the waiters ahead are served, it fails at once instead (see
// projectDeadline).
func (s *set) enqueue(ctx context.Context, amounts []int64, req *request) (*waiter, error) {
	w := &waiter{turn: make(chan struct{}), amounts: amounts, claim: req.opts.Claim, arrived: time.Now(), blocker: -1}
	req.start = w.arrived
	l := s.line
	l.mu.Lock()
	l.queue = append(l.queue, w)
	head := len(l.queue) == 1
	blocker := l.queue[0].blocker
	if head {
		w.hint = l.dueHint()
		close(w.turn)
	}
	l.mu.Unlock()
	if !head {
		if _, ok := ctx.Deadline(); ok {
			b, err := s.projectDeadline(ctx, w)
			if err != nil {
				s.dequeue(w, 0)
				req.refused(b)
				return nil, err
			}
			if b >= 0 {
				blocker = b
			}
		}
		req.wait(blocker)
	}
	select {
	case <-w.turn:
		return w, nil
	case <-ctx.Done():
		s.dequeue(w, 0)
		return nil, backend.ContextError(ctx)
	case <-s.closed:
		s.dequeue(w, 0)
		return nil, backend.ErrClosed
	}
}

// dequeue removes w and hands the turn to the next waiter, with the instant
// w was granted at (0 if it was not), or the latest refusal's due instant,
// as that waiter's hint.
func (s *set) dequeue(w *waiter, granted int64) {
	l := s.line
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, x := range l.queue {
		if x != w {
			continue
		}
		l.queue = append(l.queue[:i:i], l.queue[i+1:]...)
		if i == 0 && len(l.queue) > 0 {
			l.queue[0].hint = max(granted, l.dueHint())
			close(l.queue[0].turn)
		}
		return
	}
}

// loop makes attempts until the request is granted, refused (without
// opts.Wait) or abandoned; w is the request's waiter when it waits. With a
// claim it only checks until the request could be granted, then takes the
// claim and the grant; once the claim is won the request is committed and
// waits even without opts.Wait.
//
// A waiter's attempt carries a hint: the instant its last refusal said the
// rate limits could grant it, or the grant of the waiter ahead of it; the
// script grants as of the instant the request became possible, so time
// spent waking up is not lost from the schedule.
func (s *set) loop(ctx context.Context, amounts []int64, req *request, w *waiter) (backend.Lease, error) {
	id, m := s.newGrant(amounts)
	claim, committed, listening := req.opts.Claim, false, false
	hint, woke := s.firstHint(w), int64(0) // woke: the instant the last sleep was for; 0 before any
	for {
		switch {
		case s.isClosed():
			return 0, backend.ErrClosed
		case ctx.Err() != nil:
			return 0, backend.ContextError(ctx)
		case claim != nil && claim.Taken():
			return 0, backend.ErrClaimed
		}
		e := acquireEntry
		if claim != nil {
			e = checkEntry
		}
		var notice <-chan struct{}
		if req.opts.Wait || req.opts.Claim != nil { // a request that may wait: one that never does needs no lock here
			notice = s.notifier.current()
		}
		r, err := s.attempt(ctx, e, id, m, amounts, hint, w)
		switch {
		case err != nil:
			return s.outage(err, req)
		case r.code == codeGranted:
			return id, nil
		case r.code == codeCanGrant:
			if !claim.TryClaim() {
				return 0, backend.ErrClaimed
			}
			claim, committed, hint = nil, true, r.ready
			continue
		case !req.opts.Wait && !committed:
			req.refused(r.blocker())
			return 0, s.refusal(r, false, false)
		}
		if err := s.startWait(ctx, r, req); err != nil {
			return 0, err
		}
		lostRace := woke != 0 && (r.blocked() || r.ready > woke)
		hint = r.hint()
		if notice == nil && !listening {
			// Listen first, then look again, so no release or feedback is missed.
			listening = true
			if err := s.notifier.start(ctx, s); err != nil {
				return 0, err
			}
			continue
		}
		if r.ready > r.now && !r.blocked() && time.Duration(r.ready-r.now)*time.Microsecond <= r.rtt {
			continue // due within a round trip: by the time an attempt arrives, it is
		}
		if woke, err = s.sleep(ctx, r, notice, lostRace); err != nil {
			return 0, err
		}
	}
}

// startWait fails the request req that r refused when its deadline cannot
// be met (see checkDeadline), and otherwise marks the start of its wait.
func (s *set) startWait(ctx context.Context, r reply, req *request) error {
	if err := s.checkDeadline(ctx, r, false); err != nil {
		req.refused(r.blocker())
		return err
	}
	req.wait(r.blocker())
	return nil
}

// checkDeadline fails at once, with a deadline refusal, when the rate
// limits and pauses cannot grant the request r refused before ctx's
// deadline; queued says that it waits behind earlier requests.
func (s *set) checkDeadline(ctx context.Context, r reply, queued bool) error {
	d, ok := ctx.Deadline()
	if !ok || r.ready <= r.now {
		return nil
	}
	if time.Until(d) < time.Duration(r.ready-r.now)*time.Microsecond {
		return s.refusal(r, true, queued)
	}
	return nil
}

// sleep waits until the instant r says the request could be granted (plus
// jitter after a lost race), a notice (units given back, or feedback), the
// end of ctx, or Close. It returns the instant it waited for.
func (s *set) sleep(ctx context.Context, r reply, notice <-chan struct{}, lostRace bool) (int64, error) {
	until := r.ready
	if r.blocked() {
		// Only a release can help before the earliest lease expires.
		wake := r.wake
		if wake <= r.now {
			wake = r.now + s.b.opts.LeaseTTL.Microseconds()/3
		}
		until = max(until, wake)
	}
	// Wake a round trip early: the next attempt then reaches Redis about
	// when the request is due, rather than a round trip after.
	d := time.Duration(until-r.now)*time.Microsecond - r.rtt
	if j := s.b.opts.Jitter; j > 0 && lostRace {
		d += rand.N(j)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return until, nil
	case <-notice:
		return until, nil
	case <-ctx.Done():
		return 0, backend.ContextError(ctx)
	case <-s.closed:
		return 0, backend.ErrClosed
	}
}
