package concurry_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
)

func perSecond(n int64) []concurry.Limit {
	return []concurry.Limit{concurry.CallLimit{Window: time.Second, Capacity: n}}
}

func newKeyed(t *testing.T, opts concurry.KeyedOptions) *concurry.Keyed {
	t.Helper()
	k, err := concurry.NewKeyed(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func TestKeyedIdentitiesAreIndependent(t *testing.T) {
	ctx := context.Background()
	k := newKeyed(t, concurry.KeyedOptions{Limits: perSecond(2), Name: "api"})
	for range 2 {
		a, err := k.TryAcquire(ctx, "alice", nil)
		require.NoError(t, err)
		require.NoError(t, a.Release())
	}
	_, err := k.TryAcquire(ctx, "alice", nil)
	require.ErrorIs(t, err, concurry.ErrWouldBlock)
	a, err := k.TryAcquire(ctx, "bob", nil)
	require.NoError(t, err)
	assert.Equal(t, "api/bob", a.Set().Name())
	require.NoError(t, a.Release())
	assert.Equal(t, 2, k.Len())
}

// An identity is forgotten only once it is full again, at the exact instant
// its bucket refilled: forgetting never hands out a fresh budget early.
func TestKeyedForgetsOnlyFullIdentities(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		k := newKeyed(t, concurry.KeyedOptions{Limits: perSecond(2)})
		require.NoError(t, k.Do(ctx, "alice", nil, func(context.Context, *concurry.Acquisition) error { return nil }))
		assert.Equal(t, 0, k.Sweep(ctx), "1 of 2 calls spent: not full")
		time.Sleep(500*time.Millisecond - 1)
		assert.Equal(t, 0, k.Sweep(ctx), "1ns before the refill")
		assert.Equal(t, 1, k.Len())
		time.Sleep(time.Nanosecond)
		assert.Equal(t, 1, k.Sweep(ctx), "full again")
		assert.Equal(t, 0, k.Len())
	})
}

func TestKeyedNoResetByEviction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		k := newKeyed(t, concurry.KeyedOptions{Limits: perSecond(1)})
		a, err := k.TryAcquire(ctx, "mallory", nil)
		require.NoError(t, err)
		require.NoError(t, a.Release())
		// Ten thousand new identities pass through, each prompting sweeps.
		for i := range 10_000 {
			a, err := k.TryAcquire(ctx, fmt.Sprint("id-", i), nil)
			require.NoError(t, err)
			require.NoError(t, a.Release())
		}
		_, err = k.TryAcquire(ctx, "mallory", nil)
		require.ErrorIs(t, err, concurry.ErrWouldBlock, "mallory's spent call must not come back before its refill")
		st, err := k.Stats(ctx, "mallory")
		require.NoError(t, err)
		assert.Equal(t, int64(0), st.Limits[0].Available)
	})
}

func TestKeyedKeepsHeldAndWaitingIdentities(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		k := newKeyed(t, concurry.KeyedOptions{Limits: []concurry.Limit{concurry.ResourceLimit{Key: "conns", Capacity: 1}}})
		a, err := k.Acquire(ctx, "alice", nil)
		require.NoError(t, err)
		got := make(chan error, 1)
		go func() {
			b, err := k.Acquire(ctx, "alice", nil)
			if err == nil {
				err = b.Release()
			}
			got <- err
		}()
		synctest.Wait()
		assert.Equal(t, 0, k.Sweep(ctx), "held and waited on")
		require.NoError(t, a.Release())
		require.NoError(t, <-got)
		assert.Equal(t, 1, k.Sweep(ctx), "free again")
		assert.Equal(t, 0, k.Len())
	})
}

// A million identities passing through leave memory bounded by the
// identities active within a window.
func TestKeyedMemoryFollowsActiveIdentities(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		k := newKeyed(t, concurry.KeyedOptions{Limits: []concurry.Limit{concurry.CallLimit{Window: 10 * time.Millisecond, Capacity: 5}}})
		peak := 0
		const n, perWindow = 200_000, 200
		for i := range n {
			a, err := k.TryAcquire(ctx, fmt.Sprint("id-", i), nil)
			require.NoError(t, err)
			require.NoError(t, a.Release())
			if i%perWindow == perWindow-1 {
				time.Sleep(10 * time.Millisecond) // one window per 200 identities
				peak = max(peak, k.Len())
			}
		}
		t.Logf("peak %d identities held for %d passing through, %d per window", peak, n, perWindow)
		assert.Less(t, peak, 20*perWindow)
		time.Sleep(10 * time.Millisecond)
		k.Sweep(ctx)
		assert.Equal(t, 0, k.Len())
	})
}

