package worker_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"

	"github.com/concurry/concurry/internal/testutil"
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

// Stop racing the ends of tasks: a task's context kept past its end ends
// all the same, whether it was made before the end, while the task ended or
// after, and whether Stop's halt or the task's end came first; its cause is
// context.Canceled or ErrStopped, and the one first seen is the one it
// keeps.
func TestKeptContextsEndWhenStopRacesTheirTasks(t *testing.T) {
	for round := range 40 {
		p, err := worker.NewPool(context.Background(), indexFactory, worker.Options{MaxWorkers: 2, MaxQueuedTasks: -1})
		if err != nil {
			t.Fatal(err)
		}
		kept := make(chan context.Context, 400)
		type seen struct {
			ctx   context.Context
			cause error
		}
		causes := make(chan seen, 400)
		var makers sync.WaitGroup
		task := func(ctx context.Context, i int, _ concurry.Limiter) (int, error) {
			kept <- ctx
			if len(kept)%3 == 0 {
				_ = ctx.Done() // made by the task, before its end
			}
			if len(kept)%2 == 0 { // made by another goroutine, as the task ends
				makers.Go(func() {
					<-ctx.Done()
					causes <- seen{ctx, context.Cause(ctx)}
				})
			}
			return i, nil
		}
		var submitters sync.WaitGroup
		for range 2 {
			submitters.Go(func() {
				for range 200 {
					if _, err := worker.Submit(context.Background(), p, task); err != nil {
						if !errors.Is(err, worker.ErrStopped) {
							t.Errorf("Submit: %v", err)
						}
						return
					}
				}
			})
		}
		for len(kept) < 20*(round%5+1) {
			runtime.Gosched()
		}
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		submitters.Wait()
		testutil.WaitOrFail(t, &makers, "a task's context made as the task ended never ended")
		close(kept)
		close(causes)
		for ctx := range kept {
			select {
			case <-ctx.Done():
			default:
				t.Fatal("a kept context of an ended task has not ended")
			}
			if c := context.Cause(ctx); c != context.Canceled && c != worker.ErrStopped {
				t.Fatalf("cause %v", c)
			}
		}
		for c := range causes {
			if later := context.Cause(c.ctx); later != c.cause {
				t.Fatalf("cause %v, then %v", c.cause, later)
			}
		}
	}
}
