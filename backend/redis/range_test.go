package redis_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// TestOpenRange: Open accepts exactly the contract's range, the same as
// every backend, and refuses anything outside it before reaching Redis.
func TestOpenRange(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	ctx := context.Background()
	rate := func(c int64, w time.Duration) []backend.Spec {
		return []backend.Spec{{Key: "k", Kind: backend.Rate, Window: w, Capacity: c}}
	}
	for _, c := range []struct {
		what  string
		name  string
		specs []backend.Spec
		want  error
	}{
		{"capacity 2^50", "a", rate(backend.MaxCapacity, time.Second), nil},
		{"window 366 days", "b", rate(1, backend.MaxWindow), nil},
		{"capacity 1, window 1ns", "c", rate(1, time.Nanosecond), nil},
		{"resource 2^50", "d", []backend.Spec{{Key: "r", Kind: backend.Resource, Capacity: backend.MaxCapacity}}, nil},
		{"capacity 2^50+1", "e", rate(backend.MaxCapacity+1, time.Second), backend.ErrInvalidLimit},
		{"capacity MaxInt64", "f", rate(math.MaxInt64, time.Second), backend.ErrInvalidLimit},
		{"window 366 days + 1ns", "g", rate(1, backend.MaxWindow+1), backend.ErrInvalidLimit},
		{"resource 2^50+1", "h", []backend.Spec{{Key: "r", Kind: backend.Resource, Capacity: backend.MaxCapacity + 1}}, backend.ErrInvalidLimit},
		{"key of 257 bytes", "i", []backend.Spec{{Key: strings.Repeat("k", 257), Kind: backend.Resource, Capacity: 1}}, backend.ErrInvalidLimit},
		{"name of 1025 bytes", strings.Repeat("n", 1025), rate(1, time.Second), backend.ErrInvalidLimit},
		{"no name", "", rate(1, time.Second), backend.ErrNameRequired},
	} {
		set, err := b.Open(ctx, c.name, c.specs)
		if c.want == nil && err != nil || !errors.Is(err, c.want) {
			t.Errorf("%s: Open: %v, want %v", c.what, err, c.want)
		}
		if set != nil {
			set.Close()
		}
	}
}

// TestExactAtTheEnds takes and settles at both ends of the range, for every
// algorithm: a capacity of 2^50 and 2^50−1 over 366 days, all of it taken
// at once, then overage far beyond it. Every count stays exact: the set is
// empty while in debt and exactly full again once the window has passed.
func TestExactAtTheEnds(t *testing.T) {
	client := redistest.Start(t).Client()
	for alg := algorithms.TokenBucket; alg <= algorithms.GCRA; alg++ {
		for _, c := range []int64{backend.MaxCapacity, backend.MaxCapacity - 1} {
			t.Run(alg.String()+"/"+map[bool]string{true: "2^50", false: "2^50-1"}[c == backend.MaxCapacity], func(t *testing.T) {
				exactAtTheEnds(t, client, alg, c)
			})
		}
	}
}

func exactAtTheEnds(t *testing.T, client *redis.Client, alg algorithms.Kind, capacity int64) {
	now := (time.Now().UnixMicro()/1000 + 1) * 1000
	b := cr.New(client, cr.Options{Prefix: "ends/" + t.Name()})
	cr.SetClock(b, func() int64 { return now })
	spec := backend.Spec{Key: "k", Kind: backend.Rate, Algorithm: alg, Window: backend.MaxWindow, Capacity: capacity}
	set := open(t, b, spec)
	ctx := context.Background()
	lease, err := set.Acquire(ctx, []int64{capacity}, backend.AcquireOptions{})
	if err != nil {
		t.Fatalf("taking the whole capacity: %v", err)
	}
	if _, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrWouldBlock) {
		t.Fatalf("one more unit: %v, want ErrWouldBlock", err)
	}
	if err := set.Settle(ctx, lease, []int64{capacity}, []int64{math.MaxInt64}, true, nil); err != nil {
		t.Fatalf("settling overage of MaxInt64: %v", err)
	}
	for i := range 8 { // more overage, at distinct instants: far more than 2^53 in all
		now++
		l, err := set.Acquire(ctx, []int64{0}, backend.AcquireOptions{})
		if err != nil {
			t.Fatalf("an empty take: %v", err)
		}
		if err := set.Settle(ctx, l, []int64{0}, []int64{capacity}, true, nil); err != nil {
			t.Fatalf("overage %d: %v", i, err)
		}
	}
	if got := available(t, set)[0]; got != 0 {
		t.Fatalf("in debt: %d available, want 0", got)
	}
	if alg == algorithms.SlidingWindow || alg == algorithms.FixedWindow {
		now += backend.MaxWindow.Microseconds() + 1 // debt of these algorithms lasts one window
		if got := available(t, set)[0]; got != capacity {
			t.Fatalf("a window later: %d available, want exactly %d", got, capacity)
		}
	}
}

