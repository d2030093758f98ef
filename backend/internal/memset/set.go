package memset

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// Set is the state of one set of limits: an algorithm state per rate limit
// and a held count per resource limit, kept in one block, and the FIFO queue
// of blocked requests. Use it through a [Handle]. A Set is safe for
// concurrent use.
//
// A set is small, since a Keyed holds one per active identity: it shares
// its specs with the caller, keeps every limit's state in one allocation
// (see state), and makes what only waiting or feedback needs (see extra)
// when a request first waits or feedback first comes.
type Set struct {
	specs []backend.Spec // the caller's; never modified

	mu sync.Mutex
	// block holds the state of every limit (see state); windows, when the
	// set has a SlidingWindow, is in x. Guarded by mu.
	block []int64
	x     *extra // guarded by mu; nil until needed
}

// extra is the part of a set that most sets never need: the queue of
// blocked requests with its timer and projection, made when a request
// first waits; the upstream feedback, made when it first comes; and the
// states of SlidingWindow limits, made with the set.
type extra struct {
	waiters waitQueue   // guarded by mu
	timer   *time.Timer // guarded by mu; wakes the head waiter
	timerAt int64       // guarded by mu; instant timer is set for, 0 when idle
	proj    projection  // guarded by mu; the queue's projection, see projected
	// timerLate is added to every timer, to model a timer that fires late
	// (a busy machine); always 0 outside tests. Guarded by mu.
	timerLate time.Duration
	// paused is, per spec, the instant a pause of it ends (Unix ns; 0 when
	// never paused), and pausedEnd the latest of them; paused is nil until
	// the first pause. Guarded by mu.
	paused    []int64
	pausedEnd int64
	// reported is, per spec, the newest asOf of an upstream report Lower
	// applied; nil until the first. Guarded by mu.
	reported []int64
	// windows holds the SlidingWindow states (see state). Guarded by mu.
	windows []algorithms.State
}

// NewSet returns a set of the given limits: every rate bucket full, every
// resource free. The set keeps specs: the caller must not modify them
// afterwards. It panics when specs are outside the contract (see
// backend.CheckSpecs): callers validate them first, as memory.Backend.Open
// does.
func NewSet(specs []backend.Spec) *Set {
	if err := backend.CheckSpecs(specs); err != nil {
		panic(fmt.Sprintf("memset: NewSet: %v", err))
	}
	st := newState(specs)
	s := &Set{specs: specs, block: st.block}
	if st.windows != nil {
		s.x = &extra{windows: st.windows}
	}
	return s
}

// Specs returns the set's limits. The caller must not modify the slice.
func (s *Set) Specs() []backend.Spec { return s.specs }

// state returns the state of every limit. Requires mu held.
func (s *Set) state() state { return state{block: s.block, windows: s.windows()} }

// windows returns the SlidingWindow states (see state). Requires mu held.
func (s *Set) windows() []algorithms.State {
	if s.x == nil {
		return nil
	}
	return s.x.windows
}

// extra returns s.x, made if missing. Requires mu held.
func (s *Set) extra() *extra {
	if s.x == nil {
		s.x = new(extra)
	}
	return s.x
}

// The clock: Unix nanoseconds read as base plus the monotonic time since
// base, which costs a fraction of a wall-clock read and never jumps when the
// wall clock is adjusted. One base serves every set. Under testing/synctest
// the time read in a bubble has no monotonic reading, so the difference is
// of wall clocks, and now is the bubble's fake instant.
var (
	base     = time.Now()
	baseUnix = base.UnixNano()
)

// now returns the current instant in Unix nanoseconds.
func now() int64 { return baseUnix + int64(time.Since(base)) }

// take records amounts as granted at t. Requires mu held.
func (s *Set) take(t int64, amounts []int64) {
	s.invalidate()
	specs := s.specs[:len(amounts)]
	off := 0
	for i := range specs {
		sp, n := &specs[i], amounts[i]
		switch {
		case n <= 0:
		case sp.Kind == backend.Resource:
			s.addHeld(&s.block[off], n)
		case sp.Algorithm == algorithms.SlidingWindow:
			s.x.windows[i].Take(t, n)
		default:
			limitOf(sp).Take(s.block[off:], t, n)
		}
		off += widthOf(sp)
	}
}

