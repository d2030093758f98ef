package worker

import (
	"context"

	"github.com/concurry/concurry"
)

// New builds a pool for tasks that need no value of their own — only limits,
// retries and a bounded number running at once: NewPool with a factory of
// struct{}. Write its tasks with [Func]:
//
//	p, err := worker.New(ctx, worker.Options{MaxWorkers: 8, Limiter: limits})
//	text, err := worker.Run(ctx, p, worker.Func(func(ctx context.Context, lim concurry.Limiter) (string, error) {
//		return complete(ctx, lim, prompt)
//	}))
//
// Options are those of NewPool; invalid ones fail with ErrInvalidOptions
// before anything starts.
func New(ctx context.Context, opts Options) (*Pool[struct{}], error) {
	return NewPool(ctx, func(context.Context, int) (struct{}, error) { return struct{}{}, nil }, opts)
}

// Func turns fn into a task of a pool made by [New], which has no value to
// give it. A nil fn gives a nil task, which Submit refuses.
func Func[R any](fn func(ctx context.Context, lim concurry.Limiter) (R, error)) Task[struct{}, R] {
	if fn == nil {
		return nil
	}
	return func(ctx context.Context, _ struct{}, lim concurry.Limiter) (R, error) { return fn(ctx, lim) }
}
