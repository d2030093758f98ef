package worker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

func TestStopCancelsQueuedTasksAndRunningContexts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{MaxQueuedTasks: 2})
		var cause error
		running := submit(t, p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
			<-ctx.Done()
			cause = context.Cause(ctx)
			return 0, ctx.Err()
		})
		var ran atomic.Bool
		queued := submit(t, p, func(context.Context, int, concurry.Limiter) (int, error) { ran.Store(true); return 1, nil })
		blocked := goSubmit(context.Background(), p, index)
		synctest.Wait()

		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, err := running.Result(context.Background()); !errors.Is(err, context.Canceled) || cause != worker.ErrStopped {
			t.Fatalf("running task: %v, cause %v", err, cause)
		}
		if _, err := queued.Result(context.Background()); !errors.Is(err, worker.ErrStopped) || ran.Load() {
			t.Fatalf("queued task: %v, ran %v", err, ran.Load())
		}
		if !blocked.done.Load() || !errors.Is(blocked.err, worker.ErrStopped) {
			t.Fatalf("blocked Submit: %v", blocked.err)
		}
		if _, err := worker.Submit(context.Background(), p, index); !errors.Is(err, worker.ErrStopped) {
			t.Fatalf("Submit after Stop: %v", err)
		}
		if !p.Stats().Stopped {
			t.Fatal("Stats does not say stopped")
		}
	})
}

func TestStopEndsRetryWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{NumRetries: 5, RetryWait: time.Hour})
		f := submit(t, p, func(context.Context, int, concurry.Limiter) (int, error) { return 0, errFlaky })
		time.Sleep(time.Minute) // the task is waiting out its first retry
		start := time.Now()
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) != 0 {
			t.Fatalf("Stop took %v", time.Since(start))
		}
		_, err := f.Result(context.Background())
		if !errors.Is(err, worker.ErrStopped) || !errors.Is(err, errFlaky) {
			t.Fatalf("err = %v, want ErrStopped and the last attempt's error", err)
		}
	})
}

func TestRetryWaitsHonourTheTaskContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{RetryJitter: worker.NoJitter, NumRetries: 5, RetryWait: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
		defer cancel()
		n := 0
		start := time.Now()
		f, err := worker.Submit(ctx, p, func(context.Context, int, concurry.Limiter) (int, error) { n++; return 0, errFlaky })
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Result(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errFlaky) || n != 2 || time.Since(start) != 90*time.Minute {
			t.Fatalf("err = %v after %d attempts and %v", err, n, time.Since(start))
		}
	})
}

func TestStopDrainsWhenAsked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{RetryJitter: worker.NoJitter, MaxWorkers: 2, DrainOnStop: true, NumRetries: 1, RetryWait: time.Second})
		var futures []*worker.Future[int]
		for range 10 {
			n := 0
			futures = append(futures, submit(t, p, func(ctx context.Context, i int, _ concurry.Limiter) (int, error) {
				time.Sleep(time.Second)
				if n++; n == 1 {
					return 0, errFlaky // retried while draining
				}
				return i, ctx.Err()
			}))
		}
		start := time.Now()
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		// 5 tasks per worker, each 1s + 1s wait + 1s.
		if time.Since(start) != 15*time.Second {
			t.Fatalf("drained in %v, want 15s", time.Since(start))
		}
		if _, err := worker.Gather(context.Background(), futures); err != nil {
			t.Fatalf("a drained task failed: %v", err)
		}
	})
}

func TestStopWithAnEndingContextCancelsTheRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{DrainOnStop: true})
		var futures []*worker.Future[int]
		for range 5 {
			futures = append(futures, submit(t, p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
				select {
				case <-time.After(time.Minute):
					return 1, nil
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			}))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if err := p.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop = %v", err)
		}
		if err := p.Stop(context.Background()); err != nil { // waits for the cancelled rest
			t.Fatal(err)
		}
		_, pending, _ := worker.Wait(context.Background(), futures, worker.AllCompleted)
		if len(pending) != 0 {
			t.Fatal("futures left pending after Stop")
		}
		want := []error{nil, context.Canceled, worker.ErrStopped, worker.ErrStopped, worker.ErrStopped}
		for i, f := range futures {
			if err := f.Err(); (want[i] == nil) != (err == nil) || !errors.Is(err, want[i]) {
				t.Errorf("task %d: %v, want %v", i, err, want[i])
			}
		}
	})
}

func TestStopIsIdempotentAndConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{MaxWorkers: 4})
		errs := make(chan error, 3)
		for range 3 {
			go func() { errs <- p.Stop(context.Background()) }()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStopInEveryMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, mode := range []worker.Mode{worker.Goroutine, worker.Sync, worker.OnDemand} {
			p, err := worker.NewPool(context.Background(), indexFactory, worker.Options{Mode: mode, MaxWorkers: 1})
			if err != nil {
				t.Fatal(err)
			}
			if mode == worker.OnDemand {
				f := submit(t, p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
					<-ctx.Done()
					return 0, context.Cause(ctx)
				})
				synctest.Wait()
				if err := p.Stop(context.Background()); err != nil {
					t.Fatal(err)
				}
				if !errors.Is(f.Err(), worker.ErrStopped) {
					t.Fatalf("OnDemand task: %v", f.Err())
				}
			} else if err := p.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := worker.Submit(context.Background(), p, index); !errors.Is(err, worker.ErrStopped) {
				t.Fatalf("%v: Submit after Stop: %v", mode, err)
			}
		}
	})
}

func TestSyncModeTaskIsCancelledByStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{Mode: worker.Sync})
		res := make(chan error, 1)
		go func() {
			_, err := worker.Run(context.Background(), p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
				<-ctx.Done()
				return 0, context.Cause(ctx)
			})
			res <- err
		}()
		synctest.Wait()
		waiting := goSubmit(context.Background(), p, index) // waits for the running Sync task
		synctest.Wait()
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-res; !errors.Is(err, worker.ErrStopped) {
			t.Fatalf("Sync task: %v", err)
		}
		synctest.Wait()
		if !errors.Is(waiting.err, worker.ErrStopped) {
			t.Fatalf("waiting Sync Submit: %v", waiting.err)
		}
	})
}

func TestStopEndsATaskWaitingForLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conns, _ := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}})
		held, err := conns.Acquire(context.Background(), nil) // taken elsewhere, never released in time
		if err != nil {
			t.Fatal(err)
		}
		defer held.Release()
		p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{Limiter: conns})
		f := submit(t, p, func(ctx context.Context, _ int, lim concurry.Limiter) (int, error) {
			_, err := lim.Acquire(ctx, nil)
			return 0, err
		})
		time.Sleep(time.Hour)
		if f.Completed() {
			t.Fatal("the task did not wait for the connection")
		}
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := f.Err(); !errors.Is(err, worker.ErrStopped) && !errors.Is(err, context.Canceled) {
			t.Fatalf("task waiting on limits: %v", err)
		}
	})
}

// Stop without DrainOnStop fails every task not yet started with ErrStopped,
// also those submitted with a context that can end on its own: the stop must
// not wait for a goroutine that cancels each task's context.
func TestStopFailsQueuedTasksWhoseContextsCanEnd(t *testing.T) {
	release := make(chan struct{})
	p, err := worker.NewPool(context.Background(), indexFactory, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	busy := submit(t, p, blocker(release))
	var ran atomic.Int64
	futures := queueTimedTasks(t, p, &ran, 20)
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(release)
	if _, err := busy.Result(context.Background()); !errors.Is(err, worker.ErrStopped) && !errors.Is(err, context.Canceled) {
		t.Fatalf("running task: %v", err)
	}
	checkAllStopped(t, futures, &ran)
}

func TestADrainingStopThatTimesOutFailsTheTasksNotStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{DrainOnStop: true})
		busy := submit(t, p, blocker(nil)) // ends only with its context
		var ran atomic.Int64
		futures := queueTimedTasks(t, p, &ran, 20)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop = %v", err)
		}
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := busy.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("running task: %v", err)
		}
		checkAllStopped(t, futures, &ran)
	})
}

// queueTimedTasks submits n tasks, each with a context of its own that ends in
// an hour, counting in ran those that run.
func queueTimedTasks(t *testing.T, p *worker.Pool[int], ran *atomic.Int64, n int) []*worker.Future[int] {
	t.Helper()
	var futures []*worker.Future[int]
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		t.Cleanup(cancel)
		f, err := worker.Submit(ctx, p, func(context.Context, int, concurry.Limiter) (int, error) {
			ran.Add(1)
			return 1, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	return futures
}

func checkAllStopped(t *testing.T, futures []*worker.Future[int], ran *atomic.Int64) {
	t.Helper()
	for i, f := range futures {
		select {
		case <-f.Done():
		default:
			t.Fatalf("task %d still pending after Stop", i)
		}
		if err := f.Err(); !errors.Is(err, worker.ErrStopped) {
			t.Errorf("task %d: %v, want ErrStopped", i, err)
		}
	}
	if n := ran.Load(); n != 0 {
		t.Fatalf("%d queued tasks ran after Stop", n)
	}
}
