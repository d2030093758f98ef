package memory

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// Set is the state of one set of limits: an algorithm state per rate limit,
// a held count per resource limit, and the FIFO queue of blocked requests. Use
// it through a [Handle]. A Set is safe for concurrent use.
type Set struct {
	specs []backend.Spec

	mu      sync.Mutex
	rates   []algorithms.State // guarded by mu; nil for resource specs
	changed []int64            // guarded by mu; per rate spec, the latest instant its state was changed at
	held    []int64            // guarded by mu; units held per resource spec
	waiters waitQueue          // guarded by mu
	timer   *time.Timer        // guarded by mu; wakes the head waiter
	timerAt int64              // guarded by mu; instant timer is set for, 0 when idle
	// timerLate is added to every timer, to model a timer that fires late
	// (a busy machine); always 0 outside tests. Guarded by mu.
	timerLate time.Duration

	// The clock: Unix nanoseconds read as base plus the monotonic time
	// since base, which costs a fraction of a wall-clock read and never
	// jumps when the wall clock is adjusted.
	base     time.Time
	baseUnix int64
}

// NewSet returns a set of the given limits: every rate bucket full, every
// resource free. It panics when specs are outside the contract (see
// backend.CheckSpecs): callers validate them first, as Backend.Open does.
func NewSet(specs []backend.Spec) *Set {
	if err := backend.CheckSpecs(specs); err != nil {
		panic(fmt.Sprintf("memory: NewSet: %v", err))
	}
	base := time.Now()
	s := &Set{
		base:     base,
		baseUnix: base.UnixNano(),
		specs:    slices0(specs),
		rates:    make([]algorithms.State, len(specs)),
		changed:  make([]int64, len(specs)),
		held:     make([]int64, len(specs)),
	}
	for i, sp := range specs {
		if sp.Kind == backend.Rate {
			s.rates[i] = algorithms.New(sp.Algorithm, sp.Window, sp.Capacity)
			s.changed[i] = math.MinInt64
		}
	}
	return s
}

func slices0(specs []backend.Spec) []backend.Spec { return append([]backend.Spec(nil), specs...) }

// Specs returns the set's limits. The caller must not modify the slice.
func (s *Set) Specs() []backend.Spec { return s.specs }

// now returns the current instant in Unix nanoseconds.
func (s *Set) now() int64 { return s.baseUnix + int64(time.Since(s.base)) }

// readyAt returns the earliest instant ≥ t at which amounts fits the rate
// limits, and whether the resources it asks for are free now. With dated, it
// is the instant a grant can be dated at: each rate limit is asked no earlier
// than its latest change, since its state cannot take before that (an
// earlier instant would date the grant before a refund that made it
// possible). Requires mu held.
func (s *Set) readyAt(t int64, amounts []int64, dated bool) (ready int64, resourcesFree bool) {
	ready, resourcesFree = t, true
	for i, n := range amounts {
		if n <= 0 {
			continue
		}
		if r := s.rates[i]; r != nil {
			at := t
			if dated {
				at = max(t, s.changed[i])
			}
			ready = max(ready, r.Ready(at, n))
		} else if n > s.specs[i].Capacity-s.held[i] {
			resourcesFree = false
		}
	}
	return ready, resourcesFree
}

// projectedReady returns the earliest instant the rate limits could grant
// amounts if it joined the queue now: every waiter ahead is granted first, in
// order, each no earlier than the one before it. Releases and refunds may
// still make it earlier; resources are not projected. ready is the answer
// for an empty queue. Requires mu held.
func (s *Set) projectedReady(t, ready int64, amounts []int64) int64 {
	if s.waiters.empty() {
		return ready
	}
	rates := make([]algorithms.State, len(s.rates))
	for i, r := range s.rates {
		if r != nil {
			rates[i] = r.Clone()
		}
	}
	at := t
	for w := s.waiters.head(); w != nil; w = w.next {
		if w.claim != nil && w.claim.Taken() {
			continue
		}
		at = max(at, rateReady(rates, at, w.amounts))
		if at == algorithms.Never {
			return at
		}
		for i, n := range w.amounts {
			if rates[i] != nil && n > 0 {
				rates[i].Take(at, n)
			}
		}
	}
	return max(at, rateReady(rates, at, amounts))
}

// rateReady is the rate part of readyAt, over the given states.
func rateReady(rates []algorithms.State, t int64, amounts []int64) int64 {
	ready := t
	for i, n := range amounts {
		if r := rates[i]; r != nil && n > 0 {
			ready = max(ready, r.Ready(t, n))
		}
	}
	return ready
}

