package concurry_test

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
)

// A request naming one key of one limit is granted in memory without a
// holding (a lead grant: the handle records its amount and the usage). These
// tests hold it to what a holding does.

// Updates racing the Release of a lead grant either come first, and the
// last of them is settled, or come after, and fail with ErrReleased: never
// a usage accepted and lost. One goroutine updates without pause while
// another releases, so that the release lands inside an Update often.
func TestLeadGrantUpdateRacesRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t,
			concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1_000_000},
			concurry.ResourceLimit{Key: "conns", Capacity: 1},
		)
		usage := make([]concurry.Amounts, 1000)
		for k := range usage {
			usage[k] = concurry.Amounts{"tokens": int64(k)}
		}
		refunded := int64(0)
		for range 1000 {
			a := mustTry(t, ls, concurry.Amounts{"tokens": 1000})
			var last atomic.Int64 // the usage of the last Update that returned nil
			var rerr error
			var wg sync.WaitGroup
			wg.Go(func() {
				for k := int64(1); k < 1000; k++ {
					err := a.Update(usage[k])
					if errors.Is(err, concurry.ErrReleased) {
						return
					}
					if err != nil {
						t.Errorf("Update: %v", err)
						return
					}
					last.Store(k)
				}
			})
			wg.Go(func() {
				for last.Load() == 0 {
					runtime.Gosched() // release amid the Updates
				}
				rerr = a.Release()
			})
			wg.Wait()
			tok, _ := stats(t, ls).Limit("tokens")
			conns, _ := stats(t, ls).Limit("conns")
			require.Zero(t, conns.InUse, "the connection was returned")
			require.NoError(t, rerr, "usage was reported before the release")
			require.Equal(t, refunded+1000-last.Load(), tok.Refunded, "the last usage accepted was settled")
			refunded = tok.Refunded
		}
	})
}

// A lead grant never jumps a waiter: a TryAcquire fails while an Acquire
// waits, and an Acquire that could be granted at once queues behind it.
func TestLeadGrantGivesWayToWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.RateLimit{Key: "tokens", Window: 10 * time.Second, Capacity: 10})
		a := mustTry(t, ls, concurry.Amounts{"tokens": 8})
		mustRelease(t, a, concurry.Amounts{"tokens": 8})
		start := time.Now()
		var order []int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range []int64{5, 1} {
			wg.Go(func() {
				b, err := ls.Acquire(bg, concurry.Amounts{"tokens": n})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				order = append(order, n)
				mu.Unlock()
				_ = b.Update(concurry.Amounts{"tokens": n})
				_ = b.Release()
			})
			synctest.Wait() // 5 waits for 3 more tokens; 1, which fits now, waits behind it
		}
		_, err := ls.TryAcquire(bg, concurry.Amounts{"tokens": 1})
		require.ErrorIs(t, err, concurry.ErrWouldBlock, "2 tokens are there, but a request waits")
		wg.Wait()
		assert.Equal(t, []int64{5, 1}, order)
		// 5 at 3 s, when 3 more tokens came; 1 at 4 s, the next token
		assert.Equal(t, 4*time.Second, time.Since(start))
	})
}

// A request naming a resource key alone is a lead grant too: it takes its
// amount of the resource and one of every other call and resource limit, and
// its usage can only be its grant.
func TestLeadGrantOfAResourceKey(t *testing.T) {
	ls := newSet(t,
		concurry.CallLimit{Window: time.Hour, Capacity: 100},
		concurry.ResourceLimit{Key: "conns", Capacity: 10},
		concurry.ResourceLimit{Key: "gpus", Capacity: 2},
	)
	a := mustTry(t, ls, concurry.Amounts{"conns": 3})
	assert.Equal(t, int64(1), a.Granted(concurry.CallKey))
	assert.Equal(t, int64(3), a.Granted("conns"))
	assert.Equal(t, int64(1), a.Granted("gpus"))
	assert.Equal(t, int64(7), available(t, ls, "conns"))
	require.ErrorIs(t, a.Update(concurry.Amounts{"conns": 2}), concurry.ErrInvalidRequest)
	require.ErrorIs(t, a.Update(concurry.Amounts{"gpus": 2}), concurry.ErrInvalidRequest)
	require.NoError(t, a.Update(concurry.Amounts{"conns": 3, "gpus": 1, concurry.CallKey: 1}))
	require.NoError(t, a.Release())
	assert.Zero(t, a.Granted("conns"), "released")
	assert.Equal(t, int64(10), available(t, ls, "conns"))
	assert.Equal(t, int64(2), available(t, ls, "gpus"))

	b := mustTry(t, ls, concurry.Amounts{"conns": 1})
	require.NoError(t, b.Release())
	st, err := ls.Stats(bg)
	require.NoError(t, err)
	want := map[string]int64{concurry.CallKey: 2, "conns": 4, "gpus": 2}
	for _, l := range st.Limits {
		assert.Equal(t, want[l.Key], l.Granted, l.Key)
	}
}

// The usage of a lead grant is recorded at both ends of its range: 0
// refunds the whole grant, MaxCapacity is charged as overage; one past
// either end fails and changes nothing.
func TestLeadGrantUsageAtTheEndsOfItsRange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t,
			concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: concurry.MaxCapacity},
			concurry.RateLimit{Key: "other", Window: time.Hour, Capacity: 10},
		)
		a := mustTry(t, ls, concurry.Amounts{"tokens": concurry.MaxCapacity})
		assert.Zero(t, a.Granted("other"), "not requested")
		require.ErrorIs(t, a.Update(concurry.Amounts{"other": 1}), concurry.ErrUnknownKey, "not held")
		require.ErrorIs(t, a.Update(concurry.Amounts{"tokens": -1}), concurry.ErrInvalidRequest)
		require.ErrorIs(t, a.Update(concurry.Amounts{"tokens": concurry.MaxCapacity + 1}), concurry.ErrInvalidRequest)
		require.NoError(t, a.Update(concurry.Amounts{"tokens": 0}))
		require.NoError(t, a.Release())
		tok, _ := stats(t, ls).Limit("tokens")
		assert.Equal(t, concurry.MaxCapacity, tok.Refunded)
		assert.Equal(t, concurry.MaxCapacity, tok.Available)

		b := mustTry(t, ls, concurry.Amounts{"tokens": 1})
		require.NoError(t, b.Update(concurry.Amounts{"tokens": concurry.MaxCapacity}))
		require.NoError(t, b.Release())
		tok, _ = stats(t, ls).Limit("tokens")
		assert.Equal(t, concurry.MaxCapacity-1, tok.Overage)
		assert.Equal(t, int64(0), tok.Available)
		assert.Equal(t, int64(0), tok.Debt, "the whole capacity was used, none beyond it")
	})
}

func stats(t *testing.T, ls *concurry.LimitSet) concurry.Stats {
	t.Helper()
	st, err := ls.Stats(bg)
	require.NoError(t, err)
	return st
}
