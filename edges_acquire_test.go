package concurry_test

// Edge cases of Acquire, waiting and lifecycle (sets, pools, unixsock), each quoting the contract it checks.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend/unixsock"
	"github.com/concurry/concurry/internal/backendtest"
)

// drain takes n units of key from ls and spends them all.
func drain(t *testing.T, ls *concurry.LimitSet, key string, n int64) {
	t.Helper()
	mustRelease(t, mustTry(t, ls, concurry.Amounts{key: n}), concurry.Amounts{key: n})
}

// newPool makes a LimitPool of sets, failing the test on an error.
func newPool(t *testing.T, sets []*concurry.LimitSet, opts ...concurry.PoolOption) *concurry.LimitPool {
	t.Helper()
	p, err := concurry.NewLimitPool(sets, opts...)
	require.NoError(t, err)
	return p
}

// poolStats returns the Stats of p, failing the test on an error.
func poolStats(t *testing.T, p *concurry.LimitPool) concurry.PoolStats {
	t.Helper()
	st, err := p.Stats(bg)
	require.NoError(t, err)
	return st
}

// rateAndResource returns a set of 10 "u" a second (TokenBucket) and a
// resource "c" of conns units.
func rateAndResource(t *testing.T, conns int64) *concurry.LimitSet {
	t.Helper()
	return newSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10}, concurry.ResourceLimit{Key: "c", Capacity: conns})
}

// drainedSets returns n region sets (regionSets) with every unit of
// "tokens" spent.
func drainedSets(t *testing.T, n int, capacity int64, window time.Duration) []*concurry.LimitSet {
	t.Helper()
	sets := regionSets(t, n, capacity, window)
	for _, s := range sets {
		drain(t, s, "tokens", capacity)
	}
	return sets
}

// staggeredSets returns two region sets of 10 "tokens" a second that grant
// 5 at different instants: r0 at +500ms (drained), r1 at +300ms (8 spent).
func staggeredSets(t *testing.T) []*concurry.LimitSet {
	t.Helper()
	sets := regionSets(t, 2, 10, time.Second)
	drain(t, sets[0], "tokens", 10)
	mustRelease(t, mustTry(t, sets[1], concurry.Amounts{"tokens": 10}), concurry.Amounts{"tokens": 8})
	return sets
}

// ---------------------------------------------------------------- Limits

// "NewLimitSet rejects anything else with ErrInvalidLimit naming the limit."
// "Capacities up to 2^50 and windows up to 366 days; anything larger is
// ErrInvalidLimit at definition."
func TestEdgeInvalidLimitNamesTheOffender(t *testing.T) {
	cases := map[string]struct {
		limits []concurry.Limit
		name   string // what the error must contain
	}{
		"capacity over 2^50": {[]concurry.Limit{concurry.RateLimit{Key: "tok", Window: time.Second, Capacity: concurry.MaxCapacity + 1}}, "tok"},
		"window over 366d":   {[]concurry.Limit{concurry.RateLimit{Key: "tok", Window: concurry.MaxWindow + 1, Capacity: 1}}, "tok"},
		"call zero window":   {[]concurry.Limit{concurry.CallLimit{Capacity: 1}}, concurry.CallKey},
		"resource zero cap":  {[]concurry.Limit{concurry.ResourceLimit{Key: "conns"}}, "conns"},
		"dup key+window": {[]concurry.Limit{
			concurry.RateLimit{Key: "ok", Window: time.Second, Capacity: 1},
			concurry.RateLimit{Key: "dup", Window: time.Minute, Capacity: 1},
			concurry.RateLimit{Key: "dup", Window: time.Minute, Capacity: 2},
		}, "dup"},
		"resource shares call key": {[]concurry.Limit{
			concurry.CallLimit{Window: time.Second, Capacity: 1},
			concurry.ResourceLimit{Key: concurry.CallKey, Capacity: 1},
		}, concurry.CallKey},
		"resource shares rate key, resource first": {[]concurry.Limit{
			concurry.ResourceLimit{Key: "x", Capacity: 1},
			concurry.RateLimit{Key: "x", Window: time.Second, Capacity: 1},
		}, "x"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ls, err := concurry.NewLimitSet(c.limits)
			require.ErrorIs(t, err, concurry.ErrInvalidLimit)
			assert.Nil(t, ls)
			assert.Contains(t, err.Error(), c.name)
		})
	}
	// Both ends of the range are accepted.
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tok", Window: concurry.MaxWindow, Capacity: concurry.MaxCapacity},
		concurry.RateLimit{Key: "tok", Window: time.Nanosecond, Capacity: 1},
		concurry.ResourceLimit{Key: "c", Capacity: concurry.MaxCapacity},
	})
	require.NoError(t, err)
	require.NoError(t, ls.Close())
}

// "several RateLimits — or several CallLimits — may share one key when their
// windows differ: a request for that key takes from every one of them,
// atomically." With two CallLimits, every request takes one unit of each.
func TestEdgeTwoCallLimitsBothTakenAtExactInstants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 1 per 100ms, and 2 per 400ms (one unit per 200ms).
		ls := newSet(t,
			concurry.CallLimit{Window: 400 * time.Millisecond, Capacity: 2},
			concurry.CallLimit{Window: 100 * time.Millisecond, Capacity: 1})
		l, ok := ls.Limit(concurry.CallKey)
		require.True(t, ok)
		assert.Equal(t, concurry.CallLimit{Window: 100 * time.Millisecond, Capacity: 1}, l, "Limit returns the shortest window")
		assert.Equal(t, []string{concurry.CallKey}, ls.Keys())
		start := time.Now()
		var got []time.Duration
		for range 4 {
			a, err := ls.Acquire(bg, nil)
			require.NoError(t, err)
			got = append(got, time.Since(start))
			require.NoError(t, a.Release())
		}
		// 0: both full. 100ms: short refilled, long has 1.5. 200ms: short
		// refilled, long 1.0. Then the long one needs a whole unit: 400ms.
		assert.Equal(t, []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}, got)
	})
}

