package worker

import (
	"context"
	"fmt"
)

// SubmitOption configures one submission. The type is sealed: use
// [RetryUntil].
type SubmitOption[R any] struct {
	until func(R) bool
}

// RetryUntil accepts a task's result only when ok returns true for it; a
// rejected result is retried like an error (RetryOn is not asked), and when
// the retries run out the task fails with a *RejectedError listing every
// rejected result. A panic in ok rejects the result; the *RejectedError
// keeps the panic. ok must be safe to call from the worker's goroutine.
func RetryUntil[R any](ok func(R) bool) SubmitOption[R] { return SubmitOption[R]{until: ok} }

// Submit sends task to a worker of p chosen by p's balancing and returns its
// future. It blocks while that worker's queue is full (Options.MaxQueuedTasks)
// or, in OnDemand mode, while MaxWorkers tasks are alive, and fails with ctx's
// error if ctx ends first, or with ErrStopped once p is stopping. In Sync mode
// it runs task in the calling goroutine and returns a completed future. A nil
// p or task fails with ErrInvalidOptions.
//
// The task runs under ctx: if ctx ends before the task starts, the task does
// not run and its future fails with ctx's error. A task may submit to its own
// pool with its ctx, or a context derived from it (context.WithoutCancel(ctx)
// lets the new task outlive the one submitting it). When such a submission
// could only wait for the submitting task itself — in Sync mode; to its own
// worker when that worker's queue is full; to an OnDemand pool of one
// worker — Submit fails at once with ErrDeadlock. A task must not wait for a
// task it submits to its own worker, which runs only after it. Submit is safe
// for concurrent use.
func Submit[T, R any](ctx context.Context, p *Pool[T], task Task[T, R], opts ...SubmitOption[R]) (*Future[R], error) {
	if p == nil || task == nil {
		return nil, fmt.Errorf("%w: Submit needs a pool and a task, not nil", ErrInvalidOptions)
	}
	f := newFuture[R](p.parkers)
	c := &call[T, R]{future: f, task: task, scope: taskScope{parent: ctx, c: &p.core}}
	if err := submit(ctx, p, c, opts); err != nil {
		return nil, err
	}
	return f, nil
}

// Run submits task and waits for its result: the blocking form of Submit.
// As no one else sees the future, the task's record holds it: a Run
// allocates once.
func Run[T, R any](ctx context.Context, p *Pool[T], task Task[T, R], opts ...SubmitOption[R]) (R, error) {
	if p == nil || task == nil {
		var zero R
		return zero, fmt.Errorf("%w: Run needs a pool and a task, not nil", ErrInvalidOptions)
	}
	c := &callWithFuture[T, R]{call: call[T, R]{task: task, scope: taskScope{parent: ctx, c: &p.core}}}
	c.future, c.f.parkers = &c.f, p.parkers
	if err := submit(ctx, p, &c.call, opts); err != nil {
		var zero R
		return zero, err
	}
	return c.f.Result(ctx)
}

// callWithFuture is a call and its future in one allocation, for Run.
type callWithFuture[T, R any] struct {
	call[T, R]
	f Future[R]
}

// submit hands c, made with its future, task, context and pool in one
// literal (so that no write needs a barrier), to p as its mode says. On
// error the future is dropped unseen.
func submit[T, R any](ctx context.Context, p *Pool[T], c *call[T, R], opts []SubmitOption[R]) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.stopped.Load() {
		return ErrStopped
	}
	for _, o := range opts {
		if o.until != nil {
			c.until = o.until
		}
	}
	switch p.opts.Mode {
	case Sync:
		if p.ownTask(ctx) != nil {
			return ErrDeadlock // the caller holds the pool's only worker
		}
		return p.runSync(ctx, c)
	case OnDemand:
		return p.startOnDemand(ctx, c, p.opts.MaxWorkers == 1 && p.ownTask(ctx) != nil)
	default:
		return p.enqueue(ctx, c)
	}
}

// ownTask returns the running task of p whose context ctx is or derives
// from, or nil.
func (p *Pool[T]) ownTask(ctx context.Context) *taskScope {
	own := ownerOf(ctx)
	if own != nil && own.c != &p.core {
		return nil // a task of another pool
	}
	return own
}