func TestKeyedTiers(t *testing.T) {
	ctx := context.Background()
	k := newKeyed(t, concurry.KeyedOptions{LimitsFor: func(id string) ([]concurry.Limit, error) {
		switch id {
		case "free":
			return perSecond(1), nil
		case "paid":
			return perSecond(3), nil
		case "panic":
			panic("no tier")
		case "exit":
			runtime.Goexit()
		}
		return nil, errors.New("unknown customer")
	}})
	count := func(id string) int {
		n := 0
		for {
			a, err := k.TryAcquire(ctx, id, nil)
			if err != nil {
				return n
			}
			n++
			require.NoError(t, a.Release())
		}
	}
	assert.Equal(t, 1, count("free"))
	assert.Equal(t, 3, count("paid"))
	_, err := k.TryAcquire(ctx, "panic", nil)
	require.ErrorIs(t, err, concurry.ErrInvalidLimit)
	assert.Contains(t, err.Error(), "no tier")
	_, err = k.TryAcquire(ctx, "exit", nil)
	require.ErrorIs(t, err, concurry.ErrInvalidLimit)
	assert.Contains(t, err.Error(), "Goexit")
	_, err = k.TryAcquire(ctx, "stranger", nil)
	require.ErrorContains(t, err, "unknown customer")
	st, err := k.Stats(ctx, "paid")
	require.NoError(t, err)
	assert.Equal(t, int64(3), st.Limits[0].Capacity)
}

func TestKeyedStatsOfUnseenIdentity(t *testing.T) {
	ctx := context.Background()
	k := newKeyed(t, concurry.KeyedOptions{Limits: perSecond(7), Name: "api"})
	st, err := k.Stats(ctx, "nobody")
	require.NoError(t, err)
	assert.Equal(t, "api/nobody", st.Name)
	assert.Equal(t, int64(7), st.Limits[0].Available)
	assert.Equal(t, 0, k.Len(), "Stats makes no set")
}

func TestKeyedForIsALimiter(t *testing.T) {
	ctx := context.Background()
	k := newKeyed(t, concurry.KeyedOptions{Limits: []concurry.Limit{concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 100}}})
	var lim concurry.Limiter = k.For("alice")
	err := lim.Do(ctx, concurry.Amounts{"tokens": 60}, func(_ context.Context, a *concurry.Acquisition) error {
		return a.Update(concurry.Amounts{"tokens": 10})
	})
	require.NoError(t, err)
	st, err := k.Stats(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, int64(90), st.Limits[0].Available)
	_, err = lim.TryAcquire(ctx, concurry.Amounts{"tokens": 91})
	require.ErrorIs(t, err, concurry.ErrWouldBlock)
}

func TestKeyedInvalid(t *testing.T) {
	_, err := concurry.NewKeyed(concurry.KeyedOptions{})
	require.NoError(t, err, "no limits: every identity's set grants everything")
	_, err = concurry.NewKeyed(concurry.KeyedOptions{Limits: perSecond(0)})
	require.ErrorIs(t, err, concurry.ErrInvalidLimit)
	k := newKeyed(t, concurry.KeyedOptions{Limits: perSecond(1), Name: "api"})
	_, err = k.TryAcquire(context.Background(), string(make([]byte, concurry.MaxNameLen)), nil)
	require.ErrorIs(t, err, concurry.ErrInvalidRequest)
}

