package worker

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/concurry/concurry"
)

// Task is the work submitted to a pool: it runs on a worker with that
// worker's value t and limiter lim, which is never nil. ctx is the context
// given to Submit, also ended with cause ErrStopped when the pool is stopped
// without draining, and ended when the task returns.
//
// lim is the worker's limiter (see [Pool.Limiter]) behind a thin wrapper:
// every acquisition the task makes through lim is released when the attempt
// ends, at the latest, and a retried task acquires its limits anew. [Unwrap]
// returns the limiter behind it, to read its Stats or to type-assert it to a
// *concurry.LimitSet or *concurry.LimitPool.
//
// A task that panics fails with a *PanicError; one that calls
// runtime.Goexit (as t.FailNow does) fails with an error matching ErrGoexit.
// Either way the worker, and its value, live on.
type Task[T, R any] func(ctx context.Context, t T, lim concurry.Limiter) (R, error)

// call is one submitted task: what it runs with, in one allocation, and the
// future it completes. The future does not point back, so a held future
// keeps none of this alive once the task has ended. The task's context and
// limiter are handed to the task, which may keep them, so a call is never
// reused.
type call[T, R any] struct {
	future *Future[R]
	task   Task[T, R]
	until  func(R) bool
	scope  taskScope // the task's context and limiter; its parent is the submitter's context
}

// job is a call whatever its result type, as a worker sees it.
type job[T any] interface {
	run(e *env[T])
}

// env is what a task runs with: its pool, a worker index and its counters,
// and its value; its limiter is the pool's of that index. An OnDemand task
// has its own env, with the factory that builds its value.
type env[T any] struct {
	c       *core
	index   int
	st      *counters
	t       T
	factory func(ctx context.Context, index int) (T, error) // OnDemand only
	release func()                                          // frees the task's slot; runs before its future completes
}

// run executes the call with its retries and completes its future. It does
// so even when the task, or a callback it runs, ends the goroutine with
// runtime.Goexit: the deferred function then still runs, with the task's
// frames on the stack.
//
// A task with one attempt and nothing to ask about its outcome (no
// factory, no retries, no RetryOn, no RetryUntil) runs without attempts'
// machinery: run's own deferred function turns its panic into a
// *PanicError, as attempt would.
func (c *call[T, R]) run(e *env[T]) {
	c.scope.begin(e.index)
	var r R
	var err error
	exited := true
	o := &e.c.opts
	once := e.factory == nil && c.until == nil && o.NumRetries == 0 && o.RetryOn == nil
	defer func() {
		if once {
			if v := recover(); v != nil {
				err, exited = newPanicError(v, "task"), false
			}
		}
		if exited {
			err = newGoexitError()
		}
		err = stoppedErr(&c.scope, err)
		c.scope.releaseAll() // already done unless the goroutine is exiting, or once
		c.scope.end()
		c.finish(e, r, err)
	}()
	// begin wrote the slot before halted reads halting, and halt writes
	// halting before it reads the slots: either halt ends this task's
	// context, or this task sees halt and does not run.
	if err = e.c.halted(c.scope.parent); err == nil {
		if once {
			r, err = c.task(&c.scope, e.t, &c.scope)
		} else {
			r, err = c.execute(&c.scope, e)
		}
	}
	exited = false
}

