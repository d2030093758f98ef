package worker_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

func TestTwentyWorkersShareTenConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conns, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "db_connections", Capacity: 10}})
		if err != nil {
			t.Fatal(err)
		}
		p := newPool(t, indexFactory, worker.Options{MaxWorkers: 20, Limiter: conns})
		var held, peak atomic.Int64
		task := func(ctx context.Context, _ int, lim concurry.Limiter) (int, error) {
			return 0, lim.Do(ctx, concurry.Amounts{"db_connections": 1}, func(context.Context, *concurry.Acquisition) error {
				n := held.Add(1)
				for m := peak.Load(); n > m && !peak.CompareAndSwap(m, n); m = peak.Load() {
				}
				time.Sleep(time.Second)
				held.Add(-1)
				return nil
			})
		}
		start := time.Now()
		var fs []*worker.Future[int]
		for range 100 {
			fs = append(fs, submit(t, p, task))
		}
		if _, err := worker.Gather(context.Background(), fs); err != nil {
			t.Fatal(err)
		}
		if peak.Load() != 10 || time.Since(start) != 10*time.Second {
			t.Fatalf("peak %d connections held, done in %v; want 10 and 10s", peak.Load(), time.Since(start))
		}
	})
}

func TestAPoolOverThreeLimitSetsSpreadsCallsEvenly(t *testing.T) {
	var sets []*concurry.LimitSet
	for i := range 3 {
		ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Minute, Capacity: 1000}},
			concurry.WithConfig(map[string]any{"region": i}))
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, ls)
	}
	p := newPool(t, indexFactory, worker.Options{MaxWorkers: 3, LimitSets: sets})
	type call struct{ worker, region int }
	var fs []*worker.Future[call]
	for range 30 {
		fs = append(fs, submit(t, p, func(ctx context.Context, i int, lim concurry.Limiter) (call, error) {
			acq, err := lim.Acquire(ctx, nil)
			if err != nil {
				return call{}, err
			}
			defer acq.Release()
			return call{i, acq.Config()["region"].(int)}, nil
		}))
	}
	calls, err := worker.Gather(context.Background(), fs)
	if err != nil {
		t.Fatal(err)
	}
	perRegion := make([]int, 3)
	first := []int{-1, -1, -1}
	for _, c := range calls {
		perRegion[c.region]++
		if first[c.worker] < 0 {
			first[c.worker] = c.region
		}
	}
	if !slices.Equal(perRegion, []int{10, 10, 10}) {
		t.Fatalf("calls per LimitSet %v, want 10/10/10", perRegion)
	}
	if !slices.Equal(first, []int{0, 1, 2}) {
		t.Fatalf("worker i started on sets %v, want 0, 1, 2", first)
	}
}

func TestACallLimitOfTwentyPerSecondPacesAHundredCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Second, Capacity: 20}})
		if err != nil {
			t.Fatal(err)
		}
		p := newPool(t, indexFactory, worker.Options{MaxWorkers: 8, Limiter: calls})
		start := time.Now()
		var mu sync.Mutex
		var at []time.Duration
		var fs []*worker.Future[int]
		for range 100 {
			fs = append(fs, submit(t, p, func(ctx context.Context, _ int, lim concurry.Limiter) (int, error) {
				acq, err := lim.Acquire(ctx, nil)
				if err != nil {
					return 0, err
				}
				mu.Lock()
				at = append(at, time.Since(start))
				mu.Unlock()
				return 0, acq.Release()
			}))
		}
		if _, err := worker.Gather(context.Background(), fs); err != nil {
			t.Fatal(err)
		}
		slices.Sort(at)
		// A full bucket grants 20 at once, then one every 50ms: the 100th at 4s.
		for k, got := range at {
			want := time.Duration(max(0, k-19)) * 50 * time.Millisecond
			if got != want {
				t.Fatalf("call %d granted at %v, want %v", k+1, got, want)
			}
		}
	})
}

func TestPrivateLimitsPerWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{MaxWorkers: 2, Limits: []concurry.Limit{concurry.ResourceLimit{Key: "gpu", Capacity: 1}}})
		release := make(chan struct{})
		hold := func(ctx context.Context, _ int, lim concurry.Limiter) (int, error) {
			if _, err := lim.TryAcquire(ctx, nil); err != nil {
				return 0, err // the other worker's gpu would not block ours
			}
			<-release
			return 1, nil
		}
		f0, f1 := submit(t, p, hold), submit(t, p, hold)
		synctest.Wait()
		close(release)
		if _, err := worker.Gather(context.Background(), []*worker.Future[int]{f0, f1}); err != nil {
			t.Fatalf("each worker should own its gpu: %v", err)
		}
	})
}