// ---------------------------------------------------------------- Requests

// "Unknown key, amount ≤ 0, or amount > that limit's capacity: fail at once
// ... Nothing is taken." For a key shared by several windows, the smallest
// capacity bounds it; naming the call key takes that many calls.
func TestEdgeNamedCallKeyAmountAndCapacity(t *testing.T) {
	ls := newSet(t,
		concurry.CallLimit{Window: time.Hour, Capacity: 10},
		concurry.CallLimit{Window: time.Minute, Capacity: 3},
		concurry.RateLimit{Key: "tok", Window: time.Minute, Capacity: 100})
	_, err := ls.TryAcquire(bg, concurry.Amounts{concurry.CallKey: 4, "tok": 1})
	require.ErrorIs(t, err, concurry.ErrExceedsCapacity, "4 calls exceed the minute's 3")
	_, err = ls.Acquire(bg, concurry.Amounts{concurry.CallKey: 4, "tok": 1})
	require.ErrorIs(t, err, concurry.ErrExceedsCapacity)
	_, err = ls.Acquire(bg, concurry.Amounts{concurry.CallKey: 0, "tok": 1})
	require.ErrorIs(t, err, concurry.ErrInvalidRequest)
	st, err := ls.Stats(bg)
	require.NoError(t, err)
	assert.Equal(t, []int64{10, 3, 100}, []int64{st.Limits[0].Available, st.Limits[1].Available, st.Limits[2].Available}, "nothing taken")

	a := mustTry(t, ls, concurry.Amounts{concurry.CallKey: 3, "tok": 1})
	assert.Equal(t, int64(3), a.Granted(concurry.CallKey))
	st, err = ls.Stats(bg)
	require.NoError(t, err)
	assert.Equal(t, []int64{7, 0, 99}, []int64{st.Limits[0].Available, st.Limits[1].Available, st.Limits[2].Available})
	mustRelease(t, a, concurry.Amounts{"tok": 1})
}

// "a RateLimit is taken only when named. An empty or nil request on a set
// that holds a RateLimit is an error" — a request naming only a resource is
// not empty: it takes no rate units, and its Release has no usage to miss.
func TestEdgeRequestNamingOnlyAResource(t *testing.T) {
	ls := guideSet(t)
	a, err := ls.Acquire(bg, concurry.Amounts{"conns": 2})
	require.NoError(t, err)
	assert.Equal(t, int64(1000), available(t, ls, "tokens"))
	assert.Equal(t, int64(99), available(t, ls, concurry.CallKey))
	assert.Equal(t, int64(0), a.Granted("tokens"))
	require.NoError(t, a.Release(), "no RateLimit was acquired, so no usage is missing")
	assert.Equal(t, int64(3), available(t, ls, "conns"))
}

// "Every error a LimitSet, LimitPool or Acquisition returns matches one of
// these" — and invalid requests fail at once even while others wait, and
// even with a deadline that could never be met.
func TestEdgeInvalidRequestFailsAtOnceWhileOthersWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := rateAndResource(t, 1)
		held := mustTry(t, ls, concurry.Amounts{"u": 10})
		errc := make(chan error, 1)
		go func() {
			a, err := ls.Acquire(bg, concurry.Amounts{"u": 1})
			if err == nil {
				err = a.Release()
				if errors.Is(err, concurry.ErrUsageNotReported) {
					err = nil
				}
			}
			errc <- err
		}()
		synctest.Wait()
		start := time.Now()
		for _, c := range []struct {
			req  concurry.Amounts
			want error
		}{
			{concurry.Amounts{"u": 11}, concurry.ErrExceedsCapacity},
			{concurry.Amounts{"nope": 1, "u": 1}, concurry.ErrUnknownKey},
			{concurry.Amounts{"u": -1}, concurry.ErrInvalidRequest},
			{concurry.Amounts{"u": 1, "c": 2}, concurry.ErrExceedsCapacity},
		} {
			_, err := ls.Acquire(bg, c.req)
			require.ErrorIs(t, err, c.want)
		}
		assert.Zero(t, time.Since(start))
		mustRelease(t, held, concurry.Amounts{"u": 10})
		require.NoError(t, <-errc)
	})
}

// ---------------------------------------------------------------- FIFO

// "Blocked requests are served first-come first-served, so a large request
// is not starved by a stream of small ones, and TryAcquire never jumps that
// queue" — on a set of one ResourceLimit (a semaphore), whose grants and
// releases take a lock-free path while nobody waits.
func TestEdgeSemaphoreLargeRequestNotStarved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.ResourceLimit{Key: "c", Capacity: 2})
		a := mustTry(t, ls, nil)
		bigc := backendtest.Go(bg, ls, concurry.Amounts{"c": 2})
		synctest.Wait()
		// One unit is free, but the big request waits: TryAcquire must not take it.
		_, err := ls.TryAcquire(bg, nil)
		require.ErrorIs(t, err, concurry.ErrWouldBlock, "TryAcquire jumped the big waiter")
		smallc := backendtest.Go(bg, ls, nil)
		synctest.Wait()
		select {
		case <-smallc:
			t.Fatal("a small Acquire overtook the big waiter")
		default:
		}
		require.NoError(t, a.Release())
		synctest.Wait()
		big := <-bigc
		require.NoError(t, big.Err)
		select {
		case <-smallc:
			t.Fatal("the small one was granted while the big one holds everything")
		default:
		}
		require.NoError(t, big.A.Release())
		small := <-smallc
		require.NoError(t, small.Err)
		require.NoError(t, small.A.Release())
		assert.Equal(t, int64(2), available(t, ls, "c"))
	})
}

