package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// TestGrantDatedWhenPossible moves the scripts' clock by hand through a
// late wake-up, for every algorithm at 1 unit per ms: a waiter told that
// its unit is due at t0+1 ms, and reaching Redis only at t0+1.7 ms, is
// granted as of t0+1 ms, so the next unit is due at t0+2 ms, not t0+2.7 ms.
// A hint never dates a grant before the last instant the set was evaluated
// at.
func TestGrantDatedWhenPossible(t *testing.T) {
	client := redistest.Start(t).Client()
	for alg := algorithms.TokenBucket; alg <= algorithms.GCRA; alg++ {
		t.Run(alg.String(), func(t *testing.T) { grantDatedWhenPossible(t, client, alg) })
	}
}

func grantDatedWhenPossible(t *testing.T, client *redis.Client, alg algorithms.Kind) {
	t0 := (time.Now().UnixMicro()/1000 + 1) * 1000 // a window boundary, for FixedWindow
	now := t0
	b := cr.New(client, cr.Options{Prefix: "dated"})
	cr.SetClock(b, func() int64 { return now })
	set := open(t, b, backend.Spec{Key: "k", Kind: backend.Rate, Algorithm: alg, Window: time.Millisecond, Capacity: 1})
	ctx := context.Background()
	take := func(id backend.Lease, hint int64) (bool, int64) {
		t.Helper()
		ok, at, err := cr.TakeWithHint(ctx, set, id, []int64{1}, hint)
		if err != nil {
			t.Fatal(err)
		}
		return ok, at
	}
	if ok, at := take(1, -1); !ok || at != t0 {
		t.Fatalf("first take: %v at %d, want granted at t0", ok, at-t0)
	}
	now = t0 + 400
	if ok, ready := take(2, 0); ok || ready != t0+1000 {
		t.Fatalf("at t0+400µs: %v, ready at t0+%dµs; want refused until t0+1000µs", ok, ready-t0)
	}
	now = t0 + 1700 // the waiter wakes up late
	if ok, at := take(2, t0+1000); !ok || at != t0+1000 {
		t.Fatalf("late wake-up: %v at t0+%dµs, want granted as of t0+1000µs", ok, at-t0)
	}
	for _, hint := range []int64{0, t0, t0 + 1000} { // stale hints date nothing earlier
		if ok, ready := take(3, hint); ok || ready != t0+2000 {
			t.Fatalf("next unit, hint t0+%dµs: %v, ready at t0+%dµs; want refused until t0+2000µs", hint-t0, ok, ready-t0)
		}
	}
}

