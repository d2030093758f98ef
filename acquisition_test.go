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

func TestUpdateRefundsWhereTheAlgorithmRefunds(t *testing.T) {
	for alg := concurry.TokenBucket; alg <= concurry.GCRA; alg++ {
		t.Run(alg.String(), func(t *testing.T) {
			ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Hour, Capacity: 100, Algorithm: alg})
			a := mustTry(t, ls, concurry.Amounts{"u": 100})
			require.NoError(t, a.Update(concurry.Amounts{"u": 40}))
			require.NoError(t, a.Release())
			st, err := ls.Stats(bg)
			require.NoError(t, err)
			if alg.Refunds() {
				assert.Equal(t, int64(60), st.Limits[0].Refunded)
				assert.Equal(t, int64(60), available(t, ls, "u"))
				b := mustTry(t, ls, concurry.Amounts{"u": 60})
				mustRelease(t, b, concurry.Amounts{"u": 60})
			} else {
				assert.Equal(t, int64(0), st.Limits[0].Refunded)
				_, err := ls.TryAcquire(bg, concurry.Amounts{"u": 1})
				require.ErrorIs(t, err, concurry.ErrWouldBlock, "%v does not refund", alg)
			}
		})
	}
}

func TestUsageIsSettledAtRelease(t *testing.T) {
	ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Hour, Capacity: 100})
	a := mustTry(t, ls, concurry.Amounts{"u": 60})
	require.NoError(t, a.Update(concurry.Amounts{"u": 20}))
	assert.Equal(t, int64(40), available(t, ls, "u"), "the grant stays taken until release")
	require.NoError(t, a.Update(concurry.Amounts{"u": 50}), "a later report replaces the earlier one")
	require.NoError(t, a.Release())
	assert.Equal(t, int64(50), available(t, ls, "u"), "the last report was settled")
	st, err := ls.Stats(bg)
	require.NoError(t, err)
	assert.Equal(t, int64(10), st.Limits[0].Refunded)

	b := mustTry(t, ls, concurry.Amounts{"u": 10})
	require.NoError(t, b.Update(concurry.Amounts{"u": 30}))
	assert.Equal(t, int64(40), available(t, ls, "u"), "overage is charged at release too")
	require.NoError(t, b.Release())
	assert.Equal(t, int64(20), available(t, ls, "u"))
}

func TestOverageIsCharged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for alg := concurry.TokenBucket; alg <= concurry.GCRA; alg++ {
			ls := newSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10, Algorithm: alg})
			a := mustTry(t, ls, concurry.Amounts{"u": 5})
			require.NoError(t, a.Update(concurry.Amounts{"u": 15}), alg.String())
			require.NoError(t, a.Release())
			st, err := ls.Stats(bg)
			require.NoError(t, err)
			assert.Equal(t, int64(10), st.Limits[0].Overage, alg.String())
			assert.Equal(t, int64(0), st.Limits[0].Available, alg.String())
			_, err = ls.TryAcquire(bg, concurry.Amounts{"u": 1})
			require.ErrorIs(t, err, concurry.ErrWouldBlock, "%v: the debt blocks", alg)
			waited, b := acquireAt(t, ls, concurry.Amounts{"u": 1})
			want := map[concurry.Algorithm]time.Duration{
				concurry.TokenBucket:   600 * time.Millisecond, // −5 tokens: 6 to refill for 1
				concurry.GCRA:          600 * time.Millisecond,
				concurry.LeakyBucket:   1500 * time.Millisecond, // 15 units paced 100ms apart
				concurry.SlidingWindow: time.Second,             // everything leaves the window at +1s
				concurry.FixedWindow:   time.Second,             // the next window
			}[alg]
			assert.Equal(t, want, waited, alg.String())
			mustRelease(t, b, concurry.Amounts{"u": 1})
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		}
	})
}

func TestUpdateRejectsBadUsageAndChangesNothing(t *testing.T) {
	ls := guideSet(t)
	a := mustTry(t, ls, concurry.Amounts{"tokens": 100})
	cases := map[string]struct {
		usage concurry.Amounts
		want  error
	}{
		"unknown key":           {concurry.Amounts{"tokens": 10, "bogus": 1}, concurry.ErrUnknownKey},
		"negative":              {concurry.Amounts{"tokens": -1}, concurry.ErrInvalidRequest},
		"call usage is fixed":   {concurry.Amounts{"tokens": 10, concurry.CallKey: 2}, concurry.ErrInvalidRequest},
		"resource usage fixed":  {concurry.Amounts{"tokens": 10, "conns": 0}, concurry.ErrInvalidRequest},
		"one bad among good":    {concurry.Amounts{"tokens": 10, "conns": 5}, concurry.ErrInvalidRequest},
		"negative with unknown": {concurry.Amounts{"x": -1}, concurry.ErrUnknownKey},
	}
	for name, c := range cases {
		require.ErrorIs(t, a.Update(c.usage), c.want, name)
		assert.Equal(t, int64(900), available(t, ls, "tokens"), name)
	}
	require.NoError(t, a.Update(concurry.Amounts{"tokens": 100, concurry.CallKey: 1, "conns": 1}), "the granted amounts are accepted")
	require.NoError(t, a.Release())
	require.ErrorIs(t, a.Update(concurry.Amounts{"tokens": 1}), concurry.ErrReleased)
	assert.Equal(t, int64(900), available(t, ls, "tokens"))
}

