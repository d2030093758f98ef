package worker_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

// exiter is a task that ends its goroutine with runtime.Goexit, as t.FailNow
// does.
func exiter(context.Context, *int, concurry.Limiter) (int, error) {
	runtime.Goexit()
	return 0, nil
}

// counting is a task that counts its runs in the worker's value.
func counting(_ context.Context, n *int, _ concurry.Limiter) (int, error) {
	*n++
	return *n, nil
}

func newCounterPool(t *testing.T, opts worker.Options) *worker.Pool[*int] {
	return newPool(t, func(context.Context, int) (*int, error) { return new(int), nil }, opts)
}

func TestGoexitInATaskFailsItsFutureAndTheWorkerLivesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p, _ := worker.NewPool(context.Background(), func(context.Context, int) (*int, error) { return new(int), nil }, worker.Options{})
		first := submit(t, p, counting)
		gate := submit(t, p, func(context.Context, *int, concurry.Limiter) (int, error) { <-release; return 0, nil })
		exited := submit(t, p, exiter)
		behind := submit(t, p, counting) // queued behind the task that exits
		close(release)
		_, err := exited.Result(context.Background())
		if !errors.Is(err, worker.ErrGoexit) || !strings.Contains(err.Error(), "exiter") {
			t.Fatalf("err = %v, want ErrGoexit with the stack of the task", err)
		}
		if n := result(t, behind); n != 2 || result(t, first) != 1 || result(t, gate) != 0 {
			t.Fatalf("the task behind saw count %d, want 2: the worker's value is kept", n)
		}
		if n := result(t, submit(t, p, counting)); n != 3 {
			t.Fatalf("count %d after the Goexit, want 3", n)
		}
		if st := p.Stats().Workers[0]; st.Failed != 1 || st.Completed != 4 {
			t.Fatalf("stats %+v", st)
		}
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestGoexitNeverLeavesAFuturePendingAfterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, drain := range []bool{false, true} {
			p, _ := worker.NewPool(context.Background(), func(context.Context, int) (*int, error) { return new(int), nil },
				worker.Options{MaxWorkers: 2, DrainOnStop: drain, MaxQueuedTasks: -1})
			var futures []*worker.Future[int]
			for k := range 40 {
				task := counting
				if k%3 == 0 {
					task = exiter
				}
				futures = append(futures, submit(t, p, task))
			}
			if err := p.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			for k, f := range futures {
				if !f.Completed() {
					t.Fatalf("drain %v: future %d pending after Stop", drain, k)
				}
				err := f.Err()
				if !drain && errors.Is(err, worker.ErrStopped) {
					continue // not started before the Stop
				}
				if (k%3 == 0) != errors.Is(err, worker.ErrGoexit) || (k%3 != 0 && err != nil) {
					t.Fatalf("drain %v: future %d: %v", drain, k, err)
				}
			}
		}
	})
}

func TestGoexitInOnDemandAndSyncModes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		od := newCounterPool(t, worker.Options{Mode: worker.OnDemand, MaxWorkers: 1})
		if _, err := submit(t, od, exiter).Result(context.Background()); !errors.Is(err, worker.ErrGoexit) {
			t.Fatalf("OnDemand: %v", err)
		}
		if n := result(t, submit(t, od, counting)); n != 1 {
			t.Fatalf("OnDemand after Goexit: %d", n)
		}

		sync := newCounterPool(t, worker.Options{Mode: worker.Sync})
		done := make(chan struct{})
		go func() {
			defer close(done)
			worker.Submit(context.Background(), sync, exiter) // ends this goroutine, as it would the caller's
			t.Error("Submit returned after the task's Goexit")
		}()
		<-done
		if n := result(t, submit(t, sync, counting)); n != 1 {
			t.Fatalf("Sync after Goexit: %d", n)
		}
		if st := sync.Stats().Workers[0]; st.Failed != 1 || st.InFlight != 0 {
			t.Fatalf("Sync stats %+v", st)
		}
	})
}

func TestGoexitInCallbacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newCounterPool(t, worker.Options{NumRetries: 3, RetryOn: func(error) bool { runtime.Goexit(); return true }})
		fail := func(context.Context, *int, concurry.Limiter) (int, error) { return 0, errFlaky }
		if _, err := submit(t, p, fail).Result(context.Background()); !errors.Is(err, worker.ErrGoexit) {
			t.Fatalf("Goexit in RetryOn: %v", err)
		}
		f := submit(t, p, counting, worker.RetryUntil(func(int) bool { runtime.Goexit(); return true }))
		if _, err := f.Result(context.Background()); !errors.Is(err, worker.ErrGoexit) {
			t.Fatalf("Goexit in RetryUntil: %v", err)
		}
		if n := result(t, submit(t, p, counting)); n != 2 {
			t.Fatalf("count %d, want 2", n)
		}
	})
}

func TestGoexitInTheFactoryOrCloseIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, err := worker.NewPool(context.Background(), func(context.Context, int) (int, error) {
			runtime.Goexit()
			return 0, nil
		}, worker.Options{MaxWorkers: 2})
		if !errors.Is(err, worker.ErrFactory) || !errors.Is(err, worker.ErrGoexit) {
			t.Fatalf("NewPool = %v", err)
		}
		p, err := worker.NewPool(context.Background(), func(context.Context, int) (goexitCloser, error) { return goexitCloser{}, nil }, worker.Options{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := p.Stop(context.Background()); !errors.Is(err, worker.ErrGoexit) || time.Since(start) != 0 {
			t.Fatalf("Stop = %v", err)
		}
	})
}

type goexitCloser struct{}

func (goexitCloser) Close() error {
	runtime.Goexit()
	return nil
}
