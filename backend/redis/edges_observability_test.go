package redis_test

// Edge tests of the hooks over a real redis-server: facts, degraded
// decisions, lost leases, and the ends of the ranges.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concurry/concurry"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
	"github.com/concurry/concurry/internal/backendtest"
)

// "Capacities up to 2^50 and windows up to 366 days; anything larger is
// ErrInvalidLimit at definition, on every backend, and no sum of amounts can
// overflow."
func TestEdgeRedisCapacityWindowEdges(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	now := time.Now().UnixMicro()
	cr.SetClock(b, func() int64 { return now })
	backendtest.RangeEnds(t, b, t.Name(), true)
}

// Hooks on Redis, with the script clock frozen: refusal facts (key,
// RetryAfter exact), settle facts (refund, overage) and LeaseLost once.
func TestEdgeRedisHookFacts(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{LeaseTTL: time.Second})
	var mu sync.Mutex
	now := time.Now().UnixMicro()
	cr.SetClock(b, func() int64 { mu.Lock(); defer mu.Unlock(); return now })
	ctx := context.Background()
	log := &backendtest.HookLog{}
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tok", Window: 1000 * time.Second, Capacity: 1000},
		concurry.ResourceLimit{Key: "slot", Capacity: 2},
	}, concurry.WithName(t.Name()), concurry.WithBackend(b), concurry.WithHooks(log.Hooks()))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	a, err := ls.TryAcquire(ctx, concurry.Amounts{"tok": 1000})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ls.TryAcquire(ctx, concurry.Amounts{"tok": 10})
	var re *concurry.RefusalError
	if !errors.As(err, &re) || re.Key != "tok" || re.RetryAfter != 10*time.Second {
		t.Errorf("refusal: %v (%+v), want tok, RetryAfter 10s", err, re)
	}
	if err := a.Update(concurry.Amounts{"tok": 960}); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	backendtest.Take(t, ls, concurry.Amounts{"tok": 20}, concurry.Amounts{"tok": 30})
	// a lost lease: expired and reaped
	d, err := ls.TryAcquire(ctx, concurry.Amounts{"tok": 1})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now += 2 * time.Second.Microseconds()
	mu.Unlock()
	for range 2 { // take both slots: reaps the expired lease
		x, err := ls.TryAcquire(ctx, concurry.Amounts{"tok": 1})
		if err != nil {
			t.Fatalf("reaping: %v", err)
		}
		_ = x.Update(concurry.Amounts{"tok": 1})
		defer x.Release()
	}
	e1 := d.Update(concurry.Amounts{"tok": 1})
	e2 := d.Release()
	if !errors.Is(e2, concurry.ErrLeaseLost) {
		t.Errorf("Update %v, Release %v: want ErrLeaseLost", e1, e2)
	}
	log.Mu.Lock()
	defer log.Mu.Unlock()
	if len(log.Refused) != 1 || log.Refused[0].Key != "tok" || log.Refused[0].RetryAfter != 10*time.Second || log.Refused[0].Cause != concurry.CauseWouldBlock {
		t.Errorf("Refused hook: %+v", log.Refused)
	}
	if len(log.Settled) != 2 || log.Settled[0].Refunded != 40 || log.Settled[0].Overage != 0 || log.Settled[1].Overage != 10 || log.Settled[1].Refunded != 0 {
		t.Errorf("Settled hook: %+v", log.Settled)
	}
	if len(log.Lost) != 1 {
		t.Errorf("LeaseLost fired %d times, want 1", len(log.Lost))
	}
	if len(log.Granted) != 5 {
		t.Errorf("Granted fired %d times, want 5", len(log.Granted))
	}
}

