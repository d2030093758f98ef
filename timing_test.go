package concurry_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
)

func TestBlockingAcquireWakesAtTheExactInstant(t *testing.T) {
	type step struct {
		n    int64
		want time.Duration // after the start, when the Acquire returns
	}
	cases := map[concurry.Algorithm][]step{
		// 10/s, capacity 10: a full burst, then one unit every 100ms.
		concurry.TokenBucket: {{10, 0}, {1, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {3, 500 * time.Millisecond}},
		concurry.GCRA:        {{10, 0}, {1, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {3, 500 * time.Millisecond}},
		// Departures paced n·100ms apart; no burst.
		concurry.LeakyBucket: {{1, 0}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {1, 400 * time.Millisecond}},
		// The first admissions leave the window one second after they came.
		concurry.SlidingWindow: {{10, 0}, {1, time.Second}, {9, time.Second}, {1, 2 * time.Second}},
		// Windows aligned to whole seconds since the epoch; synctest starts on one.
		concurry.FixedWindow: {{10, 0}, {1, time.Second}, {9, time.Second}, {1, 2 * time.Second}},
	}
	for alg, steps := range cases {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10, Algorithm: alg})
				start := time.Now()
				for i, s := range steps {
					a, err := ls.Acquire(bg, concurry.Amounts{"u": s.n})
					require.NoError(t, err)
					assert.Equal(t, s.want, time.Since(start), "step %d (%d units)", i, s.n)
					mustRelease(t, a, concurry.Amounts{"u": s.n})
				}
			})
		})
	}
}

func TestEleventhUnitAtExactly100ms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10})
		for range 10 {
			mustRelease(t, mustTry(t, ls, concurry.Amounts{"u": 1}), concurry.Amounts{"u": 1})
		}
		_, err := ls.TryAcquire(bg, concurry.Amounts{"u": 1})
		require.ErrorIs(t, err, concurry.ErrWouldBlock)
		time.Sleep(100*time.Millisecond - time.Nanosecond)
		_, err = ls.TryAcquire(bg, concurry.Amounts{"u": 1})
		require.ErrorIs(t, err, concurry.ErrWouldBlock, "not one nanosecond early")
		waited, a := acquireAt(t, ls, concurry.Amounts{"u": 1})
		assert.Equal(t, time.Nanosecond, waited)
		mustRelease(t, a, concurry.Amounts{"u": 1})
	})
}

func TestWaitersAreServedFirstComeFirstServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10})
		mustRelease(t, mustTry(t, ls, concurry.Amounts{"u": 10}), concurry.Amounts{"u": 10})
		start := time.Now()
		var mu sync.Mutex
		var order []string
		var when []time.Duration
		var wg sync.WaitGroup
		run := func(name string, n int64) {
			wg.Go(func() {
				a, err := ls.Acquire(bg, concurry.Amounts{"u": n})
				require.NoError(t, err)
				mu.Lock()
				order, when = append(order, name), append(when, time.Since(start))
				mu.Unlock()
				mustRelease(t, a, concurry.Amounts{"u": n})
			})
			synctest.Wait() // the waiter is queued before the next one comes
		}
		run("big", 10) // needs the whole bucket: 1s
		for _, name := range []string{"small1", "small2", "small3"} {
			run(name, 1) // would fit after 100ms, but must not overtake
		}
		_, err := ls.TryAcquire(bg, concurry.Amounts{"u": 1})
		require.ErrorIs(t, err, concurry.ErrWouldBlock, "TryAcquire never jumps the queue")
		time.Sleep(950 * time.Millisecond)
		_, err = ls.TryAcquire(bg, concurry.Amounts{"u": 1})
		require.ErrorIs(t, err, concurry.ErrWouldBlock, "not even when the bucket holds enough for it")
		wg.Wait()
		assert.Equal(t, []string{"big", "small1", "small2", "small3"}, order)
		assert.Equal(t, []time.Duration{time.Second, 1100 * time.Millisecond, 1200 * time.Millisecond, 1300 * time.Millisecond}, when)
	})
}

func TestDeadlineThatCannotBeMetFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10})
		mustRelease(t, mustTry(t, ls, concurry.Amounts{"u": 10}), concurry.Amounts{"u": 10})
		ctx, cancel := context.WithTimeout(bg, 499*time.Millisecond)
		defer cancel()
		start := time.Now()
		a, err := ls.Acquire(ctx, concurry.Amounts{"u": 5}) // fits at +500ms
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Nil(t, a)
		assert.Zero(t, time.Since(start), "it failed without waiting")
		assert.NoError(t, ctx.Err(), "before the deadline itself")

		// A deadline exactly at the instant is met.
		ctx2, cancel2 := context.WithTimeout(bg, 500*time.Millisecond)
		defer cancel2()
		a, err = ls.Acquire(ctx2, concurry.Amounts{"u": 5})
		require.NoError(t, err)
		assert.Equal(t, 500*time.Millisecond, time.Since(start))
		mustRelease(t, a, concurry.Amounts{"u": 5})
		assert.Equal(t, int64(0), available(t, ls, "u"), "the failed request took nothing")
	})
}

