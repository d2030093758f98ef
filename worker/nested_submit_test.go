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

// A task that submits to its own pool where the submission could only wait
// for the task itself gets ErrDeadlock at once instead of hanging, even when
// it would not wait for the result.
func TestSubmittingFromATaskToItsOwnFullWorkerFailsAtOnce(t *testing.T) {
	for _, c := range []struct {
		name   string
		opts   worker.Options
		before worker.Task[int, int] // submitted from the task first, with room
	}{
		{"Sync", worker.Options{Mode: worker.Sync}, nil},
		{"OnDemand of one", worker.Options{Mode: worker.OnDemand, MaxWorkers: 1}, nil},
		{"queue of one", worker.Options{MaxQueuedTasks: 1}, nil},
		{"queue of two, filled by the task", worker.Options{MaxQueuedTasks: 2}, index},
		{"own worker of two", worker.Options{MaxWorkers: 2, MaxQueuedTasks: 1}, index}, // before goes to worker 1
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPool(t, indexFactory, c.opts)
				var inner *worker.Future[int]
				start := time.Now()
				_, err := worker.Run(context.Background(), p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
					ctx = context.WithoutCancel(ctx) // so that the submissions could outlive this task
					if c.before != nil {
						if _, err := worker.Submit(ctx, p, c.before); err != nil {
							return 0, err
						}
					}
					var err error
					inner, err = worker.Submit(ctx, p, index)
					return 0, err
				})
				if !errors.Is(err, worker.ErrDeadlock) || inner != nil || time.Since(start) != 0 {
					t.Fatalf("nested Submit: %v after %v", err, time.Since(start))
				}
			})
		})
	}
}

func TestSubmittingFromATaskWithRoomRunsAfterIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, opts := range []worker.Options{{MaxQueuedTasks: 2}, {Mode: worker.OnDemand, MaxWorkers: 2}} {
			p := newCounterPool(t, opts)
			var inner *worker.Future[int]
			_, err := worker.Run(context.Background(), p, func(ctx context.Context, n *int, lim concurry.Limiter) (int, error) {
				var err error
				if inner, err = worker.Submit(context.WithoutCancel(ctx), p, counting); err != nil {
					return 0, err
				}
				return counting(ctx, n, lim)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := result(t, inner); opts.Mode == worker.Goroutine && got != 2 {
				t.Fatalf("inner task saw count %d, want 2: it runs after its submitter", got)
			}
		}
	})
}

// A nested Submit that waits for another worker honours its context.
func TestANestedSubmitToAnotherFullWorkerHonoursItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		p := newPool(t, indexFactory, worker.Options{MaxWorkers: 2, MaxQueuedTasks: 1})
		submit(t, p, blocker(release)) // worker 0, full
		start := time.Now()
		_, err := worker.Run(context.Background(), p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_, err := worker.Submit(ctx, p, index) // round robin: worker 0
			return 0, err
		})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Minute {
			t.Fatalf("nested Submit: %v after %v", err, time.Since(start))
		}
	})
}

// A task's context kept past the task's end no longer names it: a
// submission under it to the worker, full by then, waits for room like any
// other instead of failing with ErrDeadlock.
func TestAKeptContextOfAnEndedTaskWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{MaxQueuedTasks: 1})
		var kept context.Context
		result(t, submit(t, p, func(ctx context.Context, i int, _ concurry.Limiter) (int, error) {
			kept = context.WithoutCancel(ctx)
			return i, nil
		}))
		release := make(chan struct{})
		busy := submit(t, p, blocker(release))
		later := goSubmit(kept, p, index)
		synctest.Wait()
		if later.done.Load() {
			t.Fatalf("Submit returned while the worker was full: %v", later.err)
		}
		close(release)
		synctest.Wait()
		if !later.done.Load() || later.err != nil {
			t.Fatalf("Submit under a kept context: %v", later.err)
		}
		result(t, busy)
		result(t, later.f)
	})
}
