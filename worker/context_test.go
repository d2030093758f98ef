package worker_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
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

// A task's context is made on first use. Whatever ended it before then —
// the pool halting, the task returning — the task sees the same context as
// if it had been made at the start: ended with the same cause.
func TestTaskContextEndedBeforeFirstUse(t *testing.T) {
	t.Run("stopped", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{})
			release := make(chan struct{})
			type seen struct {
				err, cause error
				done       bool
			}
			var got seen
			f := submit(t, p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
				<-release // never touches ctx until the pool has stopped
				got.cause = context.Cause(ctx)
				got.err = ctx.Err()
				select {
				case <-ctx.Done():
					got.done = true
				default:
				}
				return 0, nil
			})
			synctest.Wait()
			stopped := make(chan error, 1)
			go func() { stopped <- p.Stop(context.Background()) }()
			synctest.Wait() // Stop has ended the task's context and waits for the task
			close(release)
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
			result(t, f)
			if got.cause != worker.ErrStopped || !errors.Is(got.err, context.Canceled) || !got.done {
				t.Fatalf("a stopped task's context first used after Stop: %+v", got)
			}
		})
	})
	t.Run("ended", func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{})
		kept := make(chan context.Context, 1)
		result(t, submit(t, p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
			if err := ctx.Err(); err != nil { // a live context answers without being made
				return 0, err
			}
			kept <- ctx
			return 0, nil
		}))
		ctx := <-kept
		if err, cause := ctx.Err(), context.Cause(ctx); err != context.Canceled || cause != context.Canceled {
			t.Fatalf("the context of a task that has returned: %v, cause %v", err, cause)
		}
		<-ctx.Done()
	})
}

// A task's context carries the submitter's values and deadline, and ends
// with the submitter's context, with its cause, whether it was made before
// or after.
func TestTaskContextFollowsTheSubmitters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{})
		type key struct{}
		deadline := time.Now().Add(time.Hour)
		parent, cancelParent := context.WithDeadline(context.WithValue(context.Background(), key{}, "v"), deadline)
		defer cancelParent()
		sub, cancel := context.WithCancelCause(parent)
		release := make(chan struct{})
		var cause error
		f, err := worker.Submit(sub, p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
			if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) || ctx.Value(key{}) != "v" {
				return 0, errors.New("the submitter's deadline or value is lost")
			}
			<-release
			<-ctx.Done()
			cause = context.Cause(ctx)
			return 0, ctx.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		cancel(errFlaky)
		close(release)
		if _, err := f.Result(context.Background()); !errors.Is(err, context.Canceled) || cause != errFlaky {
			t.Fatalf("task: %v, cause %v", err, cause)
		}
	})
}