func TestCancelWhileWaitingLeavesTheSetAsItWas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t,
			concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10},
			concurry.ResourceLimit{Key: "c", Capacity: 1})
		holder := mustTry(t, ls, concurry.Amounts{"u": 10})
		start := time.Now()
		ctx, cancel := context.WithCancel(bg)
		errc := make(chan error)
		go func() {
			_, err := ls.Acquire(ctx, concurry.Amounts{"u": 5})
			errc <- err
		}()
		var got time.Duration
		done := make(chan struct{})
		go func() { // queued behind the cancelled one; must be served as if it never was
			defer close(done)
			a, err := ls.Acquire(bg, concurry.Amounts{"u": 2})
			require.NoError(t, err)
			got = time.Since(start)
			mustRelease(t, a, concurry.Amounts{"u": 2})
		}()
		synctest.Wait()
		assert.Equal(t, int64(0), available(t, ls, "c"), "the holder keeps the resource")
		time.Sleep(100 * time.Millisecond)
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
		mustRelease(t, holder, concurry.Amounts{"u": 10})
		<-done
		assert.Equal(t, 200*time.Millisecond, got, "2 units after a drain take 200ms; the cancelled 5 took nothing")
		assert.Equal(t, int64(1), available(t, ls, "c"))
	})
}

func TestReleaseWakesAResourceWaiterAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.ResourceLimit{Key: "c", Capacity: 2})
		a := mustTry(t, ls, concurry.Amounts{"c": 2})
		start := time.Now()
		got := make(chan time.Duration)
		go func() {
			b, err := ls.Acquire(bg, concurry.Amounts{"c": 1})
			require.NoError(t, err)
			got <- time.Since(start)
			require.NoError(t, b.Release())
		}()
		time.Sleep(3 * time.Second)
		require.NoError(t, a.Release())
		assert.Equal(t, 3*time.Second, <-got)
	})
}

func TestCloseWakesWaitersWithErrClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.RateLimit{Key: "u", Window: time.Hour, Capacity: 10},
			concurry.ResourceLimit{Key: "c", Capacity: 1},
		})
		require.NoError(t, err)
		held := mustTry(t, ls, concurry.Amounts{"u": 10})
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := ls.Acquire(bg, concurry.Amounts{"u": 1})
				errs <- err
			}()
		}
		synctest.Wait()
		require.NoError(t, ls.Close())
		require.ErrorIs(t, <-errs, concurry.ErrClosed)
		require.ErrorIs(t, <-errs, concurry.ErrClosed)
		_, err = ls.Acquire(bg, concurry.Amounts{"u": 1})
		require.ErrorIs(t, err, concurry.ErrClosed)
		_, err = ls.TryAcquire(bg, concurry.Amounts{"u": 1})
		require.ErrorIs(t, err, concurry.ErrClosed)
		// The granted acquisition can still be settled.
		require.NoError(t, held.Update(concurry.Amounts{"u": 4}))
		require.NoError(t, held.Release())
		require.NoError(t, ls.Close(), "Close is idempotent")
		assert.Equal(t, int64(1), available(t, ls, "c"))
	})
}

func TestStatsCountWaitsAndRejections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10})
		mustRelease(t, mustTry(t, ls, concurry.Amounts{"u": 10}), concurry.Amounts{"u": 10})
		_, err := ls.TryAcquire(bg, concurry.Amounts{"u": 1})
		require.ErrorIs(t, err, concurry.ErrWouldBlock)
		waited, a := acquireAt(t, ls, concurry.Amounts{"u": 4})
		assert.Equal(t, 400*time.Millisecond, waited)
		mustRelease(t, a, concurry.Amounts{"u": 1}) // 3 refunded
		st, err := ls.Stats(bg)
		require.NoError(t, err)
		l := st.Limits[0]
		assert.Equal(t, concurry.LimitStats{
			Key: "u", Kind: concurry.KindRate, Algorithm: concurry.TokenBucket, Capacity: 10, Window: time.Second,
			Available: 3, Utilization: 0.7, Granted: 14, Rejected: 1, Blocked: 2, Waited: 400 * time.Millisecond, Refunded: 3,
		}, l)
	})
}

func TestDeadlineBehindOtherWaitersFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// LeakyBucket 2/s: departures every 500ms.
		ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 2, Algorithm: concurry.LeakyBucket})
		start := time.Now()
		var wg sync.WaitGroup
		for range 3 { // depart at +0, +500ms, +1s
			wg.Go(func() {
				a, err := ls.Acquire(bg, concurry.Amounts{"u": 1})
				require.NoError(t, err)
				mustRelease(t, a, concurry.Amounts{"u": 1})
			})
			synctest.Wait()
		}
		ctx, cancel := context.WithTimeout(bg, 1400*time.Millisecond)
		defer cancel()
		_, err := ls.Acquire(ctx, concurry.Amounts{"u": 1}) // would depart at +1.5s
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Zero(t, time.Since(start), "the queue ahead was projected: it failed at once")

		ctx2, cancel2 := context.WithTimeout(bg, 1500*time.Millisecond)
		defer cancel2()
		a, err := ls.Acquire(ctx2, concurry.Amounts{"u": 1})
		require.NoError(t, err)
		assert.Equal(t, 1500*time.Millisecond, time.Since(start))
		mustRelease(t, a, concurry.Amounts{"u": 1})
		wg.Wait()
	})
}

func TestCancelCauseStillMatchesCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newSet(t, concurry.ResourceLimit{Key: "c", Capacity: 1})
		held := mustTry(t, ls, nil)
		why := errors.New("shutting down")
		ctx, cancel := context.WithCancelCause(bg)
		errc := make(chan error)
		go func() {
			_, err := ls.Acquire(ctx, nil)
			errc <- err
		}()
		synctest.Wait()
		cancel(why)
		err := <-errc
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, why)
		require.NoError(t, held.Release())
	})
}