func TestASharedLimitPoolAndTheEmptyDefault(t *testing.T) {
	a, _ := concurry.NewLimitSet(nil, concurry.WithConfig(map[string]any{"name": "a"}))
	b, _ := concurry.NewLimitSet(nil, concurry.WithConfig(map[string]any{"name": "b"}))
	lp, err := concurry.NewLimitPool([]*concurry.LimitSet{a, b})
	if err != nil {
		t.Fatal(err)
	}
	name := func(ctx context.Context, _ int, lim concurry.Limiter) (string, error) {
		acq, err := lim.Acquire(ctx, concurry.Amounts{"anything": 5})
		if err != nil {
			return "", err
		}
		defer acq.Release()
		n, _ := acq.Config()["name"].(string)
		return n, nil
	}
	p := newPool(t, indexFactory, worker.Options{MaxWorkers: 2, Limiter: lp})
	var got []string
	for range 4 {
		got = append(got, result(t, submit(t, p, name)))
	}
	if !slices.Equal(got, []string{"a", "b", "a", "b"}) {
		t.Fatalf("shared pool picks %v", got)
	}
	q := newPool(t, indexFactory, worker.Options{Limiter: (*concurry.LimitSet)(nil)}) // a typed nil counts as none
	if n := result(t, submit(t, q, name)); n != "" {
		t.Fatalf("default limiter gave config %q", n)
	}
	q2 := newPool(t, indexFactory, worker.Options{Limiter: (*concurry.LimitPool)(nil)}) // a typed nil counts as none
	if n := result(t, submit(t, q2, name)); n != "" {
		t.Fatalf("default limiter gave config %q", n)
	}
}

// A task reaches the limiter behind its lim with Unwrap, and the pool hands
// out each worker's with Limiter: the private sets of Options.Limits, their
// Stats included.
func TestEachWorkersLimiterIsReachable(t *testing.T) {
	gpu := []concurry.Limit{concurry.ResourceLimit{Key: "gpu", Capacity: 1}}
	p := newPool(t, indexFactory, worker.Options{MaxWorkers: 2, Limits: gpu})
	type seen struct {
		set   *concurry.LimitSet
		inUse int64
	}
	got := result(t, submit(t, p, func(ctx context.Context, _ int, lim concurry.Limiter) (seen, error) {
		if _, err := lim.Acquire(ctx, nil); err != nil { // held until the attempt ends
			return seen{}, err
		}
		ls, ok := worker.Unwrap(lim).(*concurry.LimitSet)
		if !ok {
			return seen{}, fmt.Errorf("Unwrap gave %T", worker.Unwrap(lim))
		}
		st, err := ls.Stats(ctx)
		r, _ := st.Limit("gpu")
		return seen{ls, r.InUse}, err
	}))
	if got.set != p.Limiter(0) || got.inUse != 1 {
		t.Fatalf("the task saw set %p with %d in use; worker 0's set is %p", got.set, got.inUse, p.Limiter(0))
	}
	if p.Limiter(0) == p.Limiter(1) {
		t.Fatal("two workers share a private set")
	}
	st, err := p.Limiter(0).(*concurry.LimitSet).Stats(context.Background())
	if r, _ := st.Limit("gpu"); err != nil || r.InUse != 0 || r.Granted != 1 {
		t.Fatalf("worker 0's stats after the task: %+v, %v", r, err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Limiter(2) of a pool of two did not panic")
			}
		}()
		p.Limiter(2)
	}()
}

func TestLimiterOfEveryKindOfLimits(t *testing.T) {
	shared, _ := concurry.NewLimitSet(nil)
	a, _ := concurry.NewLimitSet(nil)
	b, _ := concurry.NewLimitSet(nil)
	if lp, ok := newPool(t, indexFactory, worker.Options{MaxWorkers: 2, LimitSets: []*concurry.LimitSet{a, b}}).Limiter(1).(*concurry.LimitPool); !ok || lp.Len() != 2 {
		t.Fatal("LimitSets: no *LimitPool per worker")
	}
	if got := newPool(t, indexFactory, worker.Options{Limiter: shared, Mode: worker.OnDemand, MaxWorkers: 3}).Limiter(2); got != shared {
		t.Fatalf("a shared Limiter: got %v", got)
	}
	none := newPool(t, indexFactory, worker.Options{MaxWorkers: 2})
	if ls, ok := none.Limiter(1).(*concurry.LimitSet); !ok || len(ls.Limits()) != 0 || none.Limiter(0) != none.Limiter(1) {
		t.Fatal("no limits: not one empty set")
	}
	if worker.Unwrap(shared) != shared || worker.Unwrap(nil) != nil {
		t.Fatal("Unwrap of a plain limiter")
	}
}
