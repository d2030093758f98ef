package concurry_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
)

// regionSets returns n sets of one TokenBucket each, with "region" config.
func regionSets(t *testing.T, n int, capacity int64, window time.Duration) []*concurry.LimitSet {
	t.Helper()
	var sets []*concurry.LimitSet
	for i := range n {
		ls, err := concurry.NewLimitSet(
			[]concurry.Limit{concurry.RateLimit{Key: "tokens", Window: window, Capacity: capacity}},
			concurry.WithConfig(map[string]any{"region": fmt.Sprintf("r%d", i)}))
		require.NoError(t, err)
		t.Cleanup(func() { ls.Close() })
		sets = append(sets, ls)
	}
	return sets
}

func region(a *concurry.Acquisition) string { return a.Config()["region"].(string) }

func TestNewLimitPoolRejects(t *testing.T) {
	_, err := concurry.NewLimitPool(nil)
	require.ErrorIs(t, err, concurry.ErrInvalidLimit)
	_, err = concurry.NewLimitPool([]*concurry.LimitSet{nil})
	require.ErrorIs(t, err, concurry.ErrInvalidLimit)
	_, err = concurry.NewLimitPool(regionSets(t, 1, 1, time.Second), concurry.WithWorkerIndex(-1))
	require.ErrorIs(t, err, concurry.ErrInvalidLimit)
}

func TestRoundRobinStartsAtTheWorkerIndex(t *testing.T) {
	sets := regionSets(t, 3, 1000, time.Hour)
	for wi, want := range map[int][]string{0: {"r0", "r1", "r2", "r0"}, 1: {"r1", "r2", "r0", "r1"}, 5: {"r2", "r0", "r1", "r2"}} {
		p, err := concurry.NewLimitPool(sets, concurry.WithWorkerIndex(wi))
		require.NoError(t, err)
		var got []string
		for range 4 {
			a := mustTry(t, p, concurry.Amounts{"tokens": 1})
			got = append(got, region(a))
			mustRelease(t, a, concurry.Amounts{"tokens": 1})
		}
		assert.Equal(t, want, got, "worker index %d", wi)
	}
	assert.Equal(t, 3, len(sets))
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	sets := regionSets(t, 3, 1000, time.Hour)
	p, err := concurry.NewLimitPool(sets)
	require.NoError(t, err)
	for range 30 {
		require.NoError(t, p.Do(bg, concurry.Amounts{"tokens": 1}, func(_ context.Context, a *concurry.Acquisition) error {
			return a.Update(concurry.Amounts{"tokens": 1})
		}))
	}
	st, err := p.Stats(bg)
	require.NoError(t, err)
	assert.Equal(t, []int64{10, 10, 10}, st.Dispatched)
	assert.Equal(t, concurry.RoundRobin, st.Balancing)
	for i := range 3 {
		assert.Equal(t, int64(990), st.Sets[i].Limits[0].Available)
	}
	assert.Equal(t, 3, p.Len())
	assert.Same(t, sets[1], p.At(1))
}

func TestRandomUsesEverySet(t *testing.T) {
	sets := regionSets(t, 4, 10_000, time.Hour)
	p, err := concurry.NewLimitPool(sets, concurry.WithBalancing(concurry.Random))
	require.NoError(t, err)
	for range 4000 {
		mustRelease(t, mustTry(t, p, concurry.Amounts{"tokens": 1}), concurry.Amounts{"tokens": 1})
	}
	st, err := p.Stats(bg)
	require.NoError(t, err)
	for i, n := range st.Dispatched {
		// Uniform picks: 1000 expected each; 800 is more than 6 standard deviations away.
		assert.Greater(t, n, int64(800), "set %d", i)
	}
	assert.Equal(t, "Random", st.Balancing.String())
}

func TestTryAcquireFailsOver(t *testing.T) {
	sets := regionSets(t, 3, 10, time.Hour)
	p, err := concurry.NewLimitPool(sets)
	require.NoError(t, err)
	mustRelease(t, mustTry(t, sets[0], concurry.Amounts{"tokens": 10}), concurry.Amounts{"tokens": 10})
	mustRelease(t, mustTry(t, sets[1], concurry.Amounts{"tokens": 10}), concurry.Amounts{"tokens": 10})
	// RoundRobin picks r0, which is exhausted; r1 too; r2 grants.
	a := mustTry(t, p, concurry.Amounts{"tokens": 7})
	assert.Equal(t, "r2", region(a))
	mustRelease(t, a, concurry.Amounts{"tokens": 7})
	_, err = p.TryAcquire(bg, concurry.Amounts{"tokens": 7})
	require.ErrorIs(t, err, concurry.ErrWouldBlock)
	_, err = p.TryAcquire(bg, concurry.Amounts{"bogus": 1})
	require.ErrorIs(t, err, concurry.ErrUnknownKey, "a request no set accepts reports why")
}