// An active identity of three limits (calls, tokens, connections) costs at
// most 400 bytes in all: its set, its entry, its name.
func TestKeyedBytesPerIdentity(t *testing.T) {
	ctx := context.Background()
	k := newKeyed(t, concurry.KeyedOptions{Limits: []concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 100},
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 10_000},
		concurry.ResourceLimit{Key: "connections", Capacity: 3},
	}})
	const n = 50_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("user-", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, id := range ids {
		a, err := k.TryAcquire(ctx, id, concurry.Amounts{"tokens": 10})
		require.NoError(t, err)
		require.NoError(t, a.Update(concurry.Amounts{"tokens": 10}))
		require.NoError(t, a.Release())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	require.Equal(t, n, k.Len(), "no identity refilled: all are held")
	perID := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per identity", perID)
	assert.LessOrEqual(t, perID, 400.0)
	runtime.KeepAlive(ids)
}

// A goroutine that exits in the Granted hook leaves its identity
// forgettable: the released acquisition ends its use of the identity.
func TestKeyedGoexitInGrantedForgets(t *testing.T) {
	ctx := context.Background()
	k := newKeyed(t, concurry.KeyedOptions{
		Limits: []concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}},
		Hooks:  &concurry.Hooks{Granted: func(concurry.GrantInfo) { runtime.Goexit() }},
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = k.Acquire(ctx, "alice", nil)
	}()
	<-done
	assert.Equal(t, 1, k.Sweep(ctx), "nothing holds alice any more")
	assert.Zero(t, k.Len())
}

// An identity used again within a window keeps its set, however soon it is
// full again, while new identities pass: it is not forgotten and made anew
// between its requests.
func TestKeyedKeepsIdentitiesUsedWithinAWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		k := newKeyed(t, concurry.KeyedOptions{Limits: []concurry.Limit{concurry.CallLimit{Window: time.Minute, Capacity: concurry.MaxCapacity}}})
		use := func(id string) *concurry.LimitSet {
			a, err := k.TryAcquire(ctx, id, nil)
			require.NoError(t, err)
			require.NoError(t, a.Release())
			return a.Set()
		}
		alice := use("alice")
		for i := range 10_000 {
			use(fmt.Sprint("id-", i))
			time.Sleep(time.Millisecond) // 10s in all: less than a window
			require.Same(t, alice, use("alice"), "alice was forgotten after %d new identities", i+1)
		}
		assert.Equal(t, 10_001, k.Len(), "nobody was idle for a window")
	})
}

// Identities idle for a window are forgotten as new identities arrive: no
// Sweep is needed for memory to follow the active identities.
func TestKeyedForgetsIdentitiesIdleForAWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		k := newKeyed(t, concurry.KeyedOptions{Limits: []concurry.Limit{concurry.CallLimit{Window: time.Minute, Capacity: 100}}})
		use := func(id string) *concurry.LimitSet {
			a, err := k.TryAcquire(ctx, id, nil)
			require.NoError(t, err)
			require.NoError(t, a.Release())
			return a.Set()
		}
		old := map[string]*concurry.LimitSet{}
		for i := range 1000 {
			id := fmt.Sprint("old-", i)
			old[id] = use(id)
		}
		for w := range 3 { // each window, a crowd of new identities
			time.Sleep(time.Minute)
			for i := range 2000 {
				use(fmt.Sprint("new-", w, "-", i))
			}
		}
		assert.Less(t, k.Len(), 6000, "the first crowd was forgotten too")
		for id, set := range old {
			require.NotSame(t, set, use(id), "%s, idle for three windows, is still held", id)
		}
	})
}

// A use that begins while a sweep looks at a full identity keeps it: the
// sweep must not forget a set the use has taken from, which would hand the
// identity a fresh budget.
func TestKeyedSweepRacingAUseResetsNothing(t *testing.T) {
	ctx := context.Background()
	k := newKeyed(t, concurry.KeyedOptions{Limits: []concurry.Limit{concurry.CallLimit{Window: time.Hour, Capacity: 1}}})
	for round := range 20 {
		ids := make([]string, 500)
		for i := range ids {
			ids[i] = fmt.Sprint(round, "-", i)
			_, err := k.TryAcquire(ctx, ids[i], concurry.Amounts{concurry.CallKey: 2}) // makes the set, takes nothing
			require.Error(t, err)
		}
		started, stop, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			close(started)
			for {
				select {
				case <-stop:
					return
				default:
					k.Sweep(ctx)
				}
			}
		}()
		<-started
		granted := 0
		take := func(id string) {
			if a, err := k.TryAcquire(ctx, id, nil); err == nil {
				granted++
				require.NoError(t, a.Release())
			}
		}
		for _, id := range ids {
			take(id)
		}
		close(stop)
		<-done
		for _, id := range ids {
			take(id)
		}
		require.Equal(t, len(ids), granted, "round %d: one call per identity per hour", round)
	}
}
