package concurryotel_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryotel"
)

// A pool's decisions are recorded once each by PoolHooks, its sets'
// decisions by their Hooks, and its dispatch counts per set at collection.
func TestPoolHooksAndDispatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m, reader := newMetrics(t, concurryotel.Options{})
		east := openSet(t, m.Hooks(), "east", concurry.CallLimit{Window: time.Second, Capacity: 1})
		west := openSet(t, m.Hooks(), "west", concurry.CallLimit{Window: 2 * time.Second, Capacity: 1})
		pool, err := concurry.NewLimitPool([]*concurry.LimitSet{east, west}, concurry.WithHooks(m.PoolHooks("regions")))
		require.NoError(t, err)
		require.NoError(t, m.RegisterPool(pool, "regions"))

		for range 2 { // east, then west
			a, err := pool.TryAcquire(ctx, nil)
			require.NoError(t, err)
			require.NoError(t, a.Release())
		}
		_, err = pool.TryAcquire(ctx, nil) // both empty
		require.ErrorIs(t, err, concurry.ErrWouldBlock)
		a, err := pool.Acquire(ctx, nil) // east refills first, after 1s
		require.NoError(t, err)
		require.Same(t, east, a.Set())
		require.NoError(t, a.Release())

		const calls = ",limit.algorithm=token_bucket,limit.key=call_count"
		assert.Equal(t, map[string]float64{
			"concurry.pool.acquisitions{outcome=granted,pool.name=regions}":              3,
			"concurry.pool.acquisitions{outcome=would_block,pool.name=regions}":          1,
			"concurry.pool.wait.duration_count{outcome=granted,pool.name=regions}":       1,
			"concurry.pool.wait.duration_sum{outcome=granted,pool.name=regions}":         1,
			"concurry.pool.wait.duration_bucket{outcome=granted,pool.name=regions,le=1}": 1,
			"concurry.pool.dispatched{pool.index=0,pool.name=regions,set.name=east}":     2,
			"concurry.pool.dispatched{pool.index=1,pool.name=regions,set.name=west}":     1,
			// The sets: each refused twice (the pool's two passes over both);
			// west's wait ended when east won.
			"concurry.acquisitions{backend=memory,outcome=granted,set.name=east}":                           2,
			"concurry.acquisitions{backend=memory" + calls + ",outcome=would_block,set.name=east}":          2,
			"concurry.acquisitions{backend=memory,outcome=granted,set.name=west}":                           1,
			"concurry.acquisitions{backend=memory" + calls + ",outcome=would_block,set.name=west}":          2,
			"concurry.wait.duration_count{backend=memory" + calls + ",outcome=granted,set.name=east}":       1,
			"concurry.wait.duration_sum{backend=memory" + calls + ",outcome=granted,set.name=east}":         1,
			"concurry.wait.duration_bucket{backend=memory" + calls + ",outcome=granted,set.name=east,le=1}": 1,
			"concurry.wait.duration_count{backend=memory" + calls + ",outcome=claimed,set.name=west}":       1,
			"concurry.wait.duration_sum{backend=memory" + calls + ",outcome=claimed,set.name=west}":         1,
			"concurry.wait.duration_bucket{backend=memory" + calls + ",outcome=claimed,set.name=west,le=1}": 1,
		}, only(collect(t, reader), "concurry.pool.", "concurry.acquisitions", "concurry.wait."))

		got := collect(t, reader)
		assert.Equal(t, 0.0, got["concurry.limit.available{backend=memory"+calls+",limit.window=1s,set.name=east}"])
		assert.Equal(t, 0.0, got["concurry.limit.available{backend=memory"+calls+",limit.window=2s,set.name=west}"],
			"half a call refilled: none whole")
	})
}

// KeyedHooks give every identity one series, named as the Keyed.
func TestKeyedHooksShareOneSeries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m, reader := newMetrics(t, concurryotel.Options{})
		k, err := concurry.NewKeyed(concurry.KeyedOptions{
			Name:   "users",
			Limits: []concurry.Limit{concurry.CallLimit{Window: time.Second, Capacity: 1}},
			Hooks:  m.KeyedHooks("users"),
		})
		require.NoError(t, err)
		defer k.Close()
		require.NoError(t, m.RegisterKeyed(k, "users"))
		for _, id := range []string{"alice", "bob"} {
			a, err := k.TryAcquire(ctx, id, nil)
			require.NoError(t, err)
			require.NoError(t, a.Release())
		}
		_, err = k.TryAcquire(ctx, "alice", nil)
		require.ErrorIs(t, err, concurry.ErrWouldBlock)

		assert.Equal(t, map[string]float64{
			"concurry.acquisitions{backend=memory,outcome=granted,set.name=users}":                                                       2,
			"concurry.acquisitions{backend=memory,limit.algorithm=token_bucket,limit.key=call_count,outcome=would_block,set.name=users}": 1,
			"concurry.keyed.identities{backend=memory,set.name=users}":                                                                   2,
		}, collect(t, reader))
	})
}

// Two registered sets of one name could not be told apart: the second is
// refused, and so is a Keyed under a taken name.
func TestDuplicateNamesAreRefused(t *testing.T) {
	m, _ := newMetrics(t, concurryotel.Options{})
	newSet := func(name string) *concurry.LimitSet {
		ls, err := concurry.NewLimitSet(nil, concurry.WithName(name))
		require.NoError(t, err)
		return ls
	}
	a, b, other := newSet("a"), newSet("a"), newSet("b")
	require.NoError(t, m.Register(a))
	require.NoError(t, m.Register(a), "registering again replaces")
	require.ErrorIs(t, m.Register(b), concurryotel.ErrDuplicateName)
	pool, err := concurry.NewLimitPool([]*concurry.LimitSet{other, b})
	require.NoError(t, err)
	require.ErrorIs(t, m.RegisterPool(pool, "p"), concurryotel.ErrDuplicateName)
	assert.False(t, m.Unregister(pool), "nothing was registered")
	require.True(t, m.Unregister(a))
	require.NoError(t, m.RegisterPool(pool, "p"))
	require.ErrorIs(t, m.Register(a), concurryotel.ErrDuplicateName, "b is in the pool")

	k1, err := concurry.NewKeyed(concurry.KeyedOptions{})
	require.NoError(t, err)
	k2, err := concurry.NewKeyed(concurry.KeyedOptions{})
	require.NoError(t, err)
	require.NoError(t, m.RegisterKeyed(k1, "users"))
	require.ErrorIs(t, m.RegisterKeyed(k2, "users"), concurryotel.ErrDuplicateName)
}
