package worker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

func TestSingleWorkerRunsTasksInOrderOnOneValue(t *testing.T) {
	type state struct{ seen []int } // no lock: only the worker's goroutine touches it
	builds := 0
	p := newPool(t, func(context.Context, int) (*state, error) { builds++; return &state{}, nil }, worker.Options{MaxQueuedTasks: -1})
	var last *worker.Future[[]int]
	for i := range 50 {
		last = submit(t, p, func(_ context.Context, s *state, _ concurry.Limiter) ([]int, error) {
			s.seen = append(s.seen, i)
			return slices.Clone(s.seen), nil
		})
	}
	got := result(t, last)
	if want := slices.Collect(func(yield func(int) bool) {
		for i := range 50 {
			yield(i)
		}
	}); !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	if builds != 1 {
		t.Fatalf("factory called %d times, want 1", builds)
	}
}

func TestRunIsTheBlockingForm(t *testing.T) {
	p := newPool(t, indexFactory, worker.Options{})
	got, err := worker.Run(context.Background(), p, func(_ context.Context, i int, _ concurry.Limiter) (string, error) {
		return fmt.Sprint("worker ", i), nil
	})
	if err != nil || got != "worker 0" {
		t.Fatalf("Run = %q, %v", got, err)
	}
	boom := errors.New("boom")
	if _, err := worker.Run(context.Background(), p, func(context.Context, int, concurry.Limiter) (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("Run error = %v, want boom", err)
	}
}

func TestFactoryGetsEachWorkerIndex(t *testing.T) {
	var mu sync.Mutex
	var got []int
	p := newPool(t, func(ctx context.Context, i int) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, i)
		return i, nil
	}, worker.Options{MaxWorkers: 4})
	slices.Sort(got)
	if !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("factory indices %v", got)
	}
	if n := len(p.Stats().Workers); n != 4 {
		t.Fatalf("%d workers", n)
	}
}

func TestFactoryErrorFailsNewPool(t *testing.T) {
	bad := errors.New("no credentials")
	_, err := worker.NewPool(context.Background(), func(_ context.Context, i int) (int, error) {
		if i == 2 {
			return 0, bad
		}
		return i, nil
	}, worker.Options{MaxWorkers: 4})
	if !errors.Is(err, worker.ErrFactory) || !errors.Is(err, bad) || !strings.Contains(err.Error(), "worker 2") {
		t.Fatalf("err = %v", err)
	}
	_, err = worker.NewPool(context.Background(), func(context.Context, int) (int, error) { panic("factory bug") }, worker.Options{Mode: worker.Sync})
	if !errors.Is(err, worker.ErrFactory) || !errors.Is(err, worker.ErrPanic) {
		t.Fatalf("panicking factory: err = %v", err)
	}
}

func TestPanicBecomesTheTaskErrorAndTheWorkerLivesOn(t *testing.T) {
	type counter struct{ n int }
	p := newPool(t, func(context.Context, int) (*counter, error) { return &counter{}, nil }, worker.Options{})
	f := submit(t, p, func(_ context.Context, c *counter, _ concurry.Limiter) (int, error) {
		c.n++
		var none []int
		return none[c.n], nil // panics: index out of range
	})
	_, err := f.Result(context.Background())
	var pe *worker.PanicError
	if !errors.Is(err, worker.ErrPanic) || !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *PanicError", err)
	}
	if !strings.Contains(string(pe.Stack), "TestPanicBecomesTheTaskError") {
		t.Fatalf("stack does not show the task:\n%s", pe.Stack)
	}
	var rerr interface{ RuntimeError() }
	if !errors.As(err, &rerr) {
		t.Fatalf("a runtime error panic should unwrap to it: %v", err)
	}
	n := result(t, submit(t, p, func(_ context.Context, c *counter, _ concurry.Limiter) (int, error) {
		c.n++
		return c.n, nil
	}))
	if n != 2 {
		t.Fatalf("the worker's value after the panic: n = %d, want 2", n)
	}
	if st := p.Stats().Workers[0]; st.Failed != 1 || st.Completed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSyncModeRunsInTheCallerAndReturnsACompletedFuture(t *testing.T) {
	p := newPool(t, indexFactory, worker.Options{Mode: worker.Sync})
	var ran atomic.Bool
	f := submit(t, p, func(context.Context, int, concurry.Limiter) (string, error) {
		ran.Store(true)
		return "done", nil
	})
	if !ran.Load() || !f.Completed() || f.Err() != nil {
		t.Fatalf("Sync future not complete on return: ran=%v", ran.Load())
	}
	select {
	case <-f.Done():
	default:
		t.Fatal("Done not closed")
	}
	if got := result(t, f); got != "done" {
		t.Fatalf("result %q", got)
	}
	if _, err := worker.NewPool(context.Background(), indexFactory, worker.Options{Mode: worker.Sync, MaxWorkers: 2}); !errors.Is(err, worker.ErrInvalidOptions) {
		t.Fatalf("Sync with 2 workers: %v", err)
	}
}