// TestProjectionReadsSlidingWindowCopies projects a deadline through a
// waiter on a SlidingWindow, whose entries the projection must take on a
// copy of the list: the deadline fails at once and the list is unchanged.
func TestProjectionReadsSlidingWindowCopies(t *testing.T) {
	t0 := time.Now().UnixMicro()
	var now atomic.Int64 // read by the waiter's calls, which may still run when the test moves it
	now.Store(t0)
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	cr.SetClock(b, now.Load)
	set := open(t, b,
		backend.Spec{Key: "r", Kind: backend.Rate, Algorithm: algorithms.SlidingWindow, Window: 2 * time.Second, Capacity: 2},
		backend.Spec{Key: "probe", Kind: backend.Rate, Window: time.Hour, Capacity: 1000})
	ctx := context.Background()
	for i, dt := range []int64{0, 1_000_000} { // entries at t0 and t0+1 s
		now.Store(t0 + dt)
		if ok, err := cr.TakeWithID(ctx, set, backend.Lease(i+1), []int64{1, 0}); !ok || err != nil {
			t.Fatalf("take %d: %v %v", i, ok, err)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w1 := make(chan error, 1)
	go func() { // due at t0+2 s, when the entry of t0 expires
		_, err := set.Acquire(wctx, []int64{1, 0}, backend.AcquireOptions{Wait: true})
		w1 <- err
	}()
	for { // probe until w1 is queued: a request that fits is refused only then
		id, err := set.Acquire(ctx, []int64{0, 1}, backend.AcquireOptions{})
		if errors.Is(err, backend.ErrWouldBlock) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Settle(ctx, id, nil, []int64{0, -1}, true, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // back off between probes; not a synchronisation
	}
	dctx, dcancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer dcancel()
	start := time.Now()
	_, err := set.Acquire(dctx, []int64{1, 0}, backend.AcquireOptions{Wait: true})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("behind a waiter due in 1 s, due itself in 2 s, with a deadline of 1.5 s: %v after %v; want DeadlineExceeded at once",
			err, time.Since(start))
	}
	cancel()
	if err := <-w1; !errors.Is(err, context.Canceled) {
		t.Fatalf("the waiter: %v, want context.Canceled", err)
	}
	now.Store(t0 + 2_000_000)
	if got := available(t, set)[0]; got != 1 {
		t.Fatalf("at t0+2 s: %d available, want 1: the projection wrote nothing", got)
	}
}

// blockingRate saturates a set of 1,000 units/s (burst 1) with the given
// number of waiters, each acquiring in a loop, for d, and returns the rate
// error: (granted − allowed) / allowed, where allowed is what the limit
// allows over the time from the first call to the last grant.
func blockingRate(t testing.TB, client redis.UniversalClient, waiters int, d time.Duration) float64 {
	const per = time.Millisecond
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "k", Window: per, Capacity: 1}},
		concurry.WithName(fmt.Sprintf("%s/%d/%d", t.Name(), waiters, time.Now().UnixNano())),
		concurry.WithBackend(cr.New(client, cr.Options{})))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	var granted atomic.Int64
	var last atomic.Int64 // ns since start of the latest grant
	// Elapsed time is read on the wall clock, as Redis TIME reads it: a
	// slewed wall clock can run faster than the monotonic one (0.5 % was seen
	// on a VM), and the limit holds on the server's clock.
	start := time.Now().Round(0)
	stop := start.Add(d)
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			for time.Now().Before(stop) {
				a, err := ls.Acquire(context.Background(), concurry.Amounts{"k": 1})
				if err != nil {
					t.Error(err)
					return
				}
				granted.Add(1)
				for at, prev := int64(time.Since(start)), last.Load(); at > prev && !last.CompareAndSwap(prev, at); prev = last.Load() {
				}
				a.Update(concurry.Amounts{"k": 1})
				a.Release()
			}
		})
	}
	wg.Wait()
	allowed := 1 + float64(last.Load())/float64(per)
	return (float64(granted.Load()) - allowed) / allowed
}

// TestBlockingRate: saturated by 64 waiters, a limit of 1,000/s with a
// burst of 1 grants what it allows, within 3 % (about −0.25 % without the
// race detector on a busy machine; −57 % before grants were dated as of the
// instant they became possible): the head waiter woken late is granted as
// of the instant its unit was due, and the waiter behind it from there on,
// so wake-up delays and round trips are not lost from the schedule. It
// never grants more. With 1 waiter the rate is only logged: between a grant
// and the next request that waiter is not waiting, so the time it takes to
// release and come back (round trips to a server that competes for the CPU)
// is lost whenever it exceeds a millisecond, as it is for any limiter with a
// burst of 1.
func TestBlockingRate(t *testing.T) {
	client := redistest.Start(t).Client()
	var e float64
	for range 3 { // a busy machine can starve the client and Redis for a while: keep the best of 3 runs
		e = blockingRate(t, client, 64, time.Second)
		t.Logf("64 waiters: rate error %+.3f%%", 100*e)
		if e > 0.002 {
			t.Fatalf("64 waiters: rate error %+.3f%%: more granted than the limit allows", 100*e)
		}
		if e >= -0.03 {
			break
		}
	}
	if e < -0.03 {
		t.Errorf("64 waiters: rate error %+.3f%%, want within [−3%%, +0.2%%]", 100*e)
	}
	t.Logf("1 waiter: rate error %+.3f%%", 100*blockingRate(t, client, 1, time.Second))
}

// BenchmarkBlockingRate reports the rate error of the blocking path at
// 1,000/s, burst 1, saturated by 1 and by 64 waiters, over 2 s each (once,
// whatever b.N): go test -run '^$' -bench BlockingRate -benchtime 1x.
func BenchmarkBlockingRate(b *testing.B) {
	client := redistest.Start(b).Client()
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("waiters=%d", n), func(b *testing.B) {
			var e float64
			for range b.N {
				e = blockingRate(b, client, n, 2*time.Second)
			}
			b.ReportMetric(100*e, "rate-error-%")
		})
	}
}
