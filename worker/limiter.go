package worker

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/concurry/concurry"
)

// attemptLimiter is the Limiter a task receives: the worker's limiter, which
// also remembers every acquisition of the attempt so that whatever the task
// did not release is released when the attempt ends. So a failed attempt never
// holds resources through the wait before the next, even if it panicked.
// It lives inside the task's call and is reused by each attempt.
type attemptLimiter struct {
	inner concurry.Limiter

	tracked atomic.Bool // something was acquired since the last releaseAll
	mu      sync.Mutex
	held    []*concurry.Acquisition // guarded by mu
	buf     [inlineHeld]*concurry.Acquisition
}

// Acquire implements concurry.Limiter.
func (l *attemptLimiter) Acquire(ctx context.Context, req concurry.Amounts) (*concurry.Acquisition, error) {
	a, err := l.inner.Acquire(ctx, req)
	if err == nil {
		l.track(a)
	}
	return a, err
}

// TryAcquire implements concurry.Limiter.
func (l *attemptLimiter) TryAcquire(ctx context.Context, req concurry.Amounts) (*concurry.Acquisition, error) {
	a, err := l.inner.TryAcquire(ctx, req)
	if err == nil {
		l.track(a)
	}
	return a, err
}

// Do implements concurry.Limiter; Do releases by itself.
func (l *attemptLimiter) Do(ctx context.Context, req concurry.Amounts, fn func(context.Context, *concurry.Acquisition) error) error {
	return l.inner.Do(ctx, req, fn)
}

func (l *attemptLimiter) track(a *concurry.Acquisition) {
	l.mu.Lock()
	if l.held == nil {
		l.held = l.buf[:0]
	}
	l.held = append(l.held, a)
	l.tracked.Store(true)
	l.mu.Unlock()
}

// releaseAll releases what the attempt still holds. Release is idempotent,
// so acquisitions the task released itself are untouched.
func (l *attemptLimiter) releaseAll() {
	if !l.tracked.Load() {
		return // the common case of a task that acquired nothing: no lock
	}
	var local [inlineHeld]*concurry.Acquisition
	l.mu.Lock()
	held := l.held
	if len(held) <= len(local) {
		held = local[:copy(local[:], held)] // buf may be reused at once
	}
	l.held = nil
	clear(l.buf[:])
	l.tracked.Store(false)
	l.mu.Unlock()
	for _, a := range held {
		_ = a.Release() // a missing usage report is the task's bug; the resources go back regardless
	}
}

// inlineHeld is how many acquisitions an attempt tracks without allocating.
const inlineHeld = 2

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
	if l, ok := lim.(*attemptLimiter); ok {
		return l.inner
	}
	return lim
}
