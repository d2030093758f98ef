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

// fitIn returns the fit of amounts at t over the given rate states and held
// resources, and the set's pauses. With changed (the instant each rate
// limit last changed at) it is the instant a grant can be dated at: each
// rate limit is asked no earlier than its latest change, since its state
// cannot take before that (an earlier instant would date the grant before a
// refund that made it possible). Requires mu held.
func (s *Set) fitIn(rates []algorithms.State, held, changed []int64, t int64, amounts []int64) fit {
	f := fit{ready: t, slow: -1, held: -1}
	for i, n := range amounts {
		if n <= 0 {
			continue
		}
		if r := rates[i]; r != nil {
			at := t
			if changed != nil {
				at = max(t, changed[i])
			}
			if ready := r.Ready(at, n); ready > f.ready {
				f.ready, f.slow = ready, i
			}
		} else if n > s.specs[i].Capacity-held[i] && f.held < 0 {
			f.held = i
		}
	}
	if s.pausedEnd > f.ready { // rare: a pause that ends after the request could be granted
		for i, n := range amounts {
			if n > 0 && s.paused[i] > f.ready {
				f.ready, f.slow = s.paused[i], i
			}
		}
	}
	return f
}

// fitAt returns the fit of amounts at t in the set as it is; dated as for
// fitIn. Requires mu held.
func (s *Set) fitAt(t int64, amounts []int64, dated bool) fit {
	var changed []int64
	if dated {
		changed = s.changed
	}
	return s.fitIn(s.rates, s.held, changed, t, amounts)
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
	case !s.waiters.empty():
		return s.waiters.head().blocker
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