// "degraded decisions": with FailOpen during an outage, Granted says
// Degraded, once per acquisition; with FailClosed, Refused says unavailable.
func TestEdgeRedisDegradedHooks(t *testing.T) {
	srv := redistest.Start(t)
	open := &backendtest.HookLog{}
	closed := &backendtest.HookLog{}
	bo := cr.New(quickClient(t, srv.Addr), cr.Options{Outage: cr.FailOpen})
	bc := cr.New(quickClient(t, srv.Addr), cr.Options{})
	lo, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
		concurry.WithName(t.Name()+"o"), concurry.WithBackend(bo), concurry.WithHooks(open.Hooks()))
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	lc, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
		concurry.WithName(t.Name()+"c"), concurry.WithBackend(bc), concurry.WithHooks(closed.Hooks()))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	srv.Kill()
	for range 2 {
		a, err := lo.TryAcquire(context.Background(), nil)
		if err != nil {
			t.Fatalf("FailOpen: %v", err)
		}
		defer a.Release()
	}
	if _, err := lc.TryAcquire(context.Background(), nil); !errors.Is(err, concurry.ErrBackendUnavailable) {
		t.Fatalf("FailClosed: %v", err)
	}
	open.Mu.Lock()
	defer open.Mu.Unlock()
	if len(open.Granted) != 2 || !open.Granted[0].Degraded || !open.Granted[1].Degraded {
		t.Errorf("FailOpen Granted: %+v, want 2 degraded", open.Granted)
	}
	closed.Mu.Lock()
	defer closed.Mu.Unlock()
	if len(closed.Refused) != 1 || closed.Refused[0].Cause != concurry.CauseUnavailable {
		t.Errorf("FailClosed Refused: %+v", closed.Refused)
	}
	st, _ := lc.Stats(context.Background())
	if st.Refusals.Unavailable != 1 {
		t.Errorf("Stats.Refusals.Unavailable %d, want 1", st.Refusals.Unavailable)
	}
	// README: "Either way the decision is counted: LimitSet.Stats reports it as Degraded"
	if st.Degraded != 1 {
		t.Errorf("FailClosed Stats.Degraded %d, want 1", st.Degraded)
	}
	if so, _ := lo.Stats(context.Background()); so.Degraded != 2 {
		t.Errorf("FailOpen Stats.Degraded %d, want 2", so.Degraded)
	}
}

// Hooks doc: "a hook that calls runtime.Goexit ends its goroutine with the
// limiter's state consistent: an acquisition granted to a goroutine that
// exits in Granted or WaitDone is released". On Redis: a Goexit in
// WaitStart leaves no waiter (a later TryAcquire is not queued behind it),
// and one in WaitDone (granted) or Granted gives the unit back.
func TestEdgeRedisGoexitInWaitHooks(t *testing.T) {
	backendtest.GoexitInHooks(t, cr.New(redistest.Start(t).Client(), cr.Options{}), t.Name(), nil)
}

// Feedback hook on Redis: as on unixsock, only applied feedback is passed on.
func TestEdgeRedisFeedbackHookOnlyWhenApplied(t *testing.T) {
	backendtest.FeedbackHookOnlyWhenApplied(t, cr.New(redistest.Start(t).Client(), cr.Options{}), t.Name())
}

// Settled on Redis for a key with two windows, the second refunding: the
// refund Stats counts reaches the hook (once per key).
func TestEdgeRedisSettledMultiWindowKey(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	now := time.Now().UnixMicro()
	cr.SetClock(b, func() int64 { return now })
	ctx := context.Background()
	log := &backendtest.HookLog{}
	ls := backendtest.OpenSet(t, b, t.Name(), log.Hooks(),
		concurry.RateLimit{Key: "tok", Window: time.Second, Capacity: 100, Algorithm: concurry.SlidingWindow},
		concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 1000})
	backendtest.Take(t, ls, concurry.Amounts{"tok": 50}, concurry.Amounts{"tok": 10})
	st, _ := ls.Stats(ctx)
	log.Mu.Lock()
	defer log.Mu.Unlock()
	settled := log.Settled
	if st.Limits[1].Refunded != 40 {
		t.Fatalf("stats: %+v", st.Limits)
	}
	if len(settled) != 1 || settled[0].Refunded != 40 {
		t.Errorf("Settled: %+v, want one with Refunded 40 (Stats counted 40)", settled)
	}
}

