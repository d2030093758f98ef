package redis_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// wantRefusal fails the test unless err is a *backend.RefusalError with the
// given facts, matching its sentinel.
func wantRefusal(t *testing.T, err error, key string, retryAfter time.Duration, deadline, queued bool) {
	t.Helper()
	var r *backend.RefusalError
	if !errors.As(err, &r) {
		t.Fatalf("error %v, want a *backend.RefusalError", err)
	}
	sentinel := backend.ErrWouldBlock
	if deadline {
		sentinel = context.DeadlineExceeded
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("refusal %v does not match %v", err, sentinel)
	}
	if r.Key != key || r.RetryAfter != retryAfter || r.Deadline != deadline || r.Queued != queued {
		t.Fatalf("refusal %+v, want key %q, RetryAfter %v, deadline %v, queued %v", *r, key, retryAfter, deadline, queued)
	}
}

// TestRefusalRetryAfterIsExact drains a limit of 10 per 10 s on a frozen
// clock and asks for 3: for every algorithm the script says exactly when
// the request fits, and at that instant it does, not a µs before.
func TestRefusalRetryAfterIsExact(t *testing.T) {
	client := redistest.Start(t).Client()
	ctx := context.Background()
	for alg := algorithms.TokenBucket; alg <= algorithms.GCRA; alg++ {
		t.Run(alg.String(), func(t *testing.T) {
			now := (time.Now().UnixMicro()/10_000_000 + 1) * 10_000_000 // a window boundary, for FixedWindow
			b := cr.New(client, cr.Options{Prefix: "exact"})
			cr.SetClock(b, func() int64 { return now })
			set := open(t, b, backend.Spec{Key: "r", Kind: backend.Rate, Algorithm: alg, Window: 10 * time.Second, Capacity: 10})
			if _, err := set.Acquire(ctx, []int64{10}, backend.AcquireOptions{}); err != nil {
				t.Fatal(err)
			}
			want := map[algorithms.Kind]time.Duration{
				algorithms.TokenBucket: 3 * time.Second, algorithms.GCRA: 3 * time.Second,
				algorithms.LeakyBucket: 10 * time.Second, algorithms.SlidingWindow: 10 * time.Second,
				algorithms.FixedWindow: 10 * time.Second,
			}[alg]
			_, err := set.Acquire(ctx, []int64{3}, backend.AcquireOptions{})
			wantRefusal(t, err, "r", want, false, false)
			now += want.Microseconds() - 1
			_, err = set.Acquire(ctx, []int64{3}, backend.AcquireOptions{})
			wantRefusal(t, err, "r", time.Microsecond, false, false)
			now++
			if _, err := set.Acquire(ctx, []int64{3}, backend.AcquireOptions{}); err != nil {
				t.Fatalf("at the instant the refusal named: %v", err)
			}
		})
	}
}