// stoppedErr returns err, marked as ErrStopped too when the pool's halt
// ended the task's context while it ran and the task returned that
// context's error (ctx.Err(), or an error wrapping it): ErrStopped's
// promise, whatever the task returns; errors.Is(err, context.Canceled)
// still holds.
func stoppedErr(s *taskScope, err error) error {
	if err != nil && s.state.Load()&ctxMask == ctxStopped && errors.Is(err, context.Canceled) && !errors.Is(err, ErrStopped) {
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	return err
}

// finish counts the task's end, frees its slot and completes its future.
func (c *call[T, R]) finish(e *env[T], r R, err error) {
	c.task, c.until = nil, nil
	if err != nil {
		e.st.failed.Add(1)
	} else {
		e.st.completed.Add(1)
	}
	if e.release != nil {
		e.release() // so that whoever sees the future complete sees the slot free
	}
	c.future.complete(r, err)
}

// execute builds the task's value in OnDemand mode, and runs the attempts.
func (c *call[T, R]) execute(ctx context.Context, e *env[T]) (r R, err error) {
	t := e.t
	if e.factory != nil {
		if t, err = build(ctx, e.factory, e.index); err != nil {
			return r, err
		}
		defer func() {
			if cerr := closeValue(t); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}()
	}
	return c.attempts(ctx, e, t)
}

// attempts runs the task until it succeeds or the retries run out, and
// returns what the last attempt returned, with the error that ended it.
func (c *call[T, R]) attempts(ctx context.Context, e *env[T], t T) (R, error) {
	o := &e.c.opts
	var rejected *RejectedError[R]
	for retry := 0; ; retry++ {
		r, err := c.attempt(ctx, t)
		c.scope.releaseAll()
		if err == nil {
			if c.until == nil {
				return r, nil
			}
			ok, perr := ask(c.until, r, "RetryUntil")
			if ok {
				return r, nil
			}
			if rejected == nil {
				rejected = &RejectedError[R]{}
			}
			rejected.Results = append(rejected.Results, r)
			if perr != nil {
				rejected.Panics = append(rejected.Panics, perr)
			}
			err = rejected
		} else if !retryable(ctx, o.RetryOn, &err) {
			return r, err
		}
		if retry == o.NumRetries {
			return r, err
		}
		werr := sleep(ctx, o.backoff(retry+1, err))
		if werr == nil {
			werr = e.c.halted(ctx)
		}
		if werr != nil {
			return r, fmt.Errorf("%w; last attempt: %w", werr, err)
		}
		e.st.retried.Add(1)
	}
}

// attempt runs the task once, turning a panic into a *PanicError.
func (c *call[T, R]) attempt(ctx context.Context, t T) (r R, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = newPanicError(v, "task")
		}
	}()
	return c.task(ctx, t, &c.scope)
}

// retryable reports whether the failed attempt's *err is worth a retry: never
// once ctx has ended; otherwise as retryOn says, DefaultRetryOn when nil. A
// panicking retryOn says no, and its *PanicError joins *err.
func retryable(ctx context.Context, retryOn func(error) bool, err *error) bool {
	if ctx.Err() != nil {
		return false
	}
	if retryOn == nil {
		return DefaultRetryOn(*err)
	}
	ok, perr := ask(retryOn, *err, "RetryOn")
	if perr != nil {
		*err = fmt.Errorf("%w; %w", *err, perr)
	}
	return ok
}

// ask calls the predicate pred, named name; a panic is a false answer, with
// the panic.
func ask[A any](pred func(A) bool, a A, name string) (ok bool, perr *PanicError) {
	defer func() {
		if v := recover(); v != nil {
			ok, perr = false, newPanicError(v, name)
		}
	}()
	return pred(a), nil
}

// build calls the factory, turning a panic into an error.
func build[T any](ctx context.Context, factory func(context.Context, int) (T, error), index int) (t T, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = newPanicError(v, "factory")
		}
		if err != nil {
			err = wrapFactory(index, err)
		}
	}()
	return factory(ctx, index)
}

// closeValue closes a worker's value if it is an io.Closer, turning a panic
// into a *PanicError.
func closeValue(t any) (err error) {
	c, ok := t.(io.Closer)
	if !ok {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			err = newPanicError(v, "Close")
		}
	}()
	return c.Close()
}

// contained calls fn in a goroutine of its own and returns its error, or an
// error matching ErrGoexit when fn calls runtime.Goexit, which would
// otherwise end the caller's goroutine. fn must contain its own panics.
func contained(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		exited := true
		defer func() {
			if exited {
				ch <- newGoexitError()
			}
		}()
		err := fn()
		exited = false
		ch <- err
	}()
	return <-ch
}
