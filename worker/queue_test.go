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

// submitter submits task from a goroutine of its own and reports when Submit
// has returned.
type submitter struct {
	done atomic.Bool
	f    *worker.Future[int]
	err  error
}

func goSubmit(ctx context.Context, p *worker.Pool[int], task worker.Task[int, int]) *submitter {
	s := &submitter{}
	go func() {
		s.f, s.err = worker.Submit(ctx, p, task)
		s.done.Store(true)
	}()
	return s
}

func TestSubmitBlocksWhileTheWorkerIsFullAndUnblocksInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := newPool(t, indexFactory, worker.Options{MaxQueuedTasks: 2})
		f1 := submit(t, p, blocker(release)) // running
		f2 := submit(t, p, blocker(release)) // queued
		synctest.Wait()
		if st := p.Stats().Workers[0]; st.QueueCapacity != 2 || st.InFlight != 1 || st.Queued != 1 {
			t.Fatalf("stats %+v", st)
		}
		third := goSubmit(context.Background(), p, blocker(release))
		synctest.Wait()
		if third.done.Load() {
			t.Fatal("the third Submit returned while the worker held 2 unfinished tasks")
		}
		fourth := goSubmit(context.Background(), p, index)
		synctest.Wait()
		close(release)
		synctest.Wait()
		if !third.done.Load() || !fourth.done.Load() || third.err != nil || fourth.err != nil {
			t.Fatalf("blocked submissions: %v, %v", third.err, fourth.err)
		}
		for _, f := range []*worker.Future[int]{f1, f2, third.f, fourth.f} {
			result(t, f)
		}
		if st := p.Stats().Workers[0]; st.Completed != 4 || st.Queued != 0 || st.InFlight != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestSubmitHonoursItsContextWhileBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		p := newPool(t, indexFactory, worker.Options{MaxQueuedTasks: 1})
		submit(t, p, blocker(release))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		_, err := worker.Submit(ctx, p, index)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 3*time.Second {
			t.Fatalf("Submit = %v after %v", err, time.Since(start))
		}
		if st := p.Stats().Workers[0]; st.Dispatched != 1 {
			t.Fatalf("a cancelled submission was counted: %+v", st)
		}
	})
}

func TestARetryIsNotANewSubmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{RetryJitter: worker.NoJitter, MaxQueuedTasks: 1, NumRetries: 3, RetryWait: time.Second, RetryAlgorithm: worker.Fixed})
		n := 0
		flaky := submit(t, p, func(context.Context, int, concurry.Limiter) (int, error) {
			if n++; n < 4 {
				return 0, errFlaky
			}
			return n, nil
		})
		start := time.Now()
		next, err := worker.Submit(context.Background(), p, index)
		if err != nil {
			t.Fatal(err)
		}
		// The slot frees only when the flaky task has finished, after its three retries.
		if waited := time.Since(start); waited != 3*time.Second {
			t.Fatalf("Submit waited %v, want 3s", waited)
		}
		if result(t, flaky) != 4 || result(t, next) != 0 {
			t.Fatal("wrong results")
		}
	})
}

func TestTheSlotFreesHoweverTheTaskEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{MaxQueuedTasks: 1})
		tasks := []worker.Task[int, int]{
			func(context.Context, int, concurry.Limiter) (int, error) { return 0, errFlaky },
			func(context.Context, int, concurry.Limiter) (int, error) { panic("bug") },
			index,
		}
		for _, task := range tasks {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			f, err := worker.Submit(ctx, p, task) // fails at the deadline if the slot is still taken
			if err != nil {
				t.Fatalf("Submit after a finished task: %v", err)
			}
			<-f.Done()
			cancel()
		}
		if st := p.Stats().Workers[0]; st.Failed != 2 || st.Completed != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestUnboundedQueueNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := newPool(t, indexFactory, worker.Options{MaxQueuedTasks: -1})
		var futures []*worker.Future[int]
		for range 1000 {
			futures = append(futures, submit(t, p, blocker(release)))
		}
		if st := p.Stats().Workers[0]; st.QueueCapacity != -1 || st.Queued+st.InFlight != 1000 {
			t.Fatalf("stats %+v", st)
		}
		close(release)
		if _, err := worker.Gather(context.Background(), futures); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEachWorkerHasItsOwnQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := newPool(t, indexFactory, worker.Options{MaxWorkers: 3, MaxQueuedTasks: 2})
		var futures []*worker.Future[int]
		for range 6 { // two per worker: every queue full, none blocks
			futures = append(futures, submit(t, p, blocker(release)))
		}
		seventh := goSubmit(context.Background(), p, index)
		synctest.Wait()
		if seventh.done.Load() {
			t.Fatal("Submit returned with every queue full")
		}
		close(release)
		synctest.Wait()
		if !seventh.done.Load() {
			t.Fatal("Submit still blocked")
		}
		futures = append(futures, seventh.f)
		if _, err := worker.Gather(context.Background(), futures); err != nil {
			t.Fatal(err)
		}
	})
}
