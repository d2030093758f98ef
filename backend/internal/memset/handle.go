package memset

import (
	"context"
	"sync/atomic"

	"github.com/concurry/concurry/backend"
)

// Handle is one user's view of a [Set]: it implements backend.Set, and
// closing it wakes only the waiters that came through it. A Handle is safe for
// concurrent use.
type Handle struct {
	s *Set
	// onClose points to the func that runs once when the handle is closed
	// (noClose when it was given none); nil once the handle is closed,
	// which is how a closed handle is told, in two words per handle. It is
	// written under s.mu and read atomically, since the lock-free path of
	// a solo set (see acquireSolo) reads it without s.mu.
	onClose atomic.Pointer[func()]
}

var (
	_ backend.Set       = (*Handle)(nil)
	_ backend.Releaser  = (*Handle)(nil)
	_ backend.Feedback  = (*Handle)(nil)
	_ backend.Idler     = (*Handle)(nil)
	_ backend.LeaseFree = (*Handle)(nil)

	_ backend.LeadGranter = (*Handle)(nil)
)

// Handle returns a new handle on s; onClose, when not nil, runs once when the
// handle is closed.
func (s *Set) Handle(onClose func()) *Handle {
	h := &Handle{s: s}
	if onClose == nil {
		h.onClose.Store(&noClose)
	} else {
		h.onClose.Store(&onClose)
	}
	return h
}

// noClose is the onClose of a handle given none: one for every such
// handle, so that none allocates for it.
var noClose = func() {}

// closed reports whether h was closed.
func (h *Handle) closed() bool { return h.onClose.Load() == nil }

// Acquire implements backend.Set.
func (h *Handle) Acquire(ctx context.Context, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	return h.s.acquire(ctx, h, amounts, opts)
}

// Settle implements backend.Set. It never fails.
func (h *Handle) Settle(_ context.Context, _ backend.Lease, held, delta []int64, final bool, refunded []int64) error {
	h.s.settle(held, delta, final, refunded)
	return nil
}

// Release implements backend.Releaser: Settle with final true, without the
// refunded units. It never fails.
func (h *Handle) Release(_ context.Context, _ backend.Lease, held, delta []int64) error {
	h.s.settle(held, delta, true, nil)
	return nil
}

// leadSpecs is the most specs a set may have for GrantLead to grant.
const leadSpecs = 8

// GrantLead implements backend.LeadGranter: it grants at once what Acquire
// would grant at once, and keeps nothing of base. A set of more than
// leadSpecs specs, or with a SlidingWindow, always reports false.
func (h *Handle) GrantLead(base []int64, lead int, n int64) bool {
	var buf [leadSpecs]int64
	if len(base) > len(buf) {
		return false
	}
	return h.s.grantAtOnce(h, leadVector(&buf, base, lead, n))
}

// ReleaseLead implements backend.LeadGranter: Release of base with n at
// lead, and delta at lead alone.
func (h *Handle) ReleaseLead(base []int64, lead int, n, delta int64) int64 {
	var hb, d, refunded [leadSpecs]int64
	held := leadVector(&hb, base, lead, n) // base is at most leadSpecs long: GrantLead granted it
	k := len(held)
	d[lead] = delta
	s := h.s
	if s.solo() {
		s.settle(held, d[:k], true, refunded[:k])
		return 0 // a resource refunds nothing
	}
	// Only spec lead can change a rate limit: what settleHasWork would
	// find, without its pass over every spec.
	rates := delta != 0 && s.specs[lead].Kind == backend.Rate
	s.settleWork(rates, s.holds(held), held, d[:k], true, refunded[:k])
	return refunded[lead]
}

// leadVector writes base, with n at lead, into buf and returns it, as long
// as base.
func leadVector(buf *[leadSpecs]int64, base []int64, lead int, n int64) []int64 {
	v := buf[:len(base)]
	//lint:ignore S1001 a few words: the loop costs less than copy's call of memmove
	for i, m := range base {
		v[i] = m
	}
	v[lead] = n
	return v
}

// LeaseFree implements backend.LeaseFree: a set in memory keeps no lease,
// and returns only resources at release.
func (h *Handle) LeaseFree() bool { return true }

// Stats implements backend.Set. It never fails. Debt is reported for every
// algorithm, as the algorithms package's State.Debt counts it; a paused
// spec has nothing available until its pause ends.
func (h *Handle) Stats(context.Context) ([]backend.SpecStats, error) { return h.s.stats(), nil }

// Idle implements backend.Idler: it reports whether the set is as a new
// one would be: every rate limit full, no resource held, nobody waiting,
// no pause in force. It allocates nothing.
func (h *Handle) Idle() bool { return h.s.idle() }

// Close implements backend.Set: it fails the handle's waiters with
// backend.ErrClosed and every later Acquire through it.
func (h *Handle) Close() error {
	s := h.s
	s.mu.Lock()
	onClose := h.onClose.Load()
	if onClose == nil {
		s.mu.Unlock()
		return nil
	}
	h.onClose.Store(nil)
	t := now()
	headGone := false
	for w := s.head(); w != nil; {
		next := w.next
		if w.owner == h {
			headGone = s.leave(w, t) || headGone
			w.finish(backend.ErrClosed)
		}
		w = next
	}
	if headGone {
		s.serve(t)
	}
	s.unlock()
	(*onClose)()
	return nil
}
