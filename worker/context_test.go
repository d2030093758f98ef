package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

// A context derived from a task's context may outlive the task, as
// net/http's transport's do; cancelling it later must be safe.
func TestDerivedContextOutlivesTask(t *testing.T) {
	ctx := context.Background()
	p, err := worker.NewPool(ctx, func(context.Context, int) (int, error) { return 0, nil }, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(ctx)
	later := make(chan context.CancelFunc, 1)
	derived := make(chan context.Context, 1)
	_, err = worker.Run(ctx, p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
		d, cancel := context.WithCancel(ctx)
		later <- cancel
		derived <- d
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Another task runs on the same worker in between.
	if _, err := worker.Run(ctx, p, func(context.Context, int, concurry.Limiter) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	d := <-derived
	(<-later)()
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the derived context did not end when cancelled")
	}
}