// "TryAcquire never jumps that queue (it fails while any earlier request is
// waiting in that set)" — also when it names keys the waiter does not.
func TestEdgeTryAcquireOfOtherKeyFailsWhileAnyoneWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t,
			concurry.RateLimit{Key: "a", Window: time.Second, Capacity: 10},
			concurry.RateLimit{Key: "b", Window: time.Second, Capacity: 10})
		drain(t, ls, "a", 10)
		done := make(chan time.Duration, 1)
		start := time.Now()
		go func() {
			x, err := ls.Acquire(bg, concurry.Amounts{"a": 5})
			require.NoError(t, err)
			done <- time.Since(start)
			mustRelease(t, x, concurry.Amounts{"a": 5})
		}()
		synctest.Wait()
		_, err := ls.TryAcquire(bg, concurry.Amounts{"b": 1})
		require.ErrorIs(t, err, concurry.ErrWouldBlock)
		assert.Equal(t, 500*time.Millisecond, <-done)
		drain(t, ls, "b", 1)
	})
}

// ---------------------------------------------------------------- Deadlines

// "A context deadline that cannot be met fails at once and takes nothing" —
// also when a resource is held too: the rate limit alone cannot meet it.
func TestEdgeUnmeetableDeadlineWithAResourceHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := rateAndResource(t, 1)
		held := mustTry(t, ls, concurry.Amounts{"u": 10})
		waited, _, err := acquireWithin(ls, 400*time.Millisecond, concurry.Amounts{"u": 5}) // rate alone: +500ms
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Zero(t, waited, "the rate limits cannot meet it: fail at once")
		mustRelease(t, held, concurry.Amounts{"u": 10})
		assert.Equal(t, int64(1), available(t, ls, "c"))
	})
}

// "A context deadline that cannot be met fails at once" — through the queue:
// a waiter behind a big one, one nanosecond short, fails at once; at the
// exact instant it is met (TokenBucket).
func TestEdgeDeadlineBehindAWaiterExactInstant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10})
		drain(t, ls, "u", 10)
		var wg sync.WaitGroup
		wg.Go(func() {
			a, err := ls.Acquire(bg, concurry.Amounts{"u": 10}) // at +1s
			require.NoError(t, err)
			mustRelease(t, a, concurry.Amounts{"u": 10})
		})
		synctest.Wait()
		waited, _, err := acquireWithin(ls, 1100*time.Millisecond-time.Nanosecond, concurry.Amounts{"u": 1}) // at +1.1s
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Zero(t, waited)
		waited, a, err := acquireWithin(ls, 1100*time.Millisecond, concurry.Amounts{"u": 1})
		require.NoError(t, err)
		assert.Equal(t, 1100*time.Millisecond, waited)
		mustRelease(t, a, concurry.Amounts{"u": 1})
		wg.Wait()
	})
}

// When only a release can make room, the deadline is reached while
// waiting: "Errors from ctx still match context.DeadlineExceeded", and the
// set is as it was.
func TestEdgeDeadlineReachedWhileWaitingOnAResource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.CallLimit{Window: time.Hour, Capacity: 10, Algorithm: concurry.SlidingWindow},
			concurry.ResourceLimit{Key: "c", Capacity: 1})
		held := mustTry(t, ls, nil)
		waited, _, err := acquireWithin(ls, 300*time.Millisecond, nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 300*time.Millisecond, waited)
		assert.Equal(t, int64(9), available(t, ls, concurry.CallKey), "the failed wait took no call")
		require.NoError(t, held.Release())
		mustRelease(t, mustTry(t, ls, nil), nil)
	})
}

// ---------------------------------------------------------------- Cancellation

// "cancellation while waiting leaves the set exactly as it was" — a waiter
// cancelled in the middle of the queue: the one behind it is served as if
// it had never come.
func TestEdgeCancelMiddleWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10})
		drain(t, ls, "u", 10)
		start := time.Now()
		var wg sync.WaitGroup
		var first, last time.Duration
		wg.Go(func() {
			a, err := ls.Acquire(bg, concurry.Amounts{"u": 10}) // +1s
			require.NoError(t, err)
			first = time.Since(start)
			mustRelease(t, a, concurry.Amounts{"u": 10})
		})
		synctest.Wait()
		ctx, cancel := context.WithCancel(bg)
		mid := backendtest.Go(ctx, ls, concurry.Amounts{"u": 5}) // would be +1.5s
		synctest.Wait()
		wg.Go(func() {
			a, err := ls.Acquire(bg, concurry.Amounts{"u": 2}) // +1.2s without the middle one
			require.NoError(t, err)
			last = time.Since(start)
			mustRelease(t, a, concurry.Amounts{"u": 2})
		})
		synctest.Wait()
		time.Sleep(200 * time.Millisecond)
		cancel()
		require.ErrorIs(t, (<-mid).Err, context.Canceled)
		wg.Wait()
		assert.Equal(t, time.Second, first)
		assert.Equal(t, 1200*time.Millisecond, last)
	})
}

// The same for a LeakyBucket, whose waiters depart at paced instants: "A
// request of n units departs at max(now, next)" and cancellation "leaves the
// set exactly as it was".
func TestEdgeCancelLeakyWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 2, Algorithm: concurry.LeakyBucket}) // T = 500ms
		start := time.Now()
		a := mustTry(t, ls, concurry.Amounts{"u": 1}) // departs at 0; next = 500ms
		mustRelease(t, a, concurry.Amounts{"u": 1})
		ctx, cancel := context.WithCancel(bg)
		w := backendtest.Go(ctx, ls, concurry.Amounts{"u": 1}) // would depart at 500ms
		synctest.Wait()
		got := make(chan time.Duration, 1)
		go func() {
			b, err := ls.Acquire(bg, concurry.Amounts{"u": 1}) // 1s behind it; 500ms without it
			require.NoError(t, err)
			got <- time.Since(start)
			mustRelease(t, b, concurry.Amounts{"u": 1})
		}()
		synctest.Wait()
		time.Sleep(100 * time.Millisecond)
		cancel()
		require.ErrorIs(t, (<-w).Err, context.Canceled)
		assert.Equal(t, 500*time.Millisecond, <-got)
	})
}

