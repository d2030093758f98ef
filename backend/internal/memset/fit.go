package memset

import (
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// fit is what keeps a request from being granted at an instant t: the
// facts a refusal carries and a wait is armed with.
type fit struct {
	ready int64 // the earliest instant ≥ t the rate limits and pauses allow the request
	slow  int   // the spec whose instant is ready (the bottleneck); -1 when ready is t
	held  int   // the first resource spec without room for the request; -1 when all have room
}

// grantable reports whether the request can be granted at t.
func (f fit) grantable(t int64) bool { return f.ready <= t && f.held < 0 }

// fitIn returns the fit of amounts at t over the state of the limits st
// (a projection's; nil for the set's own), and the set's pauses. When
// dated, it is the instant a grant can be dated at: each rate limit is asked
// no earlier than its latest change (algorithms.State.Last), since its state
// cannot take before that (an earlier instant would date the grant before a
// refund that made it possible). Requires mu held.
func (s *Set) fitIn(st *state, dated bool, t int64, amounts []int64) fit {
	block := s.block
	if st != nil {
		block = st.block
	}
	specs := s.specs[:len(amounts)]
	f := fit{ready: t, slow: -1, held: -1}
	off := 0
	for i := range specs {
		sp, n := &specs[i], amounts[i]
		switch {
		case n <= 0:
		case sp.Kind == backend.Resource:
			if n > sp.Capacity-heldAt(&block[off]) && f.held < 0 {
				f.held = i
			}
		case sp.Algorithm == algorithms.SlidingWindow:
			if ready := s.windowReady(st, i, t, n, dated); ready > f.ready {
				f.ready, f.slow = ready, i
			}
		default:
			l, w := limitOf(sp), block[off:]
			if ready := l.Ready(w, datedAt(t, l.Last(w), dated), n); ready > f.ready {
				f.ready, f.slow = ready, i
			}
		}
		off += widthOf(sp)
	}
	if s.x != nil && s.x.pausedEnd > f.ready { // rare: a pause that ends after the request could be granted
		for i, n := range amounts {
			if n > 0 && s.x.paused[i] > f.ready {
				f.ready, f.slow = s.x.paused[i], i
			}
		}
	}
	return f
}

// windowReady is fitIn's Ready of SlidingWindow spec i.
func (s *Set) windowReady(st *state, i int, t, n int64, dated bool) int64 {
	r := s.x.windows[i]
	if st != nil {
		r = st.windows[i]
	}
	return r.Ready(datedAt(t, r.Last(), dated), n)
}

// datedAt returns the instant a rate limit last changed at last is asked
// about for a fit at t: t, or no earlier than last when dated.
func datedAt(t, last int64, dated bool) int64 {
	if dated {
		return max(t, last)
	}
	return t
}

// fitAt returns the fit of amounts at t in the set as it is; dated as for
// fitIn. Requires mu held.
func (s *Set) fitAt(t int64, amounts []int64, dated bool) fit {
	return s.fitIn(nil, dated, t, amounts)
}

// blocker returns the spec that keeps a request of fit f from being
// granted at once: a resource without room, else the rate limit or pause
// with the latest instant, else (it is held up only by the queue) the
// blocker of the head waiter; -1 when none can be named. Requires mu held.
func (s *Set) blocker(f fit) int {
	switch {
	case f.held >= 0:
		return f.held
	case f.slow >= 0:
		return f.slow
	case s.waiting():
		return s.head().blocker
	}
	return -1
}

// refusal returns the refusal of a request of fit f at t. A refusal without
// waiting names the resource without room (RetryAfter 0: only a release
// can make room) or else the bottleneck and how long until its instant. A
// deadline refusal names the bottleneck whose instant is after the
// deadline, and how long until it, whatever resources are held. queued
// says that earlier requests wait in the set. Requires mu held.
func (s *Set) refusal(t int64, f fit, deadline, queued bool) *backend.RefusalError {
	e := &backend.RefusalError{Deadline: deadline, Queued: queued}
	switch {
	case f.held >= 0 && (!deadline || f.ready <= t || f.slow < 0):
		e.Key = s.specs[f.held].Key
	case f.slow >= 0:
		e.Key = s.specs[f.slow].Key
		e.RetryAfter = time.Duration(max(f.ready-t, 0))
	}
	return e
}