// TestRefusalFacts: the bottleneck of several limits is the one whose
// instant is latest; a resource without room is named with RetryAfter 0;
// behind a waiter of this process the refusal is Queued, projected through
// it; a deadline before the grant fails at once with its facts.
func TestRefusalFacts(t *testing.T) {
	now := time.Now().UnixMicro()
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	cr.SetClock(b, func() int64 { return now })
	set := open(t, b,
		backend.Spec{Key: "fast", Kind: backend.Rate, Window: 10 * time.Second, Capacity: 10},
		backend.Spec{Key: "slow", Kind: backend.Rate, Algorithm: algorithms.GCRA, Window: 1000 * time.Second, Capacity: 10},
		backend.Spec{Key: "conn", Kind: backend.Resource, Capacity: 1})
	ctx := context.Background()
	held, err := set.Acquire(ctx, []int64{10, 10, 1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = set.Acquire(ctx, []int64{1, 1, 1}, backend.AcquireOptions{})
	wantRefusal(t, err, "conn", 0, false, false)
	_, err = set.Acquire(ctx, []int64{1, 1, 0}, backend.AcquireOptions{})
	wantRefusal(t, err, "slow", 100*time.Second, false, false)
	_, err = set.Acquire(ctx, []int64{5, 0, 0}, backend.AcquireOptions{})
	wantRefusal(t, err, "fast", 5*time.Second, false, false)
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = set.Acquire(dctx, []int64{1, 1, 1}, backend.AcquireOptions{Wait: true})
	wantRefusal(t, err, "slow", 100*time.Second, true, false) // the resource may come back; the rate cannot
	if err := set.Settle(ctx, held, []int64{10, 10, 1}, nil, true, nil); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	waiting := make(chan error, 1)
	go func() { // due in 1 s, by the frozen clock: it waits until cancelled
		_, err := set.Acquire(wctx, []int64{1, 0, 1}, backend.AcquireOptions{Wait: true})
		waiting <- err
	}()
	for { // probe until the waiter is queued: a request that fits is refused only then
		id, err := set.Acquire(ctx, []int64{0, 0, 1}, backend.AcquireOptions{})
		if err != nil {
			wantRefusal(t, err, "conn", 0, false, true) // the waiter ahead keeps the only unit
			break
		}
		if err := set.Settle(ctx, id, []int64{0, 0, 1}, nil, true, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // back off between probes; not a synchronisation
	}
	_, err = set.Acquire(ctx, []int64{1, 0, 0}, backend.AcquireOptions{})
	wantRefusal(t, err, "fast", 2*time.Second, false, true) // after the waiter's unit at 1 s
	wcancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Fatalf("the waiter: %v, want context.Canceled", err)
	}
}

// TestAcquireReport: the report of a grant at once, of a refusal, of a wait
// (OnWait called once, as it starts, with the spec that blocks; a panic in
// it contained), of a request that joins behind a waiter (OnWait at once),
// and of a decision made by the outage policy.
func TestAcquireReport(t *testing.T) {
	srv := redistest.Start(t)
	b := cr.New(quickClient(t, srv.Addr), cr.Options{})
	set := open(t, b,
		backend.Spec{Key: "r", Kind: backend.Rate, Window: 400 * time.Millisecond, Capacity: 2},
		backend.Spec{Key: "probe", Kind: backend.Rate, Window: time.Hour, Capacity: 1000})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rep backend.AcquireReport
	var calls atomic.Int64
	onWait := func(spec int) {
		calls.Add(1)
		if spec != 0 {
			t.Errorf("OnWait(%d), want 0", spec)
		}
		panic("a hook that panics")
	}
	if _, err := set.Acquire(ctx, []int64{2, 0}, backend.AcquireOptions{Report: &rep, OnWait: onWait}); err != nil {
		t.Fatal(err)
	}
	if rep != (backend.AcquireReport{Blocker: -1}) || calls.Load() != 0 {
		t.Fatalf("a grant at once: %+v, %d OnWait calls", rep, calls.Load())
	}
	if _, err := set.Acquire(ctx, []int64{1, 0}, backend.AcquireOptions{Report: &rep, OnWait: onWait}); err == nil {
		t.Fatal("granted from a drained limit")
	}
	if rep != (backend.AcquireReport{Blocker: 0}) || calls.Load() != 0 {
		t.Fatalf("a refusal: %+v, %d OnWait calls", rep, calls.Load())
	}
	start := time.Now()
	if _, err := set.Acquire(ctx, []int64{1, 0}, backend.AcquireOptions{Wait: true, Report: &rep, OnWait: onWait}); err != nil {
		t.Fatal(err)
	}
	if !rep.Waited || rep.Blocker != 0 || rep.Degraded || rep.Duration <= 0 || rep.Duration > time.Since(start) || calls.Load() != 1 {
		t.Fatalf("a wait: %+v after %v, %d OnWait calls", rep, time.Since(start), calls.Load())
	}
	reportBehindAWaiter(t, ctx, set)
	srv.Kill()
	if _, err := set.Acquire(ctx, []int64{0, 1}, backend.AcquireOptions{Report: &rep}); !errors.Is(err, backend.ErrBackendUnavailable) {
		t.Fatalf("with redis away: %v", err)
	}
	if !rep.Degraded {
		t.Fatalf("a refusal by FailClosed: %+v, want Degraded", rep)
	}
}

// reportBehindAWaiter: a request that joins behind a waiter starts to wait
// at once, blocked by what blocks the waiter.
func reportBehindAWaiter(t *testing.T, ctx context.Context, set backend.Set) {
	t.Helper()
	first := make(chan error, 1)
	go func() {
		_, err := set.Acquire(ctx, []int64{2, 0}, backend.AcquireOptions{Wait: true})
		first <- err
	}()
	for { // probe until the first waiter is queued
		if _, err := set.Acquire(ctx, []int64{0, 1}, backend.AcquireOptions{}); err != nil {
			break
		}
		time.Sleep(time.Millisecond) // back off between probes; not a synchronisation
	}
	var rep backend.AcquireReport
	started := make(chan int, 1)
	if _, err := set.Acquire(ctx, []int64{0, 1}, backend.AcquireOptions{Wait: true, Report: &rep, OnWait: func(spec int) { started <- spec }}); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if spec := <-started; spec != 0 || !rep.Waited || rep.Blocker != 0 {
		t.Fatalf("behind a waiter: OnWait(%d), report %+v; want 0 and a wait blocked by 0", spec, rep)
	}
}
