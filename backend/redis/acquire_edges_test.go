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

// The queue of a Redis set — FIFO through a stream of small waiters, a
// deadline behind a waiter for a release, a cancelled head handing on its
// turn — is checked by the conformance suite's queue cases (backendtest
// edges_queue.go), which the Redis backend runs.

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