// "no sum of amounts can overflow" (and Redis arithmetic stays below 2^53):
// 20 holders of one unit each report 2^50 used: 20·2^50 > 2^54 of overage.
func TestEdgeRedisOverageSumNoOverflow(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	ctx := context.Background()
	for alg := concurry.TokenBucket; alg <= concurry.GCRA; alg++ {
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.RateLimit{Key: "k", Window: concurry.MaxWindow, Capacity: concurry.MaxCapacity, Algorithm: alg},
		}, concurry.WithName(t.Name()+alg.String()), concurry.WithBackend(b))
		if err != nil {
			t.Fatal(err)
		}
		var acqs []*concurry.Acquisition
		for range 20 {
			a, err := ls.Acquire(ctx, concurry.Amounts{"k": 1})
			if err != nil {
				t.Fatalf("%v: %v", alg, err)
			}
			acqs = append(acqs, a)
		}
		for _, a := range acqs {
			if err := a.Update(concurry.Amounts{"k": concurry.MaxCapacity}); err != nil {
				t.Fatal(err)
			}
			if err := a.Release(); err != nil {
				t.Errorf("%v: release: %v", alg, err)
			}
		}
		st, err := ls.Stats(ctx)
		if err != nil {
			t.Fatalf("%v: stats: %v", alg, err)
		}
		k := st.Limits[0]
		t.Logf("%v: %+v", alg, k)
		if k.Available != 0 || k.Debt <= concurry.MaxCapacity || k.Debt > 1<<53 {
			t.Errorf("%v: after 20·2^50 of overage: available %d, debt %d", alg, k.Available, k.Debt)
		}
		if _, err := ls.TryAcquire(ctx, concurry.Amounts{"k": 1}); !errors.Is(err, concurry.ErrWouldBlock) {
			t.Errorf("%v: in debt, TryAcquire: %v", alg, err)
		}
		_ = ls.Close()
	}
}

// Name and key lengths at MaxNameLen / MaxKeyLen work on Redis; one more
// byte is ErrInvalidLimit, as on every backend.
func TestEdgeRedisNameKeyLengths(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	ctx := context.Background()
	name := strings.Repeat("n", concurry.MaxNameLen)
	key := strings.Repeat("k", concurry.MaxKeyLen)
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: key, Window: time.Hour, Capacity: 10},
		concurry.ResourceLimit{Key: key[:concurry.MaxKeyLen-1] + "r", Capacity: 1},
	}, concurry.WithName(name), concurry.WithBackend(b))
	if err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	defer ls.Close()
	a, err := ls.TryAcquire(ctx, concurry.Amounts{key: 3})
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Update(concurry.Amounts{key: 3})
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if st, err := ls.Stats(ctx); err != nil || st.Limits[0].Available != 7 {
		t.Fatalf("stats %+v %v", st.Limits, err)
	}
	if _, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "r", Capacity: 1}},
		concurry.WithName(name+"n"), concurry.WithBackend(b)); !errors.Is(err, concurry.ErrInvalidLimit) {
		t.Errorf("name one byte longer: %v", err)
	}
	if _, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: key + "k", Capacity: 1}},
		concurry.WithName("short"), concurry.WithBackend(b)); !errors.Is(err, concurry.ErrInvalidLimit) {
		t.Errorf("key one byte longer: %v", err)
	}
}

// Hooks doc: "LeaseLost is called once per acquisition, when Update or
// Release first learns that its holding ended before its release." Redis
// stalls longer than the lease TTL: Update says ErrLeaseLost, then Release
// says so too; the hook fires once, and Stats counts one lost lease.
func TestEdgeRedisLeaseLostHookOnceAfterStall(t *testing.T) {
	srv := redistest.Start(t)
	b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: childTTL})
	log := &backendtest.HookLog{}
	ls := backendtest.OpenSet(t, b, t.Name(), log.Hooks(),
		concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 100},
		concurry.ResourceLimit{Key: "slot", Capacity: 1})
	a, err := ls.TryAcquire(context.Background(), concurry.Amounts{"tok": 10})
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	time.Sleep(2 * childTTL)
	e1 := a.Update(concurry.Amounts{"tok": 10})
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	e2 := a.Release()
	t.Logf("Update: %v\nRelease: %v", e1, e2)
	if !errors.Is(e1, concurry.ErrLeaseLost) || !errors.Is(e2, concurry.ErrLeaseLost) {
		t.Errorf("Update %v, Release %v: want ErrLeaseLost from both", e1, e2)
	}
	log.Mu.Lock()
	defer log.Mu.Unlock()
	lost := log.Lost
	if len(lost) != 1 || !errors.Is(lost[0].Err, concurry.ErrLeaseLost) || lost[0].Set != ls {
		t.Errorf("LeaseLost hook: %+v, want once", lost)
	}
	if st, err := ls.Stats(context.Background()); err == nil && st.LeasesLost != 1 {
		t.Errorf("Stats.LeasesLost %d, want 1", st.LeasesLost)
	}
}