// "cancellation while waiting leaves the set exactly as it was" for the
// algorithms that never refund: a waiter held up by a resource has its call
// free, and must not spend it when cancelled.
func TestEdgeCancelSpendsNoCallOfANonRefundingAlgorithm(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.SlidingWindow, concurry.FixedWindow, concurry.LeakyBucket, concurry.TokenBucket, concurry.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := newSet(t, concurry.CallLimit{Window: time.Hour, Capacity: 10, Algorithm: alg},
					concurry.ResourceLimit{Key: "c", Capacity: 1})
				held := mustTry(t, ls, nil)
				before := available(t, ls, concurry.CallKey)
				ctx, cancel := context.WithCancel(bg)
				w := backendtest.Go(ctx, ls, nil)
				synctest.Wait()
				cancel()
				require.ErrorIs(t, (<-w).Err, context.Canceled)
				assert.Equal(t, before, available(t, ls, concurry.CallKey))
				require.NoError(t, held.Release())
			})
		})
	}
}

// A cancel at the very instant the grant comes due: either the Acquire
// fails with Canceled and took nothing, or it succeeds and holds its grant.
// Never a half state.
func TestEdgeCancelAtTheInstantOfTheGrant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := rateAndResource(t, 1)
		drain(t, ls, "u", 10)
		ctx, cancel := context.WithCancel(bg)
		time.AfterFunc(500*time.Millisecond, cancel)
		a, err := ls.Acquire(ctx, concurry.Amounts{"u": 5}) // due at +500ms
		if err != nil {
			require.ErrorIs(t, err, context.Canceled)
			assert.Nil(t, a)
			assert.Equal(t, int64(5), available(t, ls, "u"))
			assert.Equal(t, int64(1), available(t, ls, "c"))
			return
		}
		assert.Equal(t, int64(0), available(t, ls, "u"))
		assert.Equal(t, int64(0), available(t, ls, "c"))
		mustRelease(t, a, concurry.Amounts{"u": 5})
	})
}

// "Errors from ctx still match context.DeadlineExceeded / context.Canceled"
// — through a LimitPool's wait on several sets, with the cause kept.
func TestEdgePoolCancelCauseMatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, drainedSets(t, 2, 10, time.Hour))
		why := errors.New("shutting down")
		ctx, cancel := context.WithCancelCause(bg)
		w := backendtest.Go(ctx, p, concurry.Amounts{"tokens": 1})
		synctest.Wait()
		cancel(why)
		err := (<-w).Err
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, why)
	})
}

// ---------------------------------------------------------------- Close

// "Close() wakes every blocked Acquire with ErrClosed" — a pool waiting on
// two sets, one of which is closed, still gets the other's grant; when every
// set is closed, ErrClosed.
func TestEdgePoolWaitSurvivesOneSetClosing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sets := drainedSets(t, 2, 10, time.Second)
		p := newPool(t, sets)
		start := time.Now()
		ch := backendtest.Go(bg, p, concurry.Amounts{"tokens": 5})
		synctest.Wait()
		time.Sleep(100 * time.Millisecond)
		require.NoError(t, sets[0].Close())
		r := <-ch
		require.NoError(t, r.Err)
		assert.Equal(t, "r1", region(r.A))
		assert.Equal(t, 500*time.Millisecond, time.Since(start), "granted at once when r1 could")
		mustRelease(t, r.A, concurry.Amounts{"tokens": 5})

		ch = backendtest.Go(bg, p, concurry.Amounts{"tokens": 10})
		synctest.Wait()
		require.NoError(t, sets[1].Close())
		r = <-ch
		require.ErrorIs(t, r.Err, concurry.ErrClosed)
		assert.Nil(t, r.A)
	})
}

// "Close() wakes every blocked Acquire with ErrClosed; ... acquisitions
// already granted can still be updated and released" — their refunds and
// overage are still applied, and Do on the closed set fails without fn.
func TestEdgeCloseThenSettleStillCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Hour, Capacity: 10}, concurry.ResourceLimit{Key: "c", Capacity: 2})
		a := mustTry(t, ls, concurry.Amounts{"u": 6})
		b := mustTry(t, ls, concurry.Amounts{"u": 2})
		require.NoError(t, ls.Close())
		require.NoError(t, a.Update(concurry.Amounts{"u": 1})) // 5 refunded
		require.NoError(t, a.Release())
		require.NoError(t, b.Update(concurry.Amounts{"u": 4})) // 2 overage
		require.NoError(t, b.Release())
		st, err := ls.Stats(bg)
		require.NoError(t, err)
		u, _ := st.Limit("u")
		c, _ := st.Limit("c")
		assert.Equal(t, int64(5), u.Available, "10 - 1 - 4")
		assert.Equal(t, int64(0), c.InUse)
		called := false
		err = ls.Do(bg, concurry.Amounts{"u": 1}, func(context.Context, *concurry.Acquisition) error { called = true; return nil })
		require.ErrorIs(t, err, concurry.ErrClosed)
		assert.False(t, called)
	})
}

// ---------------------------------------------------------------- Empty set

// "An empty LimitSet (no limits) grants every request at once and at no
// cost, whatever keys it names, and accepts any Update".
func TestEdgeEmptySetAcceptsAnyUpdate(t *testing.T) {
	ls, err := concurry.NewLimitSet(nil)
	require.NoError(t, err)
	defer ls.Close()
	a, err := ls.Acquire(bg, concurry.Amounts{"tokens": 5, "": 0})
	require.NoError(t, err)
	require.NoError(t, a.Update(concurry.Amounts{"tokens": -3}), "any Update")
	require.NoError(t, a.Update(concurry.Amounts{"tokens": math.MaxInt64}), "any Update")
	require.NoError(t, a.Update(nil))
	require.NoError(t, a.Release())
	require.NoError(t, a.Update(concurry.Amounts{"tokens": 1}), "any Update, even after Release (the doc: Update accepts any usage)")
	// Nested acquisitions of an empty set are independent and free.
	var as []*concurry.Acquisition
	for range 100 {
		x, err := ls.TryAcquire(bg, concurry.Amounts{"conns": 1 << 50})
		require.NoError(t, err)
		as = append(as, x)
	}
	for _, x := range as {
		require.NoError(t, x.Release())
	}
}

