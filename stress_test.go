package concurry_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
)

// charge is one change of a rate limit's usage at an instant: positive when
// granted, negative when refunded.
type charge struct {
	at time.Time
	n  int64
}

// TestStress runs 64 goroutines of mixed Acquire, TryAcquire, Update and
// Release on one set and checks, after every grant, that the resource is
// never over-held, and at the end that neither rate limit admitted more than
// its bound over any window.
func TestStress(t *testing.T) {
	const (
		goroutines = 64
		ops        = 2000
		conns      = 8
		aCap       = 200 // TokenBucket: 200 per 100ms
		bCap       = 300 // SlidingWindow: 300 per 50ms
	)
	aWin, bWin := 100*time.Millisecond, 50*time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t,
			concurry.ResourceLimit{Key: "conns", Capacity: conns},
			concurry.RateLimit{Key: "a", Window: aWin, Capacity: aCap},
			concurry.RateLimit{Key: "b", Window: bWin, Capacity: bCap, Algorithm: concurry.SlidingWindow},
		)
		var held, maxHeld atomic.Int64
		var mu sync.Mutex
		var aLog, bLog []charge
		start := time.Now()
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 7))
				for range ops {
					req := concurry.Amounts{"a": 1 + rng.Int64N(20), "b": 1 + rng.Int64N(30), "conns": 1 + rng.Int64N(2)}
					var a *concurry.Acquisition
					var err error
					if rng.IntN(2) == 0 {
						a, err = ls.TryAcquire(bg, req)
						if err != nil {
							require.ErrorIs(t, err, concurry.ErrWouldBlock)
							continue
						}
					} else if a, err = ls.Acquire(bg, req); err != nil {
						require.NoError(t, err)
					}
					now := time.Now()
					h := held.Add(req["conns"])
					require.LessOrEqual(t, h, int64(conns), "resource over-held")
					for m := maxHeld.Load(); h > m && !maxHeld.CompareAndSwap(m, h); m = maxHeld.Load() {
					}
					if rng.IntN(3) == 0 {
						time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
					}
					usedA := rng.Int64N(req["a"] + 1)
					require.NoError(t, a.Update(concurry.Amounts{"a": usedA, "b": req["b"]}))
					mu.Lock()
					aLog = append(aLog, charge{now, req["a"]}, charge{time.Now(), usedA - req["a"]})
					bLog = append(bLog, charge{now, req["b"]})
					mu.Unlock()
					held.Add(-req["conns"])
					require.NoError(t, a.Release())
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		t.Logf("%d grants in %v of fake time, max %d conns held", len(bLog), elapsed, maxHeld.Load())
		assert.Equal(t, int64(conns), maxHeld.Load(), "the resource was used to capacity")

		// TokenBucket: net units charged in any interval [s, e] never exceed
		// the burst plus what refills in e−s. Refunds count as negative
		// charges (the bucket can give them out again, and does).
		checkEveryInterval(t, aLog, aWin, aCap)
		// SlidingWindow: the sum in every window (t−W, t] stays within capacity.
		checkEveryWindow(t, bLog, bWin, bCap)
		st, err := ls.Stats(bg)
		require.NoError(t, err)
		assert.Equal(t, int64(conns), st.Limits[0].Available)
	})
}

// checkEveryInterval checks that the charges in every interval [s, e]
// between two charge instants sum to at most capacity + (e−s)·capacity/w:
// sum·w − capacity·(e−s) ≤ capacity·w, found in one pass by keeping the
// smallest prefix term seen so far.
func checkEveryInterval(t *testing.T, log []charge, w time.Duration, capacity int64) {
	t.Helper()
	slices.SortStableFunc(log, func(x, y charge) int { return x.at.Compare(y.at) })
	t0, W := log[0].at, int64(w)
	var before int64 // sum of charges before the current instant
	minTerm := int64(math.MaxInt64)
	for i := 0; i < len(log); {
		at := log[i].at
		d := int64(at.Sub(t0))
		minTerm = min(minTerm, before*W-capacity*d) // intervals starting at this instant
		for ; i < len(log) && log[i].at.Equal(at); i++ {
			before += log[i].n
		}
		if end := before*W - capacity*d; end-minTerm > capacity*W {
			t.Fatalf("more than %d + rate·interval units charged in an interval ending %v", capacity, at)
		}
	}
}

// checkEveryWindow checks that charges in every window (e−w, e] sum to at most capacity.
func checkEveryWindow(t *testing.T, log []charge, w time.Duration, capacity int64) {
	t.Helper()
	slices.SortStableFunc(log, func(x, y charge) int { return x.at.Compare(y.at) })
	var sum int64
	lo := 0
	for _, c := range log {
		sum += c.n
		for !log[lo].at.After(c.at.Add(-w)) {
			sum -= log[lo].n
			lo++
		}
		if sum > capacity {
			t.Fatalf("%d units in the window ending %v, capacity %d", sum, c.at, capacity)
		}
	}
}
