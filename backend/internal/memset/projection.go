package memset

import "github.com/concurry/concurry/algorithms"

// projection is the set as it would be once every queued waiter was
// granted, in order, each no earlier than the one before it and keeping the
// resources it takes: a copy of the state of every limit, and the fit of
// the last waiter. A refusal behind the queue and the deadline
// check of a new waiter read it; it is kept between calls and extended as
// waiters join, so that neither walks the queue, and any other change to
// the set drops it (invalidate). The zero value is an invalid projection.
type projection struct {
	valid bool
	st    state // a copy of the set's; its buffers are reused
	// q is the fit of the queue: q.ready the instant its last waiter is
	// projected to be granted at, q.slow the spec that held up the queue
	// last, q.held the first resource a waiter lacks (only a release can
	// move the queue then).
	q fit
	// first is the instant the first waiter counted is projected to be
	// granted at; counted says whether there is one.
	first   int64
	counted bool
	last    *waiter // the last waiter counted or skipped
}

// invalidate drops the projection: the set changed. Every change but a
// waiter joining calls it (take, leave, settle, pause, lower). Requires mu
// held.
func (s *Set) invalidate() {
	if s.x != nil {
		s.x.proj.valid = false
	}
}

// project builds the projection of the queue from instant t. A waiter with
// a claim makes it valid for this call only: another set may take the claim
// at any moment, and the waiter then leaves without taking anything.
// Requires mu held and a non-empty queue.
func (s *Set) project(t int64) {
	p := &s.x.proj
	p.st = s.state().clone(p.st)
	p.q, p.counted, p.valid = fit{ready: t, slow: -1, held: -1}, false, true
	for w := s.head(); w != nil; w = w.next {
		s.extend(w)
	}
}

// extend adds w, the waiter behind p.last, to the projection. Requires mu
// held.
func (s *Set) extend(w *waiter) {
	p := &s.x.proj
	p.last = w
	if w.claim != nil {
		p.valid = false // valid for the caller of project only
		if w.claim.Taken() {
			return // it leaves without taking anything
		}
	}
	wf := s.fitIn(&p.st, false, p.q.ready, w.amounts)
	if wf.ready > p.q.ready {
		p.q.ready, p.q.slow = wf.ready, wf.slow
	}
	if p.q.held < 0 {
		p.q.held = wf.held
	}
	if !p.counted {
		p.first, p.counted = p.q.ready, true
	}
	if p.q.ready == algorithms.Never {
		return // nothing behind it is ever granted
	}
	off := 0
	for i, n := range w.amounts {
		sp := &s.specs[i]
		if n > 0 {
			p.st.take(sp, i, off, p.q.ready, n) // a resource: at most its capacity per waiter, no overflow
		}
		off += widthOf(sp)
	}
}

// joined extends the projection with w, just pushed onto the queue, when
// it holds the waiters before w; otherwise it is dropped. Requires mu held.
func (s *Set) joined(w *waiter) {
	if s.x.proj.valid && w.prev != nil && s.x.proj.last == w.prev {
		s.extend(w)
		return
	}
	s.invalidate()
}

// projected returns the fit of amounts at t if it joined the queue now:
// every waiter ahead is granted first, in order, each no earlier than the
// one before it, and keeps the resources it takes. ready is the earliest
// instant the rate limits and pauses could grant it; releases and refunds
// may still make it earlier. slow is the request's own bottleneck when it
// is later than the queue's, else the spec that held up the queue; held is
// the request's own resource without room, else the first resource a
// waiter ahead lacks. f is the fit for an empty queue. Requires mu held.
//
// The kept projection is used while it holds the whole queue and t is no
// later than its first waiter's instant (projecting from t would give the
// same), or a waiter lacks a resource (then ready is a lower bound, which
// is all a deadline check needs, and a refusal says only a release helps).
func (s *Set) projected(t int64, amounts []int64, f fit) fit {
	if !s.waiting() {
		return f
	}
	p := &s.x.proj
	if !p.valid || p.last != s.x.waiters.back || t > p.first && p.q.held < 0 {
		s.project(t)
	}
	q := p.q
	q.ready = max(q.ready, t)
	own := s.fitIn(&p.st, false, q.ready, amounts)
	if own.ready > q.ready {
		q.ready, q.slow = own.ready, own.slow
	}
	if own.held >= 0 {
		q.held = own.held
	}
	return q
}