// An empty set in a pool: "TryAcquire tries the chosen set, then the others
// in order, and succeeds on the first that can grant", carrying its config.
func TestEdgePoolFailsOverToAnEmptySet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		full := drainedSets(t, 1, 10, time.Hour)[0]
		empty, err := concurry.NewLimitSet(nil, concurry.WithConfig(map[string]any{"region": "free"}))
		require.NoError(t, err)
		waited, a := acquireAt(t, newPool(t, []*concurry.LimitSet{full, empty}), concurry.Amounts{"tokens": 3})
		assert.Zero(t, waited)
		assert.Equal(t, "free", region(a))
		require.NoError(t, a.Release())
	})
}

// ---------------------------------------------------------------- Nested

// "Nested acquisitions are independent: each takes its own CallLimit unit
// (and, like any request, a unit of every ResourceLimit it does not name)."
// With one unit of the resource, the nested request cannot be granted.
func TestEdgeNestedAcquisitionTakesItsOwnResourceUnit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.CallLimit{Window: time.Hour, Capacity: 10}, concurry.ResourceLimit{Key: "c", Capacity: 1})
		err := ls.Do(bg, nil, func(ctx context.Context, outer *concurry.Acquisition) error {
			_, err := ls.TryAcquire(ctx, nil)
			require.ErrorIs(t, err, concurry.ErrWouldBlock)
			tctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err = ls.Acquire(tctx, nil)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, int64(9), available(t, ls, concurry.CallKey), "one call for the outer; the failed inner ones took none")
	})
}

// ---------------------------------------------------------------- LimitPool

// "Failover: TryAcquire tries the chosen set, then the others in order" —
// from the chosen one, wrapping around.
func TestEdgePoolFailoverOrderFromTheChosenSet(t *testing.T) {
	sets := regionSets(t, 3, 10, time.Hour)
	drain(t, sets[2], "tokens", 10)
	p := newPool(t, sets, concurry.WithWorkerIndex(2)) // picks r2 first: exhausted
	a := mustTry(t, p, concurry.Amounts{"tokens": 1})
	assert.Equal(t, "r0", region(a), "after r2 comes r0")
	mustRelease(t, a, concurry.Amounts{"tokens": 1})
	drain(t, sets[1], "tokens", 10)
	p2 := newPool(t, sets, concurry.WithWorkerIndex(1)) // picks r1: exhausted; r2: exhausted
	a = mustTry(t, p2, concurry.Amounts{"tokens": 1})
	assert.Equal(t, "r0", region(a))
	mustRelease(t, a, concurry.Amounts{"tokens": 1})
}

// A set with a waiter refuses TryAcquire (it never jumps the queue), so the
// pool's TryAcquire fails over to a free set rather than failing.
func TestEdgePoolFailsOverPastAQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sets := regionSets(t, 2, 10, time.Hour)
		hold := mustTry(t, sets[0], concurry.Amounts{"tokens": 5})
		w := backendtest.Go(bg, sets[0], concurry.Amounts{"tokens": 10})
		synctest.Wait()
		a := mustTry(t, newPool(t, sets), concurry.Amounts{"tokens": 1}) // r0 has 5 free but a waiter
		assert.Equal(t, "r1", region(a))
		mustRelease(t, a, concurry.Amounts{"tokens": 1})
		require.NoError(t, sets[0].Close())
		require.ErrorIs(t, (<-w).Err, concurry.ErrClosed)
		mustRelease(t, hold, concurry.Amounts{"tokens": 5})
	})
}

// "Acquire does the same non-blocking pass, then waits for whichever set can
// grant first" — a set that can never grant the request (over its
// capacity) is skipped, and one that cannot meet the deadline does not fail
// the pool while another can.
func TestEdgePoolWaitsOnTheSetThatCanMeetTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		small, err := concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: 4}},
			concurry.WithConfig(map[string]any{"region": "small"}))
		require.NoError(t, err)
		defer small.Close()
		sets := regionSets(t, 2, 10, time.Second)
		drain(t, sets[0], "tokens", 10)
		time.Sleep(100 * time.Millisecond)
		drain(t, sets[1], "tokens", 10)
		p := newPool(t, []*concurry.LimitSet{small, sets[1], sets[0]})
		// r0 has 1 now and gives 6 at +500ms; r1 at +600ms, past the
		// deadline; small can never grant 6.
		waited, a, err := acquireWithin(p, 550*time.Millisecond, concurry.Amounts{"tokens": 6})
		require.NoError(t, err)
		assert.Equal(t, 500*time.Millisecond, waited)
		assert.Equal(t, "r0", region(a))
		mustRelease(t, a, concurry.Amounts{"tokens": 6})
		assert.Equal(t, []int64{0, 0, 1}, poolStats(t, p).Dispatched)
	})
}

// "It fails at once when no set can meet ctx's deadline" — and takes
// nothing anywhere; the error matches DeadlineExceeded.
func TestEdgePoolUnmeetableDeadlineTakesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sets := drainedSets(t, 3, 10, time.Second)
		p := newPool(t, sets, concurry.WithWorkerIndex(1))
		waited, _, err := acquireWithin(p, 500*time.Millisecond-time.Nanosecond, concurry.Amounts{"tokens": 5})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Zero(t, waited)
		time.Sleep(500 * time.Millisecond)
		for _, s := range sets {
			assert.Equal(t, int64(5), available(t, s, "tokens"))
		}
	})
}

// "RoundRobin starts at WorkerIndex" — also for Acquire (a wait), and the
// acquisition "carries the granting set's config".
func TestEdgePoolAcquireRoundRobinFromWorkerIndex(t *testing.T) {
	sets := regionSets(t, 4, 100, time.Hour)
	p := newPool(t, sets, concurry.WithWorkerIndex(6))
	var got []string
	for range 5 {
		a, err := p.Acquire(bg, concurry.Amounts{"tokens": 1})
		require.NoError(t, err)
		got = append(got, region(a))
		assert.Same(t, sets[map[string]int{"r0": 0, "r1": 1, "r2": 2, "r3": 3}[region(a)]], a.Set())
		mustRelease(t, a, concurry.Amounts{"tokens": 1})
	}
	assert.Equal(t, []string{"r2", "r3", "r0", "r1", "r2"}, got)
}