// acquire implements Handle.Acquire for waiters owned by h.
func (s *Set) acquire(ctx context.Context, h *Handle, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	if opts.Claim == nil && s.solo() && s.acquireSolo(h, amounts[0]) {
		report(opts.Report, false, -1)
		return 0, nil
	}
	// The clock is read before locking, to keep the critical section
	// short; a set of resources alone grants at once without it.
	clocked := s.clocked()
	t := int64(0)
	if clocked {
		t = now()
	}
	s.lock()
	s.freeze()
	if h.closed() {
		s.unlock()
		report(opts.Report, false, -1)
		return 0, backend.ErrClosed
	}
	if opts.Claim == nil && s.grantNow(t, amounts) {
		s.unlock()
		report(opts.Report, false, -1)
		return 0, nil
	}
	if !clocked {
		t = now()
	}
	f := s.fitAt(t, amounts, false)
	if !s.waiting() && f.grantable(t) && (opts.Claim == nil || opts.Claim.TryClaim()) {
		s.take(t, amounts)
		s.unlock()
		report(opts.Report, false, -1)
		return 0, nil
	}
	return s.acquireSlow(ctx, h, t, f, amounts, opts)
}

// grantAtOnce grants amounts when the set can at once, as acquire's first
// steps do, and reports whether it did; when not, the set is as it was.
// It keeps nothing of amounts, so a caller may pass them on its stack.
func (s *Set) grantAtOnce(h *Handle, amounts []int64) bool {
	if s.solo() {
		return s.acquireSolo(h, amounts[0])
	}
	t := int64(0)
	if s.clocked() {
		t = now()
	}
	s.lock()
	ok := !h.closed() && s.grantNow(t, amounts)
	s.mu.Unlock() // not solo: nothing to thaw
	return ok
}

// grantNowWords bounds the block grantNow handles: it saves the block on
// its stack to undo a partial take.
const grantNowWords = 16

// grantNow grants amounts at t, as fitAt and take would, when the set can
// grant them at once: nobody waits, no pause is in force, and every limit
// has room. It reports whether it did; when not, the set is as it was and
// the caller takes the general path (which also handles SlidingWindow
// limits and blocks of more than grantNowWords words). It is the common
// case of acquire in one pass over the limits, each rate limit computing
// its state at t once. Requires mu held.
func (s *Set) grantNow(t int64, amounts []int64) bool {
	if x := s.x; x != nil && (x.windows != nil || !x.waiters.empty() || x.pausedEnd != 0 && (t == 0 || x.pausedEnd > t)) {
		return false // (t is 0 in a set of resources alone: see acquire)
	}
	block := s.block
	if len(amounts) == 1 { // one limit: nothing to undo
		sp, n := &s.specs[0], amounts[0]
		switch {
		case n <= 0:
		case sp.Kind == backend.Resource:
			if n > sp.Capacity-heldAt(&block[0]) {
				return false
			}
			s.addHeld(&block[0], n)
		case !limitOf(sp).TryTake(block, t, n):
			return false
		}
		s.invalidate()
		return true
	}
	if len(block) > grantNowWords {
		return false
	}
	// A refused limit is left as it was, so only the takes of the limits
	// before it need undoing: with one limit there are none.
	var saved [grantNowWords]int64
	specs := s.specs[:len(amounts)]
	undo := len(specs) > 1
	if undo {
		//lint:ignore S1001 a few words: the loop costs less than copy's call of memmove
		for i, w := range block {
			saved[i] = w
		}
	}
	off := 0
	for i := range specs {
		sp, n := &specs[i], amounts[i]
		switch {
		case n <= 0:
		case sp.Kind == backend.Resource:
			if n > sp.Capacity-heldAt(&block[off]) {
				if undo {
					copy(block, saved[:len(block)])
				}
				return false
			}
			block[off] += n
		case !limitOf(sp).TryTake(block[off:], t, n):
			if undo {
				copy(block, saved[:len(block)])
			}
			return false
		}
		off += widthOf(sp)
	}
	s.invalidate()
	return true
}

// clocked reports whether the set has a rate limit: a set of resources
// alone reads no clock to grant at once. specs never change, so no lock is
// needed.
func (s *Set) clocked() bool {
	for i := range s.specs {
		if s.specs[i].Kind == backend.Rate {
			return true
		}
	}
	return false
}