func TestReleaseWithoutUpdate(t *testing.T) {
	ls := guideSet(t)
	a := mustTry(t, ls, concurry.Amounts{"tokens": 100, "conns": 2})
	err := a.Release()
	require.ErrorIs(t, err, concurry.ErrUsageNotReported)
	assert.Contains(t, err.Error(), "tokens")
	assert.Equal(t, int64(3), available(t, ls, "conns"), "resources are returned even so")
	assert.Equal(t, int64(900), available(t, ls, "tokens"), "the full request was counted")
	require.NoError(t, a.Release(), "later calls return nil")
}

func TestDo(t *testing.T) {
	ls := guideSet(t)
	t.Run("updates and releases", func(t *testing.T) {
		err := ls.Do(bg, concurry.Amounts{"tokens": 50}, func(ctx context.Context, a *concurry.Acquisition) error {
			assert.Equal(t, int64(2), available(t, ls, "conns"))
			return a.Update(concurry.Amounts{"tokens": 20})
		})
		require.NoError(t, err)
		assert.Equal(t, int64(3), available(t, ls, "conns"))
	})
	t.Run("missing update is reported", func(t *testing.T) {
		err := ls.Do(bg, concurry.Amounts{"tokens": 1}, func(context.Context, *concurry.Acquisition) error { return nil })
		require.ErrorIs(t, err, concurry.ErrUsageNotReported)
	})
	t.Run("fn's error wins over the missing update", func(t *testing.T) {
		boom := errors.New("boom")
		err := ls.Do(bg, concurry.Amounts{"tokens": 1}, func(context.Context, *concurry.Acquisition) error { return boom })
		require.ErrorIs(t, err, boom)
		assert.NotErrorIs(t, err, concurry.ErrUsageNotReported)
		assert.Equal(t, int64(3), available(t, ls, "conns"))
	})
	t.Run("panic releases and propagates", func(t *testing.T) {
		assert.PanicsWithValue(t, "kaboom", func() {
			_ = ls.Do(bg, concurry.Amounts{"tokens": 1, "conns": 3}, func(context.Context, *concurry.Acquisition) error { panic("kaboom") })
		})
		assert.Equal(t, int64(3), available(t, ls, "conns"))
	})
	t.Run("acquire error", func(t *testing.T) {
		called := false
		err := ls.Do(bg, concurry.Amounts{"bogus": 1}, func(context.Context, *concurry.Acquisition) error { called = true; return nil })
		require.ErrorIs(t, err, concurry.ErrUnknownKey)
		assert.False(t, called)
	})
}

func TestAcquisitionIsSafeForConcurrentUse(t *testing.T) {
	ls := guideSet(t)
	a := mustTry(t, ls, concurry.Amounts{"tokens": 100})
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			_ = a.Update(concurry.Amounts{"tokens": int64(10 * i)})
			_ = a.Release()
		}()
	}
	for range 8 {
		<-done
	}
	assert.Equal(t, int64(3), available(t, ls, "conns"))
	require.ErrorIs(t, a.Update(concurry.Amounts{"tokens": 1}), concurry.ErrReleased)
}

// A handle used after Release never touches the holding's next owner, even
// when the pool hands that holding to the very next grant.
func TestStaleHandleCannotTouchTheNextOwner(t *testing.T) {
	ctx := context.Background()
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 100},
		concurry.ResourceLimit{Key: "conns", Capacity: 1},
	})
	require.NoError(t, err)
	for range 100 { // the pool may or may not hand the same holding back: try often
		stale, err := ls.TryAcquire(ctx, concurry.Amounts{"tokens": 1})
		require.NoError(t, err)
		require.NoError(t, stale.Update(concurry.Amounts{"tokens": 0}))
		require.NoError(t, stale.Release())
		owner, err := ls.TryAcquire(ctx, concurry.Amounts{"tokens": 1})
		require.NoError(t, err)
		require.ErrorIs(t, stale.Update(concurry.Amounts{"tokens": 0}), concurry.ErrReleased)
		require.NoError(t, stale.Release(), "a second Release is a no-op")
		assert.Zero(t, stale.Granted("tokens"))
		assert.Equal(t, int64(1), owner.Granted("tokens"), "the owner's grant is intact")
		_, err = ls.TryAcquire(ctx, concurry.Amounts{"tokens": 1})
		require.ErrorIs(t, err, concurry.ErrWouldBlock, "the owner still holds the connection")
		require.NoError(t, owner.Update(concurry.Amounts{"tokens": 0}))
		require.NoError(t, owner.Release())
	}
	st, err := ls.Stats(ctx)
	require.NoError(t, err)
	tok, _ := st.Limit("tokens")
	assert.Equal(t, int64(0), tok.InUse)
	assert.Equal(t, int64(100), tok.Available, "every owner's refund applied once, none by a stale handle")
}