// A pool's invalid request fails at once with the reason when no set could
// ever grant it.
func TestEdgePoolInvalidEverywhereFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, regionSets(t, 2, 10, time.Second))
		start := time.Now()
		_, err := p.Acquire(bg, concurry.Amounts{"tokens": 11})
		require.ErrorIs(t, err, concurry.ErrExceedsCapacity)
		_, err = p.Acquire(bg, nil)
		require.ErrorIs(t, err, concurry.ErrInvalidRequest)
		assert.Zero(t, time.Since(start))
	})
}

// "A context deadline that cannot be met fails at once" — but one that may
// be met must not: behind a waiter that only a release can serve, the
// request's own limits are free, and a release before the deadline lets
// both through.
func TestEdgeDeadlineBehindAResourceWaiterIsNotFailedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := rateAndResource(t, 2)
		held := mustTry(t, ls, concurry.Amounts{"u": 1})
		bigc := backendtest.Go(bg, ls, concurry.Amounts{"u": 1, "c": 2})
		synctest.Wait()
		time.AfterFunc(300*time.Millisecond, func() { mustRelease(t, held, concurry.Amounts{"u": 1}) })
		time.AfterFunc(400*time.Millisecond, func() {
			big := <-bigc
			require.NoError(t, big.Err)
			mustRelease(t, big.A, concurry.Amounts{"u": 1})
		})
		waited, a, err := acquireWithin(ls, time.Second, concurry.Amounts{"u": 1})
		require.NoError(t, err, "the deadline could be met: it must not fail at once")
		assert.Equal(t, 400*time.Millisecond, waited)
		mustRelease(t, a, concurry.Amounts{"u": 1})
	})
}

// ---------------------------------------------------------------- unixsock

// sockServer starts an in-process Unix-socket server and returns two
// clients of it, each with its own connections (two processes, in effect).
func sockServer(t *testing.T) (x, y *unixsock.Client) {
	t.Helper()
	path := edgeServer(t)
	for _, c := range []**unixsock.Client{&x, &y} {
		cl, err := unixsock.Dial(path, unixsock.Options{DisableAutoHost: true, Conns: 1})
		require.NoError(t, err)
		t.Cleanup(func() { cl.Close() })
		*c = cl
	}
	return x, y
}

// sockSet opens name with limits through client c; queued, when not nil,
// receives a value each time a request starts to wait.
func sockSet(t *testing.T, c *unixsock.Client, name string, queued chan<- struct{}, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	opts := []concurry.Option{concurry.WithName(name), concurry.WithBackend(c)}
	if queued != nil {
		opts = append(opts, concurry.WithHooks(concurry.Hooks{WaitStart: func(concurry.WaitInfo) { queued <- struct{}{} }}))
	}
	ls, err := concurry.NewLimitSet(limits, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { ls.Close() })
	return ls
}

// sockPair opens name with limits through two clients of one server (two
// processes, in effect); qx and qy receive a value each time a request of x
// or y starts to wait.
func sockPair(t *testing.T, name string, limits ...concurry.Limit) (x, y *concurry.LimitSet, qx, qy chan struct{}) {
	t.Helper()
	cx, cy := sockServer(t)
	qx, qy = make(chan struct{}, 4), make(chan struct{}, 4)
	return sockSet(t, cx, name, qx, limits...), sockSet(t, cy, name, qy, limits...), qx, qy
}

// signal sends on ch without blocking: a hook that signals a wait never
// blocks the waiter, however many waits there are.
func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

var sockLimits = []concurry.Limit{
	concurry.CallLimit{Window: time.Hour, Capacity: 100, Algorithm: concurry.SlidingWindow},
	concurry.ResourceLimit{Key: "c", Capacity: 2},
}

// "TryAcquire never jumps that queue (it fails while any earlier request is
// waiting in that set)" — on a Unix-socket set, the waiter and the
// TryAcquire coming from two processes (two clients) of the one set.
func TestEdgeUnixsockTryAcquireOfAnotherProcessDoesNotJump(t *testing.T) {
	x, y, qx, qy := sockPair(t, "fifo", sockLimits...)
	held := mustTry(t, x, nil)
	big := backendtest.Go(bg, x, concurry.Amounts{"c": 2})
	<-qx
	_, err := y.TryAcquire(bg, nil)
	require.ErrorIs(t, err, concurry.ErrWouldBlock, "another process's TryAcquire jumped the queue")
	small := backendtest.Go(bg, y, nil)
	<-qy // one unit is free, but the small request queues behind the big one
	require.NoError(t, held.Release())
	r := backendtest.Await(t, big)
	require.NoError(t, r.Err)
	select {
	case s := <-small:
		t.Fatalf("the small request was granted while the big one holds everything (err %v)", s.Err)
	default:
	}
	require.NoError(t, r.A.Release())
	s := backendtest.Await(t, small)
	require.NoError(t, s.Err)
	require.NoError(t, s.A.Release())
}

// "Close() wakes every blocked Acquire with ErrClosed; ... acquisitions
// already granted can still be updated and released" — on a Unix-socket
// set shared by two processes, closing one process's LimitSet ends its own
// waits, not the other's, and its granted acquisition still releases.
func TestEdgeUnixsockCloseWakesOnlyItsOwnWaiters(t *testing.T) {
	x, y, qx, qy := sockPair(t, "close",
		concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 10},
		concurry.ResourceLimit{Key: "c", Capacity: 1})
	held := mustTry(t, x, concurry.Amounts{"tok": 3})
	xw := backendtest.Go(bg, x, concurry.Amounts{"tok": 1})
	<-qx
	yw := backendtest.Go(bg, y, concurry.Amounts{"tok": 1})
	<-qy
	require.NoError(t, x.Close())
	r := backendtest.Await(t, xw)
	require.ErrorIs(t, r.Err, concurry.ErrClosed)
	select {
	case r := <-yw:
		t.Fatalf("closing x ended y's wait: %v", r.Err)
	default: // and y's wait is granted below, once x's holding is released
	}
	require.NoError(t, held.Update(concurry.Amounts{"tok": 2}))
	require.NoError(t, held.Release(), "a granted acquisition of a closed set still releases")
	r = backendtest.Await(t, yw)
	require.NoError(t, r.Err)
	assert.Equal(t, int64(7), available(t, y, "tok"), "10 - 2 (settled) - 1 (y's)")
	mustRelease(t, r.A, concurry.Amounts{"tok": 1})
	assert.Equal(t, int64(0), func() int64 { l, _ := mustStats(t, y).Limit("c"); return l.InUse }())
}

