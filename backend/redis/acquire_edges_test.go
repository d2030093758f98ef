package redis_test

// Acquire, waiting and Close on Redis at the edges of the contract, each test quoting the sentence it checks.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
	"github.com/concurry/concurry/internal/backendtest"
)

var pbg = context.Background()

// pEnv returns a backend on a fresh Redis server and the conformance suite's
// helpers (Go, Wait, MustTry, Done, Stat) over it, for a test of its own.
func pEnv(t *testing.T, opts cr.Options) (*cr.Backend, *backendtest.Env) {
	b := cr.New(redistest.Start(t).Client(), opts)
	return b, &backendtest.Env{T: t, Backend: b}
}

// pSet opens name on b; queued, when not nil, receives a value each time a
// request starts to wait.
func pSet(t *testing.T, b *cr.Backend, name string, queued chan<- struct{}, config map[string]any, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	opts := []concurry.Option{concurry.WithName(name), concurry.WithBackend(b), concurry.WithConfig(config)}
	if queued != nil {
		opts = append(opts, concurry.WithHooks(concurry.Hooks{WaitStart: func(concurry.WaitInfo) { queued <- struct{}{} }}))
	}
	ls, err := concurry.NewLimitSet(limits, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	return ls
}

// "Close() wakes every blocked Acquire with ErrClosed; later Acquire/TryAcquire
// calls fail with ErrClosed; acquisitions already granted can still be
// updated and released." A resource held past several lease TTLs after
// Close must still be held (its lease renewed) and release cleanly.
func TestEdgeRedisGrantedLeaseSurvivesClose(t *testing.T) {
	b, e := pEnv(t, cr.Options{LeaseTTL: 300 * time.Millisecond})
	limits := []concurry.Limit{
		concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 10},
		concurry.ResourceLimit{Key: "c", Capacity: 1},
	}
	queued := make(chan struct{}, 2)
	x := pSet(t, b, t.Name(), queued, nil, limits...)
	other := pSet(t, b, t.Name(), nil, nil, limits...)
	held := e.MustTry(x, concurry.Amounts{"tok": 4})
	y := pSet(t, b, t.Name(), nil, nil, limits...)
	w := e.Go(pbg, x, concurry.Amounts{"tok": 1})
	<-queued
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Wait(w); !errors.Is(err, concurry.ErrClosed) {
		t.Fatalf("the waiter of a closed set: %v, want ErrClosed", err)
	}
	if _, err := x.TryAcquire(pbg, concurry.Amounts{"tok": 1}); !errors.Is(err, concurry.ErrClosed) {
		t.Fatalf("TryAcquire after Close: %v", err)
	}
	if _, err := x.Acquire(pbg, concurry.Amounts{"tok": 1}); !errors.Is(err, concurry.ErrClosed) {
		t.Fatalf("Acquire after Close: %v", err)
	}
	time.Sleep(1200 * time.Millisecond) // four TTLs
	if got := e.Stat(other, "c").InUse; got != 1 {
		t.Fatalf("after Close and four lease TTLs the granted acquisition holds %d units, want 1: its lease was not renewed", got)
	}
	ctx, cancel := context.WithTimeout(pbg, 200*time.Millisecond)
	defer cancel()
	if _, err := y.Acquire(ctx, concurry.Amounts{"tok": 1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("another holder got the unit of the closed set's live acquisition: %v", err)
	}
	if err := held.Update(concurry.Amounts{"tok": 2}); err != nil {
		t.Fatalf("Update after Close: %v", err)
	}
	if err := held.Release(); err != nil {
		t.Fatalf("Release after Close: %v", err)
	}
	if got := e.Stat(other, "c").InUse; got != 0 {
		t.Fatalf("after Release: %d in use", got)
	}
	if got := e.Stat(other, "tok").Available; got != 8 {
		t.Fatalf("tokens available %d, want 8 (the settled 2 taken)", got)
	}
}

// "Blocked requests are served first-come first-served, so a large request
// is not starved by a stream of small ones" — within one process, on Redis.
func TestEdgeRedisLargeRequestNotStarvedByAStream(t *testing.T) {
	b, e := pEnv(t, cr.Options{})
	queued := make(chan struct{}, 64)
	ls := pSet(t, b, t.Name(), queued, nil, concurry.ResourceLimit{Key: "c", Capacity: 3})
	var holds []*concurry.Acquisition
	for range 3 {
		holds = append(holds, e.MustTry(ls, nil))
	}
	big := e.Go(pbg, ls, concurry.Amounts{"c": 3})
	<-queued
	var smalls []<-chan backendtest.Result
	for range 5 {
		smalls = append(smalls, e.Go(pbg, ls, nil))
		<-queued
	}
	for _, h := range holds { // one at a time: every release would fit a small one
		if err := h.Release(); err != nil {
			t.Fatal(err)
		}
		e.Stat(ls, "c") // a round trip, in which a small one that jumped would be granted
	}
	a, err := e.Wait(big)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range smalls {
		select {
		case x := <-s:
			t.Fatalf("small %d granted (%v) before the big one released", i, x.Err)
		default:
		}
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	for _, s := range smalls {
		x, err := e.Wait(s)
		if err != nil {
			t.Fatal(err)
		}
		e.Done(x, nil) // capacity 3 for 5 smalls: each must go back
	}
}

// "A context deadline that cannot be met fails at once and takes nothing"
// — but a deadline that may be met must not fail at once: behind a waiter
// that only a release can serve, a release before the deadline lets both
// through.
func TestEdgeRedisDeadlineBehindAResourceWaiterIsNotFailedAtOnce(t *testing.T) {
	b, e := pEnv(t, cr.Options{})
	queued := make(chan struct{}, 8)
	ls := pSet(t, b, t.Name(), queued, nil,
		concurry.RateLimit{Key: "u", Window: time.Hour, Capacity: 10},
		concurry.ResourceLimit{Key: "c", Capacity: 2})
	held := e.MustTry(ls, concurry.Amounts{"u": 1})
	big := e.Go(pbg, ls, concurry.Amounts{"u": 1, "c": 2})
	<-queued
	ctx, cancel := context.WithTimeout(pbg, 3*time.Second)
	defer cancel()
	third := e.Go(ctx, ls, concurry.Amounts{"u": 1})
	select {
	case <-queued:
	case r := <-third:
		t.Fatalf("behind a waiter for a release, with a deadline a release can meet: %v before waiting", r.Err)
	}
	e.Done(held, concurry.Amounts{"u": 1})
	ab, err := e.Wait(big)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-third:
		t.Fatalf("the request behind the big waiter returned (%v) while the big one holds every unit", r.Err)
	default:
	}
	e.Done(ab, concurry.Amounts{"u": 1})
	a, err := e.Wait(third)
	if err != nil {
		t.Fatalf("%v; the deadline could be met, it must not fail", err)
	}
	e.Done(a, concurry.Amounts{"u": 1})
}

// "cancellation while waiting leaves the set exactly as it was" — the head
// waiter, cancelled while it sleeps, hands its turn on: the one behind it is
// granted at once when its request fits, and nothing was spent of a limit
// that never refunds.
func TestEdgeRedisCancelHeadHandsOnTheTurn(t *testing.T) {
	b, e := pEnv(t, cr.Options{})
	queued := make(chan struct{}, 8)
	ls := pSet(t, b, t.Name(), queued, nil,
		concurry.CallLimit{Window: time.Hour, Capacity: 100, Algorithm: concurry.FixedWindow},
		concurry.ResourceLimit{Key: "c", Capacity: 2})
	held := e.MustTry(ls, nil)
	calls := e.Stat(ls, concurry.CallKey).Available
	ctx, cancel := context.WithCancel(pbg)
	head := e.Go(ctx, ls, concurry.Amounts{"c": 2})
	<-queued
	next := e.Go(pbg, ls, nil)
	<-queued
	start := time.Now()
	cancel()
	if _, err := e.Wait(head); !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled head: %v", err)
	}
	a, err := e.Wait(next)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the waiter behind the cancelled head was granted %v after the cancel", d)
	}
	if got := e.Stat(ls, concurry.CallKey).Available; got != calls-1 {
		t.Fatalf("calls available %d, want %d: the cancelled wait spent a call", got, calls-1)
	}
	e.Done(a, nil)
	e.Done(held, nil)
}

