package worker

import (
	"context"
	"fmt"
)

// Worker is an actor: one goroutine that owns one T and runs the tasks
// submitted to it one at a time, in submission order, so T needs no locks. A
// Worker is a Pool of one worker; everything a Pool does, it does.
type Worker[T any] = Pool[T]

// NewWorker starts a single worker: NewPool with MaxWorkers 1 in Goroutine
// mode. opts.MaxWorkers must be 0 or 1 and opts.Mode Goroutine; anything
// else, or a nil factory, fails with ErrInvalidOptions before anything
// starts.
func NewWorker[T any](ctx context.Context, factory func(ctx context.Context) (T, error), opts Options) (*Worker[T], error) {
	if opts.MaxWorkers < 0 || opts.MaxWorkers > 1 || opts.Mode != Goroutine {
		return nil, fmt.Errorf("%w: a Worker has one goroutine worker (MaxWorkers %d, Mode %v)", ErrInvalidOptions, opts.MaxWorkers, opts.Mode)
	}
	if factory == nil {
		return nil, fmt.Errorf("%w: nil factory", ErrInvalidOptions)
	}
	opts.MaxWorkers = 1
	return NewPool(ctx, func(ctx context.Context, _ int) (T, error) { return factory(ctx) }, opts)
}