func TestSyncModeRunsOneTaskAtATime(t *testing.T) {
	p := newPool(t, func(context.Context, int) (*int, error) { return new(int), nil }, worker.Options{Mode: worker.Sync})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			submit(t, p, func(_ context.Context, n *int, _ concurry.Limiter) (int, error) {
				*n++ // the race detector proves these never overlap
				return *n, nil
			})
		})
	}
	wg.Wait()
	if st := p.Stats().Workers[0]; st.Completed != 20 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOnDemandBuildsAFreshValuePerTaskAndCapsAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var built, alive, peak atomic.Int64
		type val struct{ id int64 }
		p := newPool(t, func(context.Context, int) (*val, error) {
			return &val{id: built.Add(1)}, nil
		}, worker.Options{Mode: worker.OnDemand, MaxWorkers: 3, MaxQueuedTasks: 1})
		var futures []*worker.Future[*val]
		for range 12 {
			futures = append(futures, submit(t, p, func(_ context.Context, v *val, _ concurry.Limiter) (*val, error) {
				n := alive.Add(1)
				for {
					if m := peak.Load(); n <= m || peak.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(time.Second)
				alive.Add(-1)
				return v, nil
			}))
		}
		vals, err := worker.Gather(context.Background(), futures)
		if err != nil {
			t.Fatal(err)
		}
		if built.Load() != 12 || peak.Load() != 3 {
			t.Fatalf("built %d values, peak alive %d; want 12 and 3", built.Load(), peak.Load())
		}
		seen := map[*val]bool{}
		for _, v := range vals {
			seen[v] = true
		}
		if len(seen) != 12 {
			t.Fatalf("%d distinct values for 12 tasks", len(seen))
		}
		synctest.Wait() // the task goroutines free their slots after completing
		st := p.Stats()
		if st.Balancing != worker.Random || st.OnDemandAlive != 0 || st.Workers[0].QueueCapacity != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestOnDemandSubmitWaitsForASlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := newPool(t, indexFactory, worker.Options{Mode: worker.OnDemand, MaxWorkers: 2, Balancing: worker.RoundRobin})
		f0 := submit(t, p, blocker(release))
		f1 := submit(t, p, blocker(release))
		if got := p.Stats().OnDemandAlive; got != 2 {
			t.Fatalf("alive %d", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if _, err := worker.Submit(ctx, p, blocker(release)); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("Submit to a full OnDemand pool: %v after %v", err, time.Since(start))
		}
		close(release)
		if result(t, f0) != 0 || result(t, f1) != 1 {
			t.Fatal("RoundRobin should use indices 0 then 1")
		}
	})
}

