package memset

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
	// paused is, per spec, the instant a pause of it ends (Unix ns; 0 when
	// never paused), and pausedEnd the latest of them. Guarded by mu.
	paused    []int64
	pausedEnd int64
	// reported is, per rate spec, the newest asOf of an upstream report
	// Lower applied. Guarded by mu.
	reported []int64
	proj     projection // guarded by mu; the queue's projection, see projected
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
		panic(fmt.Sprintf("memset: NewSet: %v", err))
	}
	base := time.Now()
	s := &Set{
		base:     base,
		baseUnix: base.UnixNano(),
		specs:    slices0(specs),
		rates:    make([]algorithms.State, len(specs)),
		changed:  make([]int64, len(specs)),
		held:     make([]int64, len(specs)),
		paused:   make([]int64, len(specs)),
		reported: make([]int64, len(specs)),
	}
	for i, sp := range specs {
		if sp.Kind == backend.Rate {
			s.rates[i] = algorithms.New(sp.Algorithm, sp.Window, sp.Capacity)
			s.changed[i] = math.MinInt64
			s.reported[i] = math.MinInt64
		}
	}
	return s
}

func slices0(specs []backend.Spec) []backend.Spec { return append([]backend.Spec(nil), specs...) }

// Specs returns the set's limits. The caller must not modify the slice.
func (s *Set) Specs() []backend.Spec { return s.specs }

// now returns the current instant in Unix nanoseconds.
func (s *Set) now() int64 { return s.baseUnix + int64(time.Since(s.base)) }

// take records amounts as granted at t. Requires mu held.
func (s *Set) take(t int64, amounts []int64) {
	s.invalidate()
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
		report(opts.Report, false, -1)
		return 0, backend.ErrClosed
	}
	f := s.fitAt(t, amounts, false)
	if s.waiters.empty() && f.grantable(t) && (opts.Claim == nil || opts.Claim.TryClaim()) {
		s.take(t, amounts)
		s.mu.Unlock()
		report(opts.Report, false, -1)
		return 0, nil
	}
	return s.acquireSlow(ctx, h, t, f, amounts, opts)
}

// acquireSlow is acquire for a request that cannot be granted at once, of
// fit f at t: it fails, or queues the request and waits. A refusal carries
// its facts (see refusal), projected through the waiters ahead. Requires mu
// held; it unlocks.
func (s *Set) acquireSlow(ctx context.Context, h *Handle, t int64, f fit, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	blocker := s.blocker(f)
	var err error
	switch queued := !s.waiters.empty(); {
	case opts.Claim != nil && opts.Claim.Taken():
		err = backend.ErrClaimed
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
		s.mu.Unlock()
		report(opts.Report, false, blocker)
		return 0, err
	}
	w := newWaiter(ctx, h, amounts, opts.Claim, t)
	w.blocker = blocker
	s.waiters.push(w)
	s.joined(w)
	if s.waiters.head() == w {
		s.serve(t)
	}
	s.mu.Unlock()
	report(opts.Report, true, blocker)
	if opts.OnWait != nil {
		s.notifyWait(w, opts.OnWait, blocker)
	}
	lease, err := s.wait(ctx, w)
	if opts.Report != nil {
		opts.Report.Duration = time.Duration(s.now() - t)
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
	if rates {
		s.catchUp(t)
	}
	s.invalidate()
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

// catchUp serves the queue at t when the timer is late, before a change
// made at t: what came due before the change is granted first, dated as an
// on-time timer would have, so that the change does not push it back.
// Requires mu held.
func (s *Set) catchUp(t int64) {
	if s.timerAt != 0 && s.timerAt <= t {
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

// stats implements Handle.Stats. A paused spec has nothing available
// until its pause ends.
func (s *Set) stats() []backend.SpecStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.now()
	out := make([]backend.SpecStats, len(s.specs))
	for i, sp := range s.specs {
		if r := s.rates[i]; r != nil {
			out[i] = backend.SpecStats{Available: r.Available(t), Debt: r.Debt(t)}
		} else {
			out[i] = backend.SpecStats{Available: max(0, sp.Capacity-s.held[i]), InUse: s.held[i]}
		}
		if s.paused[i] > t {
			out[i].Available = 0
		}
	}
	return out
}

// idle implements Handle.Idle.
func (s *Set) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.waiters.empty() {
		return false
	}
	t := s.now()
	if s.pausedEnd > t {
		return false
	}
	for i, sp := range s.specs {
		if r := s.rates[i]; r != nil && r.Available(t) < sp.Capacity || s.held[i] != 0 {
			return false
		}
	}
	return true
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
