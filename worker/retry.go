package worker

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/concurry/concurry"
)

// DefaultRetryOn is the RetryOn of a pool whose Options.RetryOn is nil. It
// retries every error except those a retry can never cure, which match with
// errors.Is:
//   - a request the limits can never grant: concurry.ErrInvalidRequest,
//     ErrExceedsCapacity, ErrUnknownKey, ErrInvalidLimit;
//   - limits that are gone: concurry.ErrClosed, ErrLimitMismatch,
//     ErrNameRequired, ErrReleased;
//   - a bug: ErrPanic (a panic), ErrGoexit, ErrInvalidOptions, ErrDeadlock;
//   - an ended context: context.Canceled, context.DeadlineExceeded (even of
//     a context the task made itself), ErrStopped.
//
// Busy limits (concurry.ErrWouldBlock), an unavailable backend, a lost lease
// and every error of the task's own are retried. To extend the rule, call it
// from a RetryOn of your own.
func DefaultRetryOn(err error) bool {
	for _, permanent := range permanentErrors {
		if errors.Is(err, permanent) {
			return false
		}
	}
	return true
}

// permanentErrors are the errors DefaultRetryOn does not retry.
var permanentErrors = []error{
	concurry.ErrInvalidRequest, concurry.ErrExceedsCapacity, concurry.ErrUnknownKey, concurry.ErrInvalidLimit,
	concurry.ErrClosed, concurry.ErrLimitMismatch, concurry.ErrNameRequired, concurry.ErrReleased,
	ErrPanic, ErrGoexit, ErrInvalidOptions, ErrDeadlock,
	context.Canceled, context.DeadlineExceeded, ErrStopped,
}

// RetryOnErrors returns a RetryOn predicate that retries errors matching any
// of targets with errors.Is.
func RetryOnErrors(targets ...error) func(error) bool {
	return func(err error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
}

// RetryOnType returns a RetryOn predicate that retries errors whose tree
// holds an error of type E, as errors.As finds it.
func RetryOnType[E error]() func(error) bool {
	return func(err error) bool {
		var target E
		return errors.As(err, &target)
	}
}

// sleep waits d, or fails when ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctxErr(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

// backoff returns the wait before the given retry (1 for the first), after
// the error err of the attempt before it.
func (o *Options) backoff(retry int, err error) time.Duration {
	b := o.RetryWait
	var w time.Duration
	switch o.RetryAlgorithm {
	case Exponential:
		w = maxDuration
		if retry-1 < 62 {
			w = mulSat(b, 1<<(retry-1))
		}
	case Linear:
		w = mulSat(b, int64(retry))
	case Fibonacci:
		w = mulSat(b, fib(retry))
	default:
		w = b
	}
	if o.RetryMaxWait > 0 {
		w = min(w, o.RetryMaxWait)
	}
	if s := float64(w) * o.RetryJitter; s >= 1 {
		span := int64(w) // float64(w) may round up to 2^63, which no int64 holds
		if s < float64(w) {
			span = int64(s)
		}
		w -= time.Duration(rand.Int64N(span))
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		w = max(w, ra.Wait)
	}
	return w
}

// mulSat returns d·k, or the longest duration when that overflows.
func mulSat(d time.Duration, k int64) time.Duration {
	if k <= 0 || d <= 0 {
		return 0
	}
	if d > maxDuration/time.Duration(k) {
		return maxDuration
	}
	return d * time.Duration(k)
}

// fib returns the k-th term of 1, 2, 3, 5, 8, …, saturating.
func fib(k int) int64 {
	a, b := int64(1), int64(2)
	for ; k > 1; k-- {
		if b > (1<<62)/2 {
			return 1 << 62
		}
		a, b = b, a+b
	}
	return a
}
