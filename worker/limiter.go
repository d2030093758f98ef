package worker

import (
	"context"

	"github.com/concurry/concurry"
)

// A task's scope is also the Limiter it receives: the worker's limiter,
// which also remembers every acquisition of the attempt so that whatever the
// task did not release is released when the attempt ends. So a failed
// attempt never holds resources through the wait before the next, even if
// it panicked. Each attempt of the task reuses it.

// inner returns the worker's limiter.
func (s *taskScope) inner() concurry.Limiter { return s.c.lims[s.index] }

// Acquire implements concurry.Limiter.
func (s *taskScope) Acquire(ctx context.Context, req concurry.Amounts) (*concurry.Acquisition, error) {
	a, err := s.inner().Acquire(ctx, req)
	if err == nil {
		s.track(a)
	}
	return a, err
}

// TryAcquire implements concurry.Limiter.
func (s *taskScope) TryAcquire(ctx context.Context, req concurry.Amounts) (*concurry.Acquisition, error) {
	a, err := s.inner().TryAcquire(ctx, req)
	if err == nil {
		s.track(a)
	}
	return a, err
}

// Do implements concurry.Limiter; Do releases by itself.
func (s *taskScope) Do(ctx context.Context, req concurry.Amounts, fn func(context.Context, *concurry.Acquisition) error) error {
	return s.inner().Do(ctx, req, fn)
}

func (s *taskScope) track(a *concurry.Acquisition) {
	mu := &s.c.slots[s.index].mu
	mu.Lock()
	if s.held == nil {
		s.held = s.buf[:0]
	}
	s.held = append(s.held, a)
	s.state.Or(scopeTracked)
	mu.Unlock()
}

// releaseAll releases what the attempt still holds. Release is idempotent,
// so acquisitions the task released itself are untouched.
func (s *taskScope) releaseAll() {
	if s.state.Load()&scopeTracked == 0 {
		return // the common case of a task that acquired nothing: no lock
	}
	var local [len(s.buf)]*concurry.Acquisition
	mu := &s.c.slots[s.index].mu
	mu.Lock()
	held := s.held
	if len(held) <= len(local) {
		held = local[:copy(local[:], held)] // buf may be reused at once
	}
	s.held = nil
	clear(s.buf[:])
	s.state.And(^uint32(scopeTracked))
	mu.Unlock()
	for _, a := range held {
		_ = a.Release() // a missing usage report is the task's bug; the resources go back regardless
	}
}

// Unwrap returns the limiter behind the lim a task receives: the worker's
// limiter, as [Pool.Limiter] returns it — Options.Limiter itself, the
// worker's private *concurry.LimitSet, its *concurry.LimitPool, or the empty
// *concurry.LimitSet of a pool without limits. A task uses it to read the
// limiter's Stats or to type-assert it:
//
//	if ls, ok := worker.Unwrap(lim).(*concurry.LimitSet); ok {
//		stats, err := ls.Stats(ctx)
//	}
//
// Acquisitions made on the unwrapped limiter are not released for the task
// when its attempt ends. Unwrap returns any other limiter as it is.
func Unwrap(lim concurry.Limiter) concurry.Limiter {
	if s, ok := lim.(*taskScope); ok {
		return s.inner()
	}
	return lim
}