func mustStats(t *testing.T, ls *concurry.LimitSet) concurry.Stats {
	t.Helper()
	st, err := ls.Stats(bg)
	require.NoError(t, err)
	return st
}

// "cancellation while waiting leaves the set exactly as it was" — on a
// Unix-socket set, with a call limit that never refunds: the other process
// finds the queue empty and the call unspent.
func TestEdgeUnixsockCancelLeavesTheSetAsItWas(t *testing.T) {
	x, y, qx, _ := sockPair(t, "cancel", sockLimits...)
	held := mustTry(t, y, concurry.Amounts{"c": 2})
	ctx, cancel := context.WithCancel(bg)
	w := backendtest.Go(ctx, x, nil)
	<-qx
	cancel()
	r := backendtest.Await(t, w)
	require.ErrorIs(t, r.Err, context.Canceled)
	require.NoError(t, held.Release())
	// The cancellation reaches the server asynchronously; once it has, the
	// queue is empty and y's request of every unit is granted.
	ctx, cancel = context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	a, err := y.Acquire(ctx, concurry.Amounts{"c": 2})
	require.NoError(t, err, "the cancelled waiter still blocks the set")
	require.NoError(t, a.Release())
	assert.Equal(t, int64(98), available(t, y, concurry.CallKey), "two grants to y; the cancelled wait spent no call")
	assert.Equal(t, int64(0), func() int64 { l, _ := mustStats(t, y).Limit("c"); return l.InUse }())
}

// "A context deadline that cannot be met fails at once and takes nothing"
// — on a Unix-socket set, behind another process's waiter.
func TestEdgeUnixsockUnmeetableDeadlineBehindAnotherProcess(t *testing.T) {
	x, y, qx, _ := sockPair(t, "deadline", concurry.RateLimit{Key: "u", Window: 10 * time.Second, Capacity: 10})
	drain(t, x, "u", 10)
	ctxW, cancelW := context.WithCancel(bg)
	defer cancelW()
	w := backendtest.Go(ctxW, x, concurry.Amounts{"u": 5}) // due at +5s
	<-qx
	waited, _, err := acquireWithin(y, 5500*time.Millisecond, concurry.Amounts{"u": 1}) // its own 1 unit: +6s behind x
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, waited, time.Second, "it must fail at once")
	var r *concurry.RefusalError
	require.ErrorAs(t, err, &r)
	cancelW()
	require.ErrorIs(t, backendtest.Await(t, w).Err, context.Canceled)
}

// "Acquire ... waits for whichever set can grant first ... The acquisition
// carries the granting set's config" — a pool over two Unix-socket sets.
func TestEdgeUnixsockPoolWaitsOnBoth(t *testing.T) {
	cx, _ := sockServer(t)
	queued := make(chan struct{}, 2)
	mk := func(name string) *concurry.LimitSet {
		ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}},
			concurry.WithName(name), concurry.WithBackend(cx), concurry.WithConfig(map[string]any{"region": name}),
			concurry.WithHooks(concurry.Hooks{WaitStart: func(concurry.WaitInfo) { signal(queued) }}))
		require.NoError(t, err)
		t.Cleanup(func() { ls.Close() })
		return ls
	}
	a, b := mk("pa"), mk("pb")
	ha, hb := mustTry(t, a, nil), mustTry(t, b, nil)
	w := backendtest.Go(bg, newPool(t, []*concurry.LimitSet{a, b}), nil)
	<-queued // both sets' waits are queued in the server
	<-queued
	require.NoError(t, hb.Release())
	r := backendtest.Await(t, w)
	require.NoError(t, r.Err)
	assert.Equal(t, "pb", region(r.A))
	require.NoError(t, ha.Release())
	// The losing wait's end reaches the server asynchronously; once it has,
	// a's unit is free: the losing set holds nothing.
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	again, err := a.Acquire(ctx, nil)
	require.NoError(t, err, "the losing set keeps its unit")
	require.NoError(t, again.Release())
	require.NoError(t, r.A.Release())
}

// ---------------------------------------------------------------- Pool refusals

// "A refusal says why and when: TryAcquire's ErrWouldBlock and an unmeetable
// deadline come as a typed error that still matches the sentinel
// (errors.Is) and carries the key that blocked and RetryAfter — how long
// until the whole request would fit". A LimitPool is a Limiter: its
// TryAcquire refusal must carry the facts too, RetryAfter being when the
// pool could grant (its earliest set).
func TestEdgePoolTryAcquireRefusalCarriesFacts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, staggeredSets(t))
		_, err := p.TryAcquire(bg, concurry.Amounts{"tokens": 5})
		require.ErrorIs(t, err, concurry.ErrWouldBlock)
		var r *concurry.RefusalError
		require.ErrorAs(t, err, &r, "the pool's refusal carries no facts")
		assert.Equal(t, "tokens", r.Key)
		assert.Equal(t, 300*time.Millisecond, r.RetryAfter, "the earliest set could grant in 300ms")
	})
}