// "Acquire does the same non-blocking pass, then waits for whichever set can
// grant first. The acquisition carries the granting set's config." — a pool
// over two Redis sets, one of which cannot meet the deadline.
func TestEdgeRedisPoolWaitsForWhicheverGrantsFirst(t *testing.T) {
	b, e := pEnv(t, cr.Options{})
	mk := func(name string) *concurry.LimitSet {
		return pSet(t, b, t.Name()+"/"+name, nil, map[string]any{"region": name},
			concurry.RateLimit{Key: "tok", Window: 10 * time.Second, Capacity: 10})
	}
	slow, fast := mk("slow"), mk("fast")
	for ls, used := range map[*concurry.LimitSet]int64{slow: 10, fast: 6} {
		e.Done(e.MustTry(ls, concurry.Amounts{"tok": 10}), concurry.Amounts{"tok": used})
	}
	p, err := concurry.NewLimitPool([]*concurry.LimitSet{slow, fast})
	if err != nil {
		t.Fatal(err)
	}
	// fast has 4 and gives 5 after 1s; slow gives 5 after 5s.
	ctx, cancel := context.WithTimeout(pbg, 3*time.Second)
	defer cancel()
	start := time.Now()
	a, err := p.Acquire(ctx, concurry.Amounts{"tok": 5})
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	d := time.Since(start)
	if d < 800*time.Millisecond || d > 2500*time.Millisecond {
		t.Fatalf("granted after %v, want about 1s", d)
	}
	if got := a.Config()["region"]; got != "fast" {
		t.Fatalf("granted by %v, want fast", got)
	}
	e.Done(a, concurry.Amounts{"tok": 5})
	if got := e.Stat(slow, "tok").Available; got > 1 {
		t.Fatalf("the losing set has %d available: it spent or refilled wrongly", got)
	}
}

// The sets of one name share one queue (the conformance case
// SetsOfANameShareOneQueue checks how it serves them), kept until the last
// Close; a set of the name with other limits has a queue of its own.
func TestEdgeRedisSetsOfANameShareOneQueueUntilTheLastClose(t *testing.T) {
	b, _ := pEnv(t, cr.Options{})
	limits := []concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}}
	x := pSet(t, b, t.Name(), nil, nil, limits...)
	y := pSet(t, b, t.Name(), nil, nil, limits...)
	odd, err := b.OpenLazy(t.Name(), []backend.Spec{{Key: "c", Kind: backend.Resource, Capacity: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if n := cr.Lines(b); n != 1 {
		t.Fatalf("%d queues kept for one name, want 1", n)
	}
	odd.Close()
	x.Close()
	if n := cr.Lines(b); n != 1 {
		t.Fatalf("%d queues kept with y open, want 1", n)
	}
	y.Close()
	if n := cr.Lines(b); n != 0 {
		t.Fatalf("%d queues kept after the last Close, want 0", n)
	}
}