// TestResourceAtTheEnds holds all of a resource of 2^50 and counts it
// exactly.
func TestResourceAtTheEnds(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	ctx := context.Background()
	set := open(t, b, backend.Spec{Key: "r", Kind: backend.Resource, Capacity: backend.MaxCapacity})
	l1, err := set.Acquire(ctx, []int64{backend.MaxCapacity - 1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrWouldBlock) {
		t.Fatalf("one unit beyond 2^50: %v, want ErrWouldBlock", err)
	}
	if st, _ := set.Stats(ctx); st[0].InUse != backend.MaxCapacity || st[0].Available != 0 {
		t.Fatalf("stats %+v, want 2^50 in use", st[0])
	}
	for _, l := range []backend.Lease{l1, l2} {
		if err := set.Settle(ctx, l, nil, nil, true, nil); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := set.Stats(ctx); st[0].InUse != 0 || st[0].Available != backend.MaxCapacity {
		t.Fatalf("stats %+v after release, want all 2^50 available", st[0])
	}
}

// TestSmallestWindow: capacity 1 per µs, the smallest meaningful window,
// grants once per µs, exactly.
func TestSmallestWindow(t *testing.T) {
	client := redistest.Start(t).Client()
	for alg := algorithms.TokenBucket; alg <= algorithms.GCRA; alg++ {
		t.Run(alg.String(), func(t *testing.T) {
			now := time.Now().UnixMicro()
			b := cr.New(client, cr.Options{Prefix: "smallest"})
			cr.SetClock(b, func() int64 { return now })
			set := open(t, b, backend.Spec{Key: "k", Kind: backend.Rate, Algorithm: alg, Window: time.Nanosecond, Capacity: 1})
			ctx := context.Background()
			for i := range 5 {
				if _, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{}); err != nil {
					t.Fatalf("µs %d: %v", i, err)
				}
				if _, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrWouldBlock) {
					t.Fatalf("µs %d, a second unit: %v, want ErrWouldBlock", i, err)
				}
				now++
			}
		})
	}
}

// TestPendingDeltasDoNotOverflow: non-final settles of MaxInt64 add up to
// a charge (clamped), never wrap around to a refund.
func TestPendingDeltasDoNotOverflow(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	frozen := time.Now().UnixMicro()
	cr.SetClock(b, func() int64 { return frozen })
	ctx := context.Background()
	set := open(t, b, backend.Spec{Key: "k", Kind: backend.Rate, Window: time.Hour, Capacity: 100})
	lease, err := set.Acquire(ctx, []int64{10}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := set.Settle(ctx, lease, []int64{10}, []int64{math.MaxInt64}, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := set.Settle(ctx, lease, []int64{10}, nil, true, nil); err != nil {
		t.Fatal(err)
	}
	if got := available(t, set)[0]; got != 0 {
		t.Fatalf("after overage of 2·MaxInt64: %d available, want 0 (in debt)", got)
	}
}

// TestRefundOfGCRAAtMaxDebt: overage far beyond the range stops a GCRA's
// debt at MaxDebt units, as a TokenBucket's does and as in memory; a refund
// then moves it back by the units refunded and says so.
func TestRefundOfGCRAAtMaxDebt(t *testing.T) {
	now := time.Now().UnixMicro()
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	cr.SetClock(b, func() int64 { return now })
	set := open(t, b, backend.Spec{Key: "k", Kind: backend.Rate, Algorithm: algorithms.GCRA, Window: backend.MaxWindow, Capacity: 2})
	ctx := context.Background()
	var leases [2]backend.Lease
	for i := range leases {
		l, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		leases[i] = l
	}
	if err := set.Settle(ctx, leases[0], []int64{1}, []int64{math.MaxInt64}, true, nil); err != nil {
		t.Fatal(err)
	}
	refunded := []int64{-1}
	if err := set.Settle(ctx, leases[1], []int64{1}, []int64{-1}, true, refunded); err != nil {
		t.Fatal(err)
	}
	if refunded[0] != 1 {
		t.Fatalf("a refund of 1 from a debt of MaxDebt reported %d units given back, want 1", refunded[0])
	}
	st, err := set.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Available != 0 || st[0].Debt != algorithms.MaxDebt-1 {
		t.Fatalf("stats %+v, want nothing available and a debt of MaxDebt−1", st[0])
	}
}
