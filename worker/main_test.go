package worker_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newPool builds a pool and stops it when the test ends.
func newPool[T any](t testing.TB, factory func(context.Context, int) (T, error), opts worker.Options) *worker.Pool[T] {
	t.Helper()
	p, err := worker.NewPool(context.Background(), factory, opts)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return p
}

// indexFactory makes each worker's value its index.
func indexFactory(_ context.Context, i int) (int, error) { return i, nil }

// submit submits or fails the test.
func submit[T, R any](t testing.TB, p *worker.Pool[T], task worker.Task[T, R], opts ...worker.SubmitOption[R]) *worker.Future[R] {
	t.Helper()
	f, err := worker.Submit(context.Background(), p, task, opts...)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return f
}

// result waits for f or fails the test.
func result[R any](t testing.TB, f *worker.Future[R]) R {
	t.Helper()
	r, err := f.Result(context.Background())
	if err != nil {
		t.Fatalf("Result: %v", err)
	}
	return r
}

// index is a task returning the worker's value.
func index(_ context.Context, i int, _ concurry.Limiter) (int, error) { return i, nil }

// blocker is a task that waits until release is closed (or ctx ends).
func blocker(release <-chan struct{}) worker.Task[int, int] {
	return func(ctx context.Context, i int, _ concurry.Limiter) (int, error) {
		select {
		case <-release:
			return i, nil
		case <-ctx.Done():
			return i, ctx.Err()
		}
	}
}