// acquireSlow is acquire for a request that cannot be granted at once, of
// fit f at t: it fails, or queues the request and waits. A refusal carries
// its facts (see refusal), projected through the waiters ahead. Requires mu
// held; it unlocks.
func (s *Set) acquireSlow(ctx context.Context, h *Handle, t int64, f fit, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	blocker := s.blocker(f)
	var err error
	switch queued := s.waiting(); {
	case opts.Claim != nil && opts.Claim.Taken():
		err = backend.ErrClaimed
	case opts.Claim != nil && opts.Claim.Checks() && !opts.Wait && !queued && f.grantable(t):
		err = backend.ErrClaimed // it fits now; a check takes nothing (a waiting check learns it in grant)
	case !opts.Wait:
		err = s.refusal(t, s.projected(t, amounts, f), false, queued)
	default:
		if d, ok := ctx.Deadline(); ok {
			if p := s.projected(t, amounts, f); p.ready > d.UnixNano() {
				err = s.refusal(t, p, true, queued)
			}
		}
	}
	if err != nil {
		s.unlock()
		report(opts.Report, false, blocker)
		return 0, err
	}
	w := newWaiter(ctx, h, amounts, opts.Claim, t)
	w.blocker = blocker
	s.extra().waiters.push(w)
	s.joined(w)
	if s.head() == w {
		s.serve(t)
	}
	s.mu.Unlock() // requests wait: the set stays frozen
	report(opts.Report, true, blocker)
	if opts.OnWait != nil {
		s.notifyWait(w, opts.OnWait, blocker)
	}
	lease, err := s.wait(ctx, w)
	if opts.Report != nil {
		opts.Report.Duration = time.Duration(now() - t)
	}
	return lease, err
}

// report fills r, when not nil, with what an Acquire learned; the duration
// of a wait is added when it ends.
func report(r *backend.AcquireReport, waited bool, blocker int) {
	if r != nil {
		*r = backend.AcquireReport{Waited: waited, Blocker: blocker}
	}
}

// wait blocks until w is granted or failed, or ctx ends.
func (s *Set) wait(ctx context.Context, w *waiter) (backend.Lease, error) {
	select {
	case <-w.done:
		return 0, w.err
	case <-ctx.Done():
	}
	t := now()
	s.lock()
	// Grants that came due before the timer ran go first; w's own is one
	// when its deadline was met (see grant).
	s.catchUp(t)
	queued := w.queued // false once served or failed, with w.err set
	if queued && s.leave(w, t) {
		s.serve(t)
	}
	s.unlock()
	if queued {
		return 0, backend.ContextError(ctx)
	}
	return 0, w.err
}

// settle implements Handle.Settle.
func (s *Set) settle(held, delta []int64, final bool, refunded []int64) {
	if s.solo() {
		// A resource has no usage to apply: only a final settle does
		// anything, and without the lock while the set is not frozen.
		if !final || len(held) == 0 || held[0] <= 0 || s.releaseSolo(held[0]) {
			return
		}
		s.lock()
		s.freeze()
		s.settleLocked(-1, false, held, nil, true, refunded)
		s.unlock()
		return
	}
	rates, resources := s.settleHasWork(held, delta, final)
	s.settleWork(rates, resources, held, delta, final, refunded)
}

// settleWork is settle of a set that is not solo, told whether it changes a
// rate limit and whether it returns resources.
func (s *Set) settleWork(rates, resources bool, held, delta []int64, final bool, refunded []int64) {
	if !rates && !resources {
		return
	}
	t := int64(-1)
	if rates {
		t = now() // read before locking, to keep the critical section short
	}
	s.lock()
	s.settleLocked(t, rates, held, delta, final, refunded)
	s.mu.Unlock()
}

// settleLocked is settle under mu, at t (−1 when no rate limit changes):
// in one pass over the specs, it takes delta[i] more of every rate spec at
// t, or refunds −delta[i] where the algorithm refunds (into refunded, when
// not nil), and, when final, returns the resources of held.
func (s *Set) settleLocked(t int64, rates bool, held, delta []int64, final bool, refunded []int64) {
	if rates {
		s.catchUp(t)
	} else {
		delta = nil
	}
	if !final {
		held = nil
	}
	s.invalidate()
	// freed: a resource came back, or a refund, which may have filled the
	// fraction a waiter needs even when it gave back no whole unit.
	freed := false
	st := s.state()
	off := 0
	for i := range s.specs[:max(len(delta), len(held))] {
		sp := &s.specs[i]
		switch {
		case sp.Kind == backend.Resource:
			if i < len(held) && held[i] > 0 {
				n := held[i]
				s.addHeld(&s.block[off], -min(n, heldAt(&s.block[off]))) // never below 0, even if asked to return more than is held
				freed = true
			}
		case i >= len(delta) || delta[i] == 0:
		case delta[i] > 0:
			st.take(sp, i, off, t, delta[i])
		case !sp.Algorithm.Refunds(): // a SlidingWindow among them
			if refunded != nil {
				refunded[i] = 0
			}
		default:
			got := limitOf(sp).Refund(st.block[off:], t, -delta[i])
			freed = true
			if refunded != nil {
				refunded[i] = got
			}
		}
		off += widthOf(sp)
	}
	if freed && s.waiting() {
		if t < 0 {
			t = now()
		}
		s.serve(t)
	}
}