func TestOnDemandClosesEachValueAndReportsFactoryErrors(t *testing.T) {
	var closed atomic.Int64
	p := newPool(t, func(_ context.Context, i int) (*closer, error) {
		return &closer{n: &closed}, nil
	}, worker.Options{Mode: worker.OnDemand, MaxWorkers: 2})
	for range 5 {
		result(t, submit(t, p, func(context.Context, *closer, concurry.Limiter) (int, error) { return 1, nil }))
	}
	if closed.Load() != 5 {
		t.Fatalf("closed %d values, want 5", closed.Load())
	}
	bad := errors.New("quota")
	q := newPool(t, func(context.Context, int) (int, error) { return 0, bad }, worker.Options{Mode: worker.OnDemand})
	_, err := submit(t, q, index).Result(context.Background())
	if !errors.Is(err, worker.ErrFactory) || !errors.Is(err, bad) {
		t.Fatalf("err = %v", err)
	}
}

type closer struct {
	n   *atomic.Int64
	err error
}

func (c *closer) Close() error {
	c.n.Add(1)
	return c.err
}

func TestStopClosesEveryWorkersValue(t *testing.T) {
	var n atomic.Int64
	bad := errors.New("close failed")
	p, err := worker.NewPool(context.Background(), func(_ context.Context, i int) (*closer, error) {
		c := &closer{n: &n}
		if i == 1 {
			c.err = bad
		}
		return c, nil
	}, worker.Options{MaxWorkers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(context.Background()); !errors.Is(err, bad) || n.Load() != 3 {
		t.Fatalf("Stop = %v, closed %d", err, n.Load())
	}
	s, _ := worker.NewPool(context.Background(), func(context.Context, int) (*closer, error) { return &closer{n: &n}, nil }, worker.Options{Mode: worker.Sync})
	if err := s.Stop(context.Background()); err != nil || n.Load() != 4 {
		t.Fatalf("Sync Stop = %v, closed %d", err, n.Load())
	}
}

func TestBalancing(t *testing.T) {
	dispatch := func(t *testing.T, b worker.Balancing, n int) []int {
		p := newPool(t, indexFactory, worker.Options{MaxWorkers: 3, Balancing: b})
		var got []int
		for range n {
			got = append(got, result(t, submit(t, p, index)))
		}
		return got
	}
	t.Run("RoundRobin", func(t *testing.T) {
		if got := dispatch(t, worker.DefaultBalancing, 7); !slices.Equal(got, []int{0, 1, 2, 0, 1, 2, 0}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("LeastTotal", func(t *testing.T) {
		if got := dispatch(t, worker.LeastTotal, 6); !slices.Equal(got, []int{0, 1, 2, 0, 1, 2}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("Random", func(t *testing.T) {
		counts := make([]int, 3)
		for _, i := range dispatch(t, worker.Random, 300) {
			counts[i]++
		}
		for i, c := range counts {
			if c < 50 {
				t.Fatalf("worker %d got %d of 300 tasks: %v", i, c, counts)
			}
		}
	})
	t.Run("LeastActive", func(t *testing.T) {
		release := make(chan struct{})
		p := newPool(t, indexFactory, worker.Options{MaxWorkers: 3, Balancing: worker.LeastActive})
		busy0 := submit(t, p, blocker(release)) // worker 0
		busy1 := submit(t, p, blocker(release)) // worker 1: 0 is busy
		if got := result(t, submit(t, p, index)); got != 2 {
			t.Fatalf("third task went to worker %d, want the idle 2", got)
		}
		if got := result(t, submit(t, p, index)); got != 2 {
			t.Fatalf("fourth task went to worker %d, want the idle 2", got)
		}
		close(release)
		if result(t, busy0) != 0 || result(t, busy1) != 1 {
			t.Fatal("blocked tasks ran on the wrong workers")
		}
		if d := p.Stats().Dispatched(); !slices.Equal(d, []int64{1, 1, 2}) {
			t.Fatalf("dispatched %v", d)
		}
	})
}

func TestOptionsValidation(t *testing.T) {
	ls, _ := concurry.NewLimitSet(nil)
	for name, o := range map[string]worker.Options{
		"negative workers":   {MaxWorkers: -1},
		"unknown mode":       {Mode: 9},
		"unknown balancing":  {Balancing: 9},
		"negative retries":   {NumRetries: -1},
		"unknown algorithm":  {RetryAlgorithm: 9},
		"negative wait":      {RetryWait: -time.Second},
		"negative max wait":  {RetryMaxWait: -time.Second},
		"jitter above 1":     {RetryJitter: 1.5},
		"negative jitter":    {RetryJitter: -0.1},
		"two kinds":          {Limiter: ls, Limits: []concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}}},
		"invalid limit":      {Limits: []concurry.Limit{concurry.ResourceLimit{Key: "c"}}},
		"empty limit pool":   {LimitSets: []*concurry.LimitSet{}},
		"sync with 3 worker": {Mode: worker.Sync, MaxWorkers: 3},
	} {
		if _, err := worker.NewPool(context.Background(), indexFactory, o); !errors.Is(err, worker.ErrInvalidOptions) {
			t.Errorf("%s: err = %v, want ErrInvalidOptions", name, err)
		}
	}
	if _, err := worker.NewPool[int](context.Background(), nil, worker.Options{}); !errors.Is(err, worker.ErrInvalidOptions) {
		t.Errorf("nil factory: %v", err)
	}
}

func TestStringers(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{worker.Goroutine.String(), "Goroutine"}, {worker.Sync.String(), "Sync"}, {worker.OnDemand.String(), "OnDemand"},
		{worker.Mode(7).String(), "Mode(7)"},
		{worker.DefaultBalancing.String(), "Default"}, {worker.RoundRobin.String(), "RoundRobin"},
		{worker.LeastActive.String(), "LeastActive"}, {worker.LeastTotal.String(), "LeastTotal"},
		{worker.Random.String(), "Random"}, {worker.Balancing(9).String(), "Balancing(9)"},
		{worker.Exponential.String(), "Exponential"}, {worker.Linear.String(), "Linear"},
		{worker.Fibonacci.String(), "Fibonacci"}, {worker.Fixed.String(), "Fixed"},
		{worker.RetryAlgorithm(9).String(), "RetryAlgorithm(9)"},
		{worker.AllCompleted.String(), "AllCompleted"}, {worker.FirstCompleted.String(), "FirstCompleted"},
		{worker.FirstError.String(), "FirstError"}, {worker.ReturnWhen(9).String(), "ReturnWhen(9)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestTaskContextCarriesSubmitValues(t *testing.T) {
	type key struct{}
	p := newPool(t, indexFactory, worker.Options{})
	for _, parent := range []context.Context{context.Background(), context.WithoutCancel(context.Background())} {
		ctx := context.WithValue(parent, key{}, "v")
		got, err := worker.Run(ctx, p, func(ctx context.Context, _ int, _ concurry.Limiter) (any, error) {
			return ctx.Value(key{}), nil
		})
		if err != nil || got != "v" {
			t.Fatalf("value = %v, %v", got, err)
		}
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "w"))
	defer cancel()
	if got, _ := worker.Run(ctx, p, func(ctx context.Context, _ int, _ concurry.Limiter) (any, error) {
		return ctx.Value(key{}), nil
	}); got != "w" {
		t.Fatalf("value = %v", got)
	}
}

func TestTaskNotStartedWhenItsContextEnded(t *testing.T) {
	release := make(chan struct{})
	p := newPool(t, indexFactory, worker.Options{})
	busy := submit(t, p, blocker(release))
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Bool
	f, err := worker.Submit(ctx, p, func(context.Context, int, concurry.Limiter) (int, error) { ran.Store(true); return 1, nil })
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	close(release)
	result(t, busy)
	if _, err := f.Result(context.Background()); !errors.Is(err, context.Canceled) || ran.Load() {
		t.Fatalf("err = %v, ran = %v", err, ran.Load())
	}
	if _, err := worker.Submit(ctx, p, index); !errors.Is(err, context.Canceled) {
		t.Fatalf("Submit with an ended ctx: %v", err)
	}
}
