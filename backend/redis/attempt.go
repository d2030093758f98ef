package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concurry/concurry/backend"
)

// Replies of the acquire script.
const (
	codeRefused  = 0 // not now: see ready, slow, short and wake
	codeGranted  = 1 // taken (or taken by an earlier try of the same id); a bare integer is a grant too, as of its value
	codeCanGrant = 2 // check mode: could be taken now; nothing was
)

// reply is the acquire script's answer; instants are Redis µs.
type reply struct {
	code  int64
	now   int64 // the script's instant
	ready int64 // refused: when the rate limits and pauses could grant, ≥ now; granted: the instant of the grant
	slow  int   // refused: the spec whose instant ready is (the bottleneck), -1 when none is later than now
	short int   // refused: the first resource spec without room, -1 when every one has room
	wake  int64 // the earliest lease expiry while short, 0 if none

	receipt time.Time     // when the reply came
	rtt     time.Duration // how long the call took
}

// blocked reports whether resources are short: only a release can help
// before the earliest lease expires.
func (r reply) blocked() bool { return r.short >= 0 }

// blocker returns the spec that keeps the request from being granted now:
// a resource without room, else the bottleneck; -1 when neither.
func (r reply) blocker() int {
	if r.short >= 0 {
		return r.short
	}
	return r.slow
}

// hint returns the hint of the next attempt after the refusal r: the
// instant r says the rate limits could grant, or 0 (none) while resources
// are short, since their release may come at any instant.
func (r reply) hint() int64 {
	if r.blocked() {
		return 0
	}
	return r.ready
}

// parseReply decodes the acquire script's reply.
func parseReply(res any) (reply, error) {
	if p, ok := res.(int64); ok { // a grant to a request without a hint, as of p
		return reply{code: codeGranted, ready: p, slow: -1, short: -1}, nil
	}
	v, err := integers(res, 0)
	if err != nil {
		return reply{}, err
	}
	switch {
	case len(v) >= 3 && (v[0] == codeGranted || v[0] == codeCanGrant):
		return reply{code: v[0], ready: v[1], now: v[2], slow: -1, short: -1}, nil
	case len(v) >= 7 && v[0] == codeRefused:
		return reply{code: v[0], now: v[1], ready: v[2], wake: v[4], slow: int(v[5]) - 1, short: int(v[6]) - 1}, nil
	}
	return reply{}, fmt.Errorf("%w: %v", ErrScript, v)
}

// takeTurn takes the turn token of the set's line, which serialises the
// attempts of the head waiter with the projections of the waiters behind
// it, so that a projection never counts a waiter that is being granted.
func (s *set) takeTurn(ctx context.Context) error {
	select {
	case s.line.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return backend.ContextError(ctx)
	case <-s.closed:
		return backend.ErrClosed
	}
}

func (s *set) giveTurn() { <-s.line.turn }

// attempt runs entry e (acquire or check) once for lease id of member m
// ("" for a request that takes no resource: it gets no lease, and the call
// is never sent twice), evaluating the rate limits from hint on (see
// acquire.lua). The head waiter w (nil for a request that does not wait)
// holds the turn meanwhile and leaves the queue when granted. The call
// returns by ctx's end; a grant that reaches a caller whose ctx has ended,
// then or later, is given back.
func (s *set) attempt(ctx context.Context, e entry, id backend.Lease, m string, amounts []int64, hint int64, w *waiter) (reply, error) {
	args := s.newArgs(2 + len(amounts))
	for _, n := range amounts {
		args = append(args, n)
	}
	if hint == 0 && w != nil {
		hint = -1 // no hint, but the instant of a grant is the next waiter's
	}
	// Trailing arguments that are absent mean "" and 0: each one less is
	// less for Redis to read (see acquire.lua).
	if more := hint != 0 || s.b.clock != nil; more || m != "" {
		args = append(args, m)
		if more {
			args = append(args, hint)
		}
	}
	if w != nil {
		if err := s.takeTurn(ctx); err != nil {
			return reply{}, err
		}
		defer s.giveTurn()
	}
	var late func(any, error) // only a ctx that can end leaves a call to finish late
	if ctx.Done() != nil {
		late = func(res any, err error) { s.late(e, id, m, amounts, res, err) }
	}
	sent := time.Now()
	res, err := s.do(ctx, e, args, late, m == "")
	receipt := time.Now()
	if err != nil {
		return reply{}, err
	}
	r, err := parseReply(res)
	r.receipt, r.rtt = receipt, receipt.Sub(sent)
	if err == nil && r.now != 0 {
		l := s.line
		l.mu.Lock()
		l.ref = clockRef{now: r.now, receipt: receipt, rtt: r.rtt}
		if r.code == codeRefused && !r.blocked() {
			l.noteDue(r)
		}
		if w != nil && r.code == codeRefused {
			w.blocker = r.blocker()
		}
		l.mu.Unlock()
	}
	if err != nil || r.code != codeGranted || e != acquireEntry {
		return r, err
	}
	if ctx.Err() != nil {
		s.bg.Go(func() { s.undo(id, m, amounts, r.ready) })
		return reply{}, backend.ContextError(ctx)
	}
	if m != "" {
		s.track(id, m, receipt)
	}
	if w != nil {
		s.dequeue(w, r.ready)
	}
	return r, nil
}

// late handles the outcome of an acquisition attempt whose caller gave up
// before it came: a grant is given back. An unknown outcome (the call
// failed: Redis may still run it, as a stalled server does once it goes on)
// is logged; a lease it may have granted is ended by a settle of its member
// with no usage, retried until it reaches Redis (see retry), so that its
// resources come back once Redis answers, not when the lease expires. Its
// rate units stay taken, as do those of a grant without a lease: the
// instant an undo would date them by is unknown. (A settle that reaches
// Redis before the acquisition finds no lease; the lease then expires
// unrenewed within LeaseTTL.)
func (s *set) late(e entry, id backend.Lease, m string, amounts []int64, res any, err error) {
	if e != acquireEntry {
		return
	}
	if err != nil {
		if errors.Is(err, backend.ErrBackendUnavailable) {
			s.degradedDecision("an acquisition whose caller gave up", err)
		}
		s.logger().Warn("concurry: an acquisition whose caller gave up got no answer from redis; if it was granted, its lease is ended once redis answers (or expires unrenewed), and its rate units stay taken",
			"lease", uint64(id), "lease_ttl", s.b.opts.LeaseTTL, "err", err)
		if m != "" && retryable(err) {
			args := append(s.newArgs(1+s.n), m)
			for range s.n {
				args = append(args, 0)
			}
			s.retry("give-back", id, settleEntry, args, time.Now().Add(s.b.opts.LeaseTTL), true, func(res any, _ bool) {
				if leaseKnown(res) {
					s.logger().Info("concurry: ended the lease of an acquisition whose caller gave up", "lease", uint64(id))
				}
			})
		}
		return
	}
	if r, err := parseReply(res); err == nil && r.code == codeGranted {
		s.undo(id, m, amounts, r.ready)
	}
}