// The same for an unmeetable deadline: the pool fails at once, and its
// RetryAfter is the earliest any set could grant, not the first set's nor
// the first to answer (the sets are waited on in goroutines of their own),
// whichever place the soonest set has in the pool.
func TestEdgePoolDeadlineRefusalRetryAfterIsTheEarliest(t *testing.T) {
	for _, soonestFirst := range []bool{false, true} {
		t.Run(fmt.Sprint("soonest first ", soonestFirst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sets := staggeredSets(t)
				if soonestFirst {
					sets[0], sets[1] = sets[1], sets[0]
				}
				p := newPool(t, sets)
				for range 10 { // each set's refusal comes from a goroutine of its own, in any order
					waited, _, err := acquireWithin(p, 200*time.Millisecond, concurry.Amounts{"tokens": 5})
					require.ErrorIs(t, err, context.DeadlineExceeded)
					assert.Zero(t, waited, "it fails at once")
					var r *concurry.RefusalError
					require.ErrorAs(t, err, &r)
					assert.Equal(t, 300*time.Millisecond, r.RetryAfter, "the pool could grant in 300ms (r1)")
					assert.Equal(t, "tokens", r.Key)
				}
			})
		})
	}
}

// "cancellation while waiting leaves the set exactly as it was" and "Errors
// from ctx still match context.Canceled" — on a Unix-socket set, a cancel
// racing a release of the same process: whichever wins, an Acquire that
// returns Canceled must have taken nothing, also of a limit that never
// refunds (a SlidingWindow call limit).
func TestEdgeUnixsockCancelRacingAReleaseTakesNothing(t *testing.T) {
	cx, _ := sockServer(t)
	for _, alg := range []concurry.Algorithm{concurry.SlidingWindow, concurry.FixedWindow, concurry.LeakyBucket} {
		t.Run(alg.String(), func(t *testing.T) {
			for round := range 20 {
				q := make(chan struct{}, 2)
				ls := sockSet(t, cx, fmt.Sprintf("race/%v/%d", alg, round), q,
					concurry.CallLimit{Window: time.Hour, Capacity: 100, Algorithm: alg},
					concurry.ResourceLimit{Key: "c", Capacity: 1})
				held := mustTry(t, ls, nil)
				ctx, cancel := context.WithCancel(bg)
				w := backendtest.Go(ctx, ls, nil)
				<-q
				cancel()
				require.NoError(t, held.Release())
				r := backendtest.Await(t, w)
				calls := func() int64 { l, _ := mustStats(t, ls).Limit(concurry.CallKey); return l.Available }
				if r.Err == nil {
					require.NoError(t, r.A.Release())
					continue
				}
				require.ErrorIs(t, r.Err, context.Canceled)
				// The client has one connection, which the server reads in
				// order: Stats comes after the cancellation, and after any
				// grant the waiter had before it.
				if got := calls(); got != 99 {
					t.Fatalf("round %d: Acquire returned %v, but %d calls are available, want 99 (the holder's one only): the cancelled waiter spent a call",
						round, r.Err, got)
				}
			}
		})
	}
}

// The in-memory counterpart of the race above: a cancel and then at once a
// release that would grant the waiter.
func TestEdgeCancelThenReleaseTakesNothing(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.SlidingWindow, concurry.FixedWindow} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := newSet(t, concurry.CallLimit{Window: time.Hour, Capacity: 100, Algorithm: alg},
					concurry.ResourceLimit{Key: "c", Capacity: 1})
				held := mustTry(t, ls, nil)
				ctx, cancel := context.WithCancel(bg)
				w := backendtest.Go(ctx, ls, nil)
				synctest.Wait()
				cancel()
				require.NoError(t, held.Release())
				r := <-w
				if r.Err == nil {
					require.NoError(t, r.A.Release())
					assert.Equal(t, int64(98), available(t, ls, concurry.CallKey))
					return
				}
				require.ErrorIs(t, r.Err, context.Canceled)
				assert.Equal(t, int64(99), available(t, ls, concurry.CallKey))
			})
		})
	}
}

// "It fails at once when no set can meet ctx's deadline" — and a deadline
// met exactly by one set is met: the grant comes at that instant.
func TestEdgePoolDeadlineMetExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sets := staggeredSets(t)
		waited, b, err := acquireWithin(newPool(t, sets), 300*time.Millisecond, concurry.Amounts{"tokens": 5})
		require.NoError(t, err)
		assert.Equal(t, 300*time.Millisecond, waited)
		assert.Equal(t, "r1", region(b))
		mustRelease(t, b, concurry.Amounts{"tokens": 5})
		assert.Equal(t, int64(3), available(t, sets[0], "tokens"), "the losing set spent nothing")
	})
}

// "Random picks uniformly" and failover still applies: with every set but
// one exhausted, Random always ends on the free one.
func TestEdgePoolRandomFailsOver(t *testing.T) {
	sets := regionSets(t, 4, 10, time.Hour)
	for _, s := range sets[:3] {
		drain(t, s, "tokens", 10)
	}
	p := newPool(t, sets, concurry.WithBalancing(concurry.Random))
	for range 10 {
		a := mustTry(t, p, concurry.Amounts{"tokens": 1})
		assert.Equal(t, "r3", region(a))
		require.NoError(t, a.Update(concurry.Amounts{"tokens": 0}))
		require.NoError(t, a.Release())
	}
}

// "Close() wakes every blocked Acquire with ErrClosed" — when the closed
// set's waiter headed the shared queue, the other process's waiter behind
// it, whose request fits, is granted at once (FIFO held it only).
func TestEdgeUnixsockCloseOfTheHeadServesTheNext(t *testing.T) {
	x, y, qx, qy := sockPair(t, "headclose", sockLimits...)
	held := mustTry(t, y, nil)
	xw := backendtest.Go(bg, x, concurry.Amounts{"c": 2})
	<-qx
	yw := backendtest.Go(bg, y, nil) // one unit is free: only the queue holds it
	<-qy
	start := time.Now()
	require.NoError(t, x.Close())
	require.ErrorIs(t, backendtest.Await(t, xw).Err, concurry.ErrClosed)
	r := backendtest.Await(t, yw)
	require.NoError(t, r.Err)
	assert.Less(t, time.Since(start), time.Second)
	require.NoError(t, r.A.Release())
	require.NoError(t, held.Release())
}
