package worker_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"

	"github.com/concurry/concurry/internal/testutil"
)

// Submissions from many goroutines to workers with small queues race the
// ends of their tasks, the waits for a free slot and a Stop: a worker goes
// idle and is woken without its lock, and takes its lock only when it is
// busy, full or stopping. Every Submit either fails with ErrStopped or
// returns a future that completes; no worker ever holds more unfinished
// tasks than its queue allows; the counters add up once the pool has
// stopped.
func TestSubmissionsRaceTaskEndsAndStop(t *testing.T) {
	cases := []struct {
		workers, queue int
		drain          bool
	}{
		{1, 1, true}, {1, 1, false}, {1, 2, true}, {2, 1, false}, {3, 3, true}, {1, -1, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("workers=%d/queue=%d/drain=%v", tc.workers, tc.queue, tc.drain), func(t *testing.T) {
			for round := range 20 {
				raceSubmissions(t, tc.workers, tc.queue, tc.drain, round%2 == 0)
			}
		})
	}
}

// raceSubmissions runs one round: with stopEarly, Stop races the
// submissions; without, every future must complete before Stop, so that a
// task left in a queue nobody looks at shows.
func raceSubmissions(t *testing.T, workers, queue int, drain, stopEarly bool) {
	p, err := worker.NewPool(context.Background(), indexFactory,
		worker.Options{MaxWorkers: workers, MaxQueuedTasks: queue, DrainOnStop: drain})
	if err != nil {
		t.Fatal(err)
	}
	// accepted counts Submit calls that returned a future, after they did;
	// ended counts tasks, before they return (before their slot is free).
	// So accepted − ended, read in that order, never exceeds the tasks
	// holding a slot, as long as every task runs (a draining Stop).
	var accepted, ended, overfull atomic.Int64
	task := func(_ context.Context, i int, _ concurry.Limiter) (int, error) {
		if ended.Load()%3 == 0 {
			runtime.Gosched() // let submitters find the worker busy
		}
		ended.Add(1)
		return i, nil
	}
	const submitters, each = 6, 300
	var futures [submitters][]*worker.Future[int]
	var wg sync.WaitGroup
	for s := range submitters {
		wg.Go(func() {
			for range each {
				f, err := worker.Submit(context.Background(), p, task)
				if errors.Is(err, worker.ErrStopped) {
					return
				}
				if err != nil {
					t.Errorf("Submit: %v", err)
					return
				}
				futures[s] = append(futures[s], f)
				if accepted.Add(1)-ended.Load() > int64(workers*queue) && queue > 0 && drain {
					overfull.Add(1)
				}
			}
		})
	}
	if stopEarly {
		deadline := time.Now().Add(10 * time.Second)
		for accepted.Load() < submitters*each/3 {
			if time.Now().After(deadline) {
				t.Fatal("the submissions made no progress")
			}
			runtime.Gosched()
		}
	} else {
		testutil.WaitOrFail(t, &wg, "a Submit never returned")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for s := range futures {
			for _, f := range futures[s] {
				if _, err := f.Result(ctx); err != nil {
					t.Fatalf("before Stop: %v", err)
				}
			}
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(context.Background()) }()
	testutil.WaitOrFail(t, &wg, "a Submit never returned")
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop never returned")
	}
	if n := overfull.Load(); n > 0 {
		t.Errorf("%d times a worker held more than %d unfinished tasks", n, queue)
	}
	var total, failed int64
	for s := range futures {
		for _, f := range futures[s] {
			if !f.Completed() {
				t.Fatal("a future of a stopped pool has not completed")
			}
			if _, err := f.Result(context.Background()); err != nil {
				if !drain && errors.Is(err, worker.ErrStopped) {
					failed++
				} else {
					t.Errorf("Result: %v", err)
				}
			}
			total++
		}
	}
	var dispatched, completed, failedSt int64
	for _, st := range p.Stats().Workers {
		if st.Queued != 0 || st.InFlight != 0 {
			t.Errorf("worker %d after Stop: %+v", st.Index, st)
		}
		dispatched += st.Dispatched
		completed += st.Completed
		failedSt += st.Failed
	}
	if dispatched != total || completed != total-failed || failedSt != failed {
		t.Errorf("stats: dispatched %d, completed %d, failed %d; futures %d, of which failed %d",
			dispatched, completed, failedSt, total, failed)
	}
}
