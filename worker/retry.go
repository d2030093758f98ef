package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

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
		_, ok := errors.AsType[E](err)
		return ok
	}
}

// attempts runs the task until it succeeds or the retries run out, and
// returns what the last attempt returned, with the error that ended it.
func (c *call[T, R]) attempts(ctx context.Context, e *env[T], t T) (R, error) {
	o := &e.c.opts
	var rejected []R
	c.lim.inner = e.lim
	for retry := 0; ; retry++ {
		r, err := c.attempt(ctx, t)
		c.lim.releaseAll()
		switch {
		case err == nil && (c.until == nil || c.until(r)):
			return r, nil
		case err == nil:
			rejected = append(rejected, r)
			err = &RejectedError[R]{Results: rejected}
		case ctx.Err() != nil || (o.RetryOn != nil && !o.RetryOn(err)):
			return r, err
		}
		if retry == o.NumRetries {
			return r, err
		}
		if werr := sleep(ctx, o.backoff(retry+1, err)); werr != nil {
			return r, fmt.Errorf("%w; last attempt: %w", werr, err)
		}
		e.st.retried.Add(1)
	}
}

// attempt runs the task once, turning a panic into a *PanicError.
func (c *call[T, R]) attempt(ctx context.Context, t T) (r R, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = newPanicError(v)
		}
	}()
	return c.task(ctx, t, &c.lim)
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
	if span := int64(float64(w) * o.RetryJitter); span > 0 && span <= int64(w) {
		w -= time.Duration(rand.Int64N(span))
	}
	if ra, ok := errors.AsType[*RetryAfterError](err); ok {
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