// take records amounts as granted at t. Requires mu held.
func (s *Set) take(t int64, amounts []int64) {
	for i, n := range amounts {
		if n <= 0 {
			continue
		}
		if r := s.rates[i]; r != nil {
			r.Take(t, n)
			s.changed[i] = max(s.changed[i], t)
		} else {
			s.held[i] += n
		}
	}
}

// acquire implements Handle.Acquire for waiters owned by h.
func (s *Set) acquire(ctx context.Context, h *Handle, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	t := s.now() // read before locking, to keep the critical section short
	s.lock()
	if h.closed {
		s.mu.Unlock()
		return 0, backend.ErrClosed
	}
	ready, free := s.readyAt(t, amounts, false)
	if s.waiters.empty() && ready == t && free && (opts.Claim == nil || opts.Claim.TryClaim()) {
		s.take(t, amounts)
		s.mu.Unlock()
		return 0, nil
	}
	if opts.Claim != nil && opts.Claim.Taken() {
		s.mu.Unlock()
		return 0, backend.ErrClaimed
	}
	if !opts.Wait {
		s.mu.Unlock()
		return 0, backend.ErrWouldBlock
	}
	if d, ok := ctx.Deadline(); ok {
		if ready = s.projectedReady(t, ready, amounts); ready > d.UnixNano() {
			s.mu.Unlock()
			return 0, errDeadline(ready)
		}
	}
	w := newWaiter(ctx, h, amounts, opts.Claim, t)
	s.waiters.push(w)
	if s.waiters.head() == w {
		s.serve(t)
	}
	s.mu.Unlock()
	return s.wait(ctx, w)
}

// wait blocks until w is granted or failed, or ctx ends.
func (s *Set) wait(ctx context.Context, w *waiter) (backend.Lease, error) {
	select {
	case <-w.done:
		return 0, w.err
	case <-ctx.Done():
	}
	t := s.now()
	s.lock()
	if s.timerAt != 0 && s.timerAt <= t {
		// Grants that came due before the timer ran go first; w's own
		// is one when its deadline was met (see grant).
		s.serve(t)
	}
	queued := w.queued // false once served or failed, with w.err set
	if queued && s.leave(w, t) {
		s.serve(t)
	}
	s.mu.Unlock()
	if queued {
		return 0, backend.ContextError(ctx)
	}
	return 0, w.err
}

// settle implements Handle.Settle.
func (s *Set) settle(held, delta []int64, final bool, refunded []int64) {
	rates, resources := s.settleHasWork(held, delta, final)
	if !rates && !resources {
		return
	}
	t := int64(-1)
	if rates {
		t = s.now() // read before locking, to keep the critical section short
	}
	s.lock()
	defer s.mu.Unlock()
	if rates && s.timerAt != 0 && s.timerAt <= t {
		// The timer is late: grant what came due before this change first,
		// dated as an on-time timer would have, so that the change does
		// not push them back.
		s.serve(t)
	}
	freed := false
	for i, d := range delta {
		r := s.rates[i]
		if r == nil || d == 0 {
			continue
		}
		s.changed[i] = max(s.changed[i], t)
		if d > 0 {
			r.Take(t, d)
			continue
		}
		got := r.Refund(t, -d)
		// Even a refund that gave back no whole unit may have filled the
		// fraction a waiter needs.
		freed = freed || s.specs[i].Algorithm.Refunds()
		if refunded != nil {
			refunded[i] = got
		}
	}
	if final {
		for i, n := range held {
			if s.rates[i] == nil && n > 0 {
				s.held[i] -= min(n, s.held[i]) // never below 0, even if asked to return more than is held
				freed = true
			}
		}
	}
	if freed && !s.waiters.empty() {
		if t < 0 {
			t = s.now()
		}
		s.serve(t)
	}
}

// settleHasWork reports whether settle would change a rate limit or return
// resources, so that the common release of a call-only acquisition takes no
// lock and one that changes no rate limit reads no clock.
func (s *Set) settleHasWork(held, delta []int64, final bool) (rates, resources bool) {
	for i, d := range delta {
		if d != 0 && s.rates[i] != nil {
			rates = true
			break
		}
	}
	if final {
		for i, n := range held {
			if n > 0 && s.rates[i] == nil {
				resources = true
				break
			}
		}
	}
	return rates, resources
}

// stats implements Handle.Stats.
func (s *Set) stats() []backend.SpecStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.now()
	out := make([]backend.SpecStats, len(s.specs))
	for i, sp := range s.specs {
		if r := s.rates[i]; r != nil {
			out[i].Available = r.Available(t)
		} else {
			out[i] = backend.SpecStats{Available: max(0, sp.Capacity-s.held[i]), InUse: s.held[i]}
		}
	}
	return out
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