// TestOneAcquisitionFromManyGoroutines updates, reads and releases one
// acquisition from many goroutines at once (an Acquisition is safe for
// concurrent use): exactly one Release settles it, with the usage of one of
// the Updates that came before it, and every call after it sees it
// released. Run with -race.
func TestOneAcquisitionFromManyGoroutines(t *testing.T) {
	ctx := context.Background()
	for range 50 {
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1000},
			concurry.ResourceLimit{Key: "conns", Capacity: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		a, err := ls.Acquire(ctx, concurry.Amounts{"tokens": 100})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 8 {
			wg.Go(func() {
				<-start
				for i := range 20 {
					switch err := a.Update(concurry.Amounts{"tokens": int64(10 + g)}); {
					case errors.Is(err, concurry.ErrReleased):
					case err != nil:
						t.Errorf("Update: %v", err)
					}
					if n := a.Granted("tokens"); n != 0 && n != 100 {
						t.Errorf("Granted = %d, want 100 or 0", n)
					}
					if i == 10 && g%2 == 0 {
						_ = a.Release()
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if err := a.Release(); err != nil {
			t.Fatalf("a later Release: %v", err)
		}
		if err := a.Update(concurry.Amounts{"tokens": 1}); !errors.Is(err, concurry.ErrReleased) {
			t.Fatalf("Update after Release: %v, want ErrReleased", err)
		}
		st, err := ls.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tokens, conns := st.Limits[0], st.Limits[1]
		if conns.InUse != 0 {
			t.Fatalf("%d connections still held", conns.InUse)
		}
		// One release refunded 100 − u for the usage u of an Update in [10, 17].
		if used := 1000 - tokens.Available; used < 10 || used > 17 || tokens.Refunded != 100-used {
			t.Fatalf("after the release: %d tokens used, %d refunded; want one settle of a usage in [10, 17]", used, tokens.Refunded)
		}
		ls.Close()
	}
}

// A request or usage that names one key alone is checked on a shorter path
// than one naming several (see LimitSet.fill and checkUsage): every refusal
// of the longer path holds on it too, at both ends of each range, and
// changes nothing.
func TestOneKeyRequestsAndUsageAreChecked(t *testing.T) {
	t.Run("rate key", func(t *testing.T) {
		ls := newSet(t,
			concurry.RateLimit{Key: "in", Window: time.Minute, Capacity: 100},
			concurry.RateLimit{Key: "out", Window: time.Minute, Capacity: 100},
		)
		for req, want := range map[int64]error{0: concurry.ErrInvalidRequest, -1: concurry.ErrInvalidRequest, 101: concurry.ErrExceedsCapacity} {
			_, err := ls.TryAcquire(bg, concurry.Amounts{"in": req})
			require.ErrorIs(t, err, want, "request of %d", req)
		}
		a := mustTry(t, ls, concurry.Amounts{"out": 1})
		require.ErrorIs(t, a.Update(concurry.Amounts{"in": 1}), concurry.ErrUnknownKey, "a key the acquisition does not hold")
		mustRelease(t, a, concurry.Amounts{"out": 1})

		a = mustTry(t, ls, concurry.Amounts{"in": 100})
		require.ErrorIs(t, a.Update(concurry.Amounts{"in": -1}), concurry.ErrInvalidRequest)
		require.ErrorIs(t, a.Update(concurry.Amounts{"in": concurry.MaxCapacity + 1}), concurry.ErrInvalidRequest)
		require.NoError(t, a.Update(concurry.Amounts{"in": concurry.MaxCapacity}), "the most usage there is")
		require.NoError(t, a.Update(concurry.Amounts{"in": 0}), "and the least")
		mustRelease(t, a, concurry.Amounts{"in": 1})
		assert.Equal(t, int64(99), available(t, ls, "in"), "only the last report counts")
		assert.Equal(t, int64(99), available(t, ls, "out"))
	})
	t.Run("call key", func(t *testing.T) {
		ls := newSet(t,
			concurry.CallLimit{Window: time.Minute, Capacity: 5},
			concurry.ResourceLimit{Key: "conns", Capacity: 2},
		)
		_, err := ls.TryAcquire(bg, concurry.Amounts{concurry.CallKey: 6})
		require.ErrorIs(t, err, concurry.ErrExceedsCapacity)
		_, err = ls.TryAcquire(bg, concurry.Amounts{concurry.CallKey: 0})
		require.ErrorIs(t, err, concurry.ErrInvalidRequest)
		a := mustTry(t, ls, concurry.Amounts{concurry.CallKey: 5})
		assert.Equal(t, int64(1), a.Granted("conns"), "the resource not named is taken once")
		require.ErrorIs(t, a.Update(concurry.Amounts{concurry.CallKey: 4}), concurry.ErrInvalidRequest, "a call key's usage is its grant")
		require.NoError(t, a.Update(concurry.Amounts{concurry.CallKey: 5}))
		require.NoError(t, a.Release())
		assert.Equal(t, int64(0), available(t, ls, concurry.CallKey))
		assert.Equal(t, int64(2), available(t, ls, "conns"))
	})
}
