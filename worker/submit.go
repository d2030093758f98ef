package worker

import (
	"context"
	"errors"
	"io"

	"github.com/concurry/concurry"
)

// Task is the work submitted to a pool: it runs on a worker with that
// worker's value t and limiter lim, which is never nil. ctx is the context
// given to Submit, also ended with cause ErrStopped when the pool is stopped
// without draining.
//
// Every acquisition the task makes through lim is released when the attempt
// ends, at the latest; a retried task acquires its limits anew.
type Task[T, R any] func(ctx context.Context, t T, lim concurry.Limiter) (R, error)

// SubmitOption configures one submission. The type is sealed: use
// [RetryUntil].
type SubmitOption[R any] struct {
	until func(R) bool
}

// RetryUntil accepts a task's result only when ok returns true for it; a
// rejected result is retried like an error (RetryOn is not asked), and when
// the retries run out the task fails with a *RejectedError listing every
// rejected result. ok must be safe to call from the worker's goroutine.
func RetryUntil[R any](ok func(R) bool) SubmitOption[R] { return SubmitOption[R]{until: ok} }

// call is one submitted task and its future, in one allocation.
type call[T, R any] struct {
	Future[R]
	task  Task[T, R]
	ctx   context.Context // the submitter's; lives until the task starts
	until func(R) bool
	lim   attemptLimiter
	sctx  stopCtx
}

// job is a call whatever its result type, as a worker sees it.
type job[T any] interface {
	run(e *env[T])
}

// env is what a task runs with: its pool, a worker index and its counters,
// limiter and value. An OnDemand task has its own env, with the factory that
// builds its value.
type env[T any] struct {
	c       *core
	index   int
	st      *counters
	lim     concurry.Limiter
	t       T
	factory func(ctx context.Context, index int) (T, error) // OnDemand only
	release func()                                          // frees the task's slot; runs before its future completes
}

// Submit sends task to a worker of p chosen by p's balancing and returns its
// future. It blocks while that worker's queue is full (Options.MaxQueuedTasks)
// or, in OnDemand mode, while MaxWorkers tasks are alive, and fails with ctx's
// error if ctx ends first, or with ErrStopped once p is stopping. In Sync mode
// it runs task in the calling goroutine and returns a completed future.
//
// The task runs under ctx: if ctx ends before the task starts, the task does
// not run and its future fails with ctx's error. A task must not wait for a
// task it submits to its own worker, which runs only after it. Submit is safe
// for concurrent use.
func Submit[T, R any](ctx context.Context, p *Pool[T], task Task[T, R], opts ...SubmitOption[R]) (*Future[R], error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.stopped.Load() {
		return nil, ErrStopped
	}
	c := &call[T, R]{task: task, ctx: ctx}
	for _, o := range opts {
		if o.until != nil {
			c.until = o.until
		}
	}
	var err error
	switch p.opts.Mode {
	case Sync:
		err = p.runSync(ctx, c)
	case OnDemand:
		c.done = make(chan struct{})
		err = p.startOnDemand(ctx, c)
	default:
		c.done = make(chan struct{})
		err = p.enqueue(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	return &c.Future, nil
}

// Run submits task and waits for its result: the blocking form of Submit.
func Run[T, R any](ctx context.Context, p *Pool[T], task Task[T, R], opts ...SubmitOption[R]) (R, error) {
	f, err := Submit(ctx, p, task, opts...)
	if err != nil {
		var zero R
		return zero, err
	}
	return f.Result(ctx)
}

// run executes the call with its retries and completes its future.
func (c *call[T, R]) run(e *env[T]) {
	e.st.running.Add(1)
	ctx, release := taskContext(c.ctx, e.c.stop, &c.sctx)
	r, err := c.execute(ctx, e)
	if release != nil {
		release()
	}
	// c.sctx stays: a context derived from the task's may outlive the task
	// (net/http's transport does this) and still call its Done.
	c.ctx, c.task = nil, nil
	if err != nil {
		e.st.failed.Add(1)
	} else {
		e.st.completed.Add(1)
	}
	e.st.running.Add(-1)
	if e.release != nil {
		e.release() // so that whoever sees the future complete sees the slot free
	}
	if c.done == nil { // Sync: completed before Submit returns, no one waits yet
		c.val, c.err, c.completed, c.done = r, err, true, closedChan
		return
	}
	c.complete(r, err)
}

func (c *call[T, R]) execute(ctx context.Context, e *env[T]) (r R, err error) {
	if err := ctxErr(ctx); err != nil {
		return r, err
	}
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

// build calls the factory, turning a panic into an error.
func build[T any](ctx context.Context, factory func(context.Context, int) (T, error), index int) (t T, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = newPanicError(v)
		}
		if err != nil {
			err = wrapFactory(index, err)
		}
	}()
	return factory(ctx, index)
}

// closeValue closes a worker's value if it is an io.Closer.
func closeValue(t any) error {
	if c, ok := t.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
