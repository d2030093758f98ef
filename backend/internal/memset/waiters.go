package memset

import (
	"context"
	"errors"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// waiter is one blocked request, linked into its set's queue.
type waiter struct {
	// ctx is the blocked call's own context, kept only while the call waits
	// so that serve can check it at the instant of the grant.
	ctx      context.Context
	amounts  []int64
	owner    *Handle
	claim    *backend.Claim
	deadline int64 // Unix ns; 0 when the request has none
	// blocker is the spec that kept the request from being granted at
	// once, -1 when none can be named (see Set.blocker).
	blocker int
	// since is the earliest instant the grant may be dated at: the arrival,
	// raised to the instant the waiter became the head (FIFO held it until
	// then), or resourceWait while the head finds its resources held (the
	// grant is then dated no earlier than the release that frees them).
	// Guarded by the set's mu.
	since int64

	prev, next *waiter // guarded by the set's mu: neighbours in the queue
	queued     bool    // guarded by the set's mu: linked into the queue

	done chan struct{}
	err  error // set before done is closed
}

// resourceWait is the since of a head waiter whose resources were held when
// it was last served.
const resourceWait = algorithms.Never

func newWaiter(ctx context.Context, owner *Handle, amounts []int64, claim *backend.Claim, t int64) *waiter {
	w := &waiter{ctx: ctx, amounts: amounts, owner: owner, claim: claim, since: t, done: make(chan struct{})}
	if d, ok := ctx.Deadline(); ok {
		w.deadline = d.UnixNano()
	}
	return w
}

func (w *waiter) finish(err error) {
	w.err = err
	w.ctx = nil
	close(w.done)
}

// waitQueue is a FIFO of waiters: an intrusive doubly linked list, so that a
// waiter leaves it in O(1) wherever it stands. The zero value is empty.
type waitQueue struct{ front, back *waiter }

func (wq *waitQueue) empty() bool   { return wq.front == nil }
func (wq *waitQueue) head() *waiter { return wq.front }

// push appends w, which must not be queued.
func (wq *waitQueue) push(w *waiter) {
	w.prev, w.next, w.queued = wq.back, nil, true
	if wq.back == nil {
		wq.front = w
	} else {
		wq.back.next = w
	}
	wq.back = w
}

// remove unlinks w and reports whether it was the head. It does nothing and
// reports false when w is not queued.
func (wq *waitQueue) remove(w *waiter) (wasHead bool) {
	if !w.queued {
		return false
	}
	if w.prev == nil {
		wq.front = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		wq.back = w.prev
	} else {
		w.next.prev = w.prev
	}
	wasHead = w.prev == nil
	w.prev, w.next, w.queued = nil, nil, false
	return wasHead
}

// leave takes w out of the queue at instant at and reports whether it was
// the head. The waiter behind a departing head becomes the head at that
// instant: FIFO kept it from being granted earlier, so its grant is dated no
// earlier. Requires mu held.
func (s *Set) leave(w *waiter, at int64) (wasHead bool) {
	if w.queued {
		s.invalidate()
	}
	if !s.x.waiters.remove(w) {
		return false
	}
	if h := s.head(); h != nil {
		h.since = max(h.since, at)
	}
	return true
}

// serve grants waiters from the head of the queue while their requests fit
// at t, fails those that can no longer meet their deadline (with a
// backend.RefusalError), lost their claim or whose ctx ended, and arms the
// timer for the instant the head will fit. Requires mu held.
//
// A grant is dated at the instant it became possible, not at t: a timer that
// fires late (scheduling, a busy machine) must not push the whole schedule
// back, or every wake-up delay would be lost from the limit's rate.
func (s *Set) serve(t int64) {
	for {
		w := s.head()
		if w == nil {
			s.stopTimer()
			return
		}
		if w.claim != nil && w.claim.Taken() {
			s.leave(w, t)
			w.finish(backend.ErrClaimed)
			continue
		}
		from := w.since
		if from == resourceWait {
			from = t // its resources were held; the release that freed them came at t
		}
		f := s.fitAt(from, w.amounts, true)
		switch {
		case f.grantable(t):
			s.leave(w, f.ready)
			s.grant(w, f.ready)
			continue
		case w.deadline != 0 && f.ready > w.deadline:
			s.leave(w, t)
			w.finish(s.refusal(t, f, true, false))
			continue
		case f.held < 0:
			w.since = from
		default:
			w.since = resourceWait
		}
		if f.ready > t {
			s.setTimer(t, f.ready)
		} else {
			s.stopTimer() // only a release can help
		}
		return
	}
}

// grant takes w's request, dated at instant at, and wakes it; or, when w's
// ctx has ended, fails it and takes nothing. A ctx that ended by its
// deadline still gets a grant dated no later than that deadline: the request
// fitted in time. Requires mu held; w must be out of the queue.
func (s *Set) grant(w *waiter, at int64) {
	if err := w.ctx.Err(); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) || w.deadline == 0 || at > w.deadline {
			w.finish(backend.ContextError(w.ctx))
			return
		}
	}
	if w.claim != nil && !w.claim.TryClaim() {
		w.finish(backend.ErrClaimed)
		return
	}
	s.take(at, w.amounts)
	w.finish(nil)
}

// setTimer arms the set's timer to call serve at instant at. Requires mu held.
func (s *Set) setTimer(t, at int64) {
	x := s.x
	if x.timerAt == at {
		return
	}
	x.timerAt = at
	d := time.Duration(at-t) + x.timerLate
	if x.timer == nil {
		x.timer = time.AfterFunc(d, s.onTimer)
		return
	}
	x.timer.Reset(d)
}

// stopTimer disarms the timer. Requires mu held.
func (s *Set) stopTimer() {
	if x := s.x; x != nil && x.timerAt != 0 {
		x.timer.Stop()
		x.timerAt = 0
	}
}

func (s *Set) onTimer() {
	s.mu.Lock()
	defer s.unlock()
	s.x.timerAt = 0
	s.serve(now())
}

// notifyWait calls onWait(spec) for w, which was queued (and may have been
// served since), outside the lock. A panic in onWait is recovered and
// ignored: the wait goes on. If onWait ends the goroutine instead
// (runtime.Goexit), w is abandoned, so that nothing is left behind.
func (s *Set) notifyWait(w *waiter, onWait func(int), spec int) {
	returned := false
	defer func() {
		if !returned {
			s.abandon(w)
		}
	}()
	func() {
		defer func() { _ = recover() }()
		onWait(spec)
	}()
	returned = true
}

// abandon ends the wait of w, whose caller is gone: it leaves the queue as
// a cancelled waiter does, or, when it was granted meanwhile, what it took
// is given back (resources returned, rate units refunded where the
// algorithm refunds).
func (s *Set) abandon(w *waiter) {
	t := now()
	s.lock()
	queued := w.queued
	if queued {
		if s.leave(w, t) {
			s.serve(t)
		}
		w.finish(context.Canceled)
	}
	granted := !queued && w.err == nil // finish ran under mu
	s.unlock()
	if granted {
		refund := make([]int64, len(w.amounts))
		for i, n := range w.amounts {
			refund[i] = -n
		}
		s.settle(w.amounts, refund, true, nil)
	}
}