// catchUp serves the queue at t when the timer is late, before a change
// made at t: what came due before the change is granted first, dated as an
// on-time timer would have, so that the change does not push it back.
// Requires mu held.
func (s *Set) catchUp(t int64) {
	if s.x != nil && s.x.timerAt != 0 && s.x.timerAt <= t {
		s.serve(t)
	}
}

// holds reports whether held, one amount per spec, holds a resource.
func (s *Set) holds(held []int64) bool {
	for i, n := range held {
		if n > 0 && s.specs[i].Kind == backend.Resource {
			return true
		}
	}
	return false
}

// settleHasWork reports whether settle would change a rate limit or return
// resources, so that the common release of a call-only acquisition takes no
// lock and one that changes no rate limit reads no clock.
func (s *Set) settleHasWork(held, delta []int64, final bool) (rates, resources bool) {
	if !final {
		held = nil // only a final settle returns resources
	}
	// Either may be nil (no usage change; nothing held).
	specs := s.specs[:max(len(delta), len(held))]
	for i := range specs {
		if specs[i].Kind == backend.Rate {
			rates = rates || i < len(delta) && delta[i] != 0
		} else {
			resources = resources || i < len(held) && held[i] > 0
		}
	}
	return rates, resources
}

// stats implements Handle.Stats. A paused spec has nothing available
// until its pause ends.
func (s *Set) stats() []backend.SpecStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := now()
	out := make([]backend.SpecStats, len(s.specs))
	st := s.state()
	off := 0
	for i := range s.specs {
		sp := &s.specs[i]
		if sp.Kind == backend.Rate {
			out[i] = backend.SpecStats{Available: st.available(sp, i, off, t), Debt: st.debt(sp, i, off, t)}
		} else {
			held := heldAt(&st.block[off])
			out[i] = backend.SpecStats{Available: max(0, sp.Capacity-held), InUse: held}
		}
		if s.pausedUntil(i) > t {
			out[i].Available = 0
		}
		off += widthOf(sp)
	}
	return out
}

// idle implements Handle.Idle.
func (s *Set) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := now()
	if s.waiting() || s.x != nil && s.x.pausedEnd > t {
		return false
	}
	st := s.state()
	off := 0
	for i := range s.specs {
		sp := &s.specs[i]
		if sp.Kind == backend.Rate && st.available(sp, i, off, t) < sp.Capacity ||
			sp.Kind == backend.Resource && heldAt(&st.block[off]) != 0 {
			return false
		}
		off += widthOf(sp)
	}
	return true
}

// waiting reports whether requests wait in the queue. Requires mu held.
func (s *Set) waiting() bool { return s.x != nil && !s.x.waiters.empty() }

// head returns the first waiter of the queue, nil when none waits. Requires
// mu held.
func (s *Set) head() *waiter {
	if s.x == nil {
		return nil
	}
	return s.x.waiters.head()
}

// pausedUntil returns the instant a pause of spec i ends, 0 when it was
// never paused. Requires mu held.
func (s *Set) pausedUntil(i int) int64 {
	if s.x == nil || s.x.paused == nil {
		return 0
	}
	return s.x.paused[i]
}

// unlock releases mu, first letting a solo set's lock-free paths go on
// when nothing keeps them off (see thaw).
func (s *Set) unlock() {
	if s.solo() {
		s.thaw()
	}
	s.mu.Unlock()
}

// lock takes mu for the hot paths (acquire, settle). Under contention it
// first yields a few times rather than parking at once: sections are tens of
// nanoseconds, and with many goroutines per core parking and waking through
// the runtime's semaphore costs more than the wait (64 goroutines on 2 cores:
// TryAcquire+Release 356 -> 267 ns, the guide's cycle 789 -> 533 ns).
func (s *Set) lock() {
	for i := 0; !s.mu.TryLock(); i++ {
		if i >= 4 {
			s.mu.Lock()
			return
		}
		runtime.Gosched()
	}
}