func TestAcquireWaitsForWhicheverSetGrantsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sets := regionSets(t, 3, 10, time.Second)
		p, err := concurry.NewLimitPool(sets)
		require.NoError(t, err)
		// Drain all three; r1 least deeply (its debt clears first).
		for i, used := range []int64{10, 5, 10} {
			a := mustTry(t, sets[i], concurry.Amounts{"tokens": 10})
			require.NoError(t, a.Update(concurry.Amounts{"tokens": used}))
			require.NoError(t, a.Release())
		}
		// r1 has 5 now; ask for 8: r1 can give them at +300ms, the others at +800ms.
		waited, a := acquireAt(t, p, concurry.Amounts{"tokens": 8})
		assert.Equal(t, 300*time.Millisecond, waited)
		assert.Equal(t, "r1", region(a))
		mustRelease(t, a, concurry.Amounts{"tokens": 8})
		st, err := p.Stats(bg)
		require.NoError(t, err)
		assert.Equal(t, []int64{0, 1, 0}, st.Dispatched)
		// Only one set granted: the others are untouched.
		assert.Equal(t, int64(3), st.Sets[0].Limits[0].Available)
		assert.Equal(t, int64(0), st.Sets[1].Limits[0].Available)
		assert.Equal(t, int64(3), st.Sets[2].Limits[0].Available)
	})
}

func TestPoolDeadlineAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sets := regionSets(t, 2, 10, time.Second)
		p, err := concurry.NewLimitPool(sets)
		require.NoError(t, err)
		for _, s := range sets {
			mustRelease(t, mustTry(t, s, concurry.Amounts{"tokens": 10}), concurry.Amounts{"tokens": 10})
		}
		ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = p.Acquire(ctx, concurry.Amounts{"tokens": 5})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Zero(t, time.Since(start), "no set can meet it: fail at once")

		ctx2, cancel2 := context.WithCancel(bg)
		errc := make(chan error)
		go func() {
			_, err := p.Acquire(ctx2, concurry.Amounts{"tokens": 5})
			errc <- err
		}()
		time.Sleep(100 * time.Millisecond)
		cancel2()
		require.ErrorIs(t, <-errc, context.Canceled)
		time.Sleep(900 * time.Millisecond)
		for _, s := range sets {
			assert.Equal(t, int64(10), available(t, s, "tokens"), "the cancelled wait took nothing")
		}
	})
}

func TestNewLimitPoolRejectsBadOptions(t *testing.T) {
	set, err := concurry.NewLimitSet(nil)
	require.NoError(t, err)
	_, err = concurry.NewLimitPool([]*concurry.LimitSet{set}, concurry.WithBalancing(99))
	require.ErrorIs(t, err, concurry.ErrInvalidLimit)
	assert.Contains(t, err.Error(), "Balancing(99)")
	_, err = concurry.NewLimitPool([]*concurry.LimitSet{set}, concurry.WithWorkerIndex(-1))
	require.ErrorIs(t, err, concurry.ErrInvalidLimit)
	_, err = concurry.NewLimitPool(nil)
	require.ErrorIs(t, err, concurry.ErrInvalidLimit)
	_, err = concurry.NewLimitPool([]*concurry.LimitSet{set, nil})
	require.ErrorIs(t, err, concurry.ErrInvalidLimit)
	p, err := concurry.NewLimitPool([]*concurry.LimitSet{set}, concurry.WithBalancing(concurry.Random))
	require.NoError(t, err)
	assert.Equal(t, 1, p.Len())
}

// The sets that lose a pool's wait count no refusal for it (the caller was
// granted); each counts the pool's non-blocking pass that it refused.
func TestPoolLosersCountNoRefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		mk := func(w time.Duration) *concurry.LimitSet {
			ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: w, Capacity: 1}})
			require.NoError(t, err)
			return ls
		}
		fast, slow := mk(time.Second), mk(time.Hour)
		pool, err := concurry.NewLimitPool([]*concurry.LimitSet{fast, slow})
		require.NoError(t, err)
		for range 2 {
			a, err := pool.TryAcquire(ctx, nil)
			require.NoError(t, err)
			require.NoError(t, a.Release())
		}
		a, err := pool.Acquire(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, a.Release())
		assert.Same(t, fast, a.Set())
		for _, ls := range []*concurry.LimitSet{fast, slow} {
			st, err := ls.Stats(ctx)
			require.NoError(t, err)
			assert.Equal(t, concurry.Refusals{WouldBlock: 1}, st.Refusals, ls.Name())
		}
	})
}
