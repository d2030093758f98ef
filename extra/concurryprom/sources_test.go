package concurryprom_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryprom"
)

// A pool's decisions are recorded once each by PoolHooks, its sets'
// decisions by their Hooks, and its dispatch counts per set at the scrape.
func TestPoolHooksAndDispatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c, h := newCollector(t, concurryprom.Options{})
		east := openSet(t, c.Hooks(), "east", concurry.CallLimit{Window: time.Second, Capacity: 1})
		west := openSet(t, c.Hooks(), "west", concurry.CallLimit{Window: 2 * time.Second, Capacity: 1})
		pool, err := concurry.NewLimitPool([]*concurry.LimitSet{east, west}, concurry.WithHooks(c.PoolHooks("regions")))
		require.NoError(t, err)
		require.NoError(t, c.RegisterPool(pool, "regions"))

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

		const calls = "algorithm=token_bucket,backend=memory,key=call_count"
		assert.Equal(t, map[string]float64{
			"concurry_pool_acquisitions_total{outcome=granted,pool=regions}":       3,
			"concurry_pool_acquisitions_total{outcome=would_block,pool=regions}":   1,
			"concurry_pool_wait_seconds_count{outcome=granted,pool=regions}":       1,
			"concurry_pool_wait_seconds_sum{outcome=granted,pool=regions}":         1,
			"concurry_pool_wait_seconds_bucket{outcome=granted,pool=regions,le=1}": 1,
			"concurry_pool_dispatched_total{index=0,pool=regions,set=east}":        2,
			"concurry_pool_dispatched_total{index=1,pool=regions,set=west}":        1,
			// The sets: each refused twice (the pool's two passes over both);
			// west's wait ended when east won.
			"concurry_acquisitions_total{backend=memory,outcome=granted,set=east}":      2,
			"concurry_acquisitions_total{" + calls + ",outcome=would_block,set=east}":   2,
			"concurry_acquisitions_total{backend=memory,outcome=granted,set=west}":      1,
			"concurry_acquisitions_total{" + calls + ",outcome=would_block,set=west}":   2,
			"concurry_wait_seconds_count{" + calls + ",outcome=granted,set=east}":       1,
			"concurry_wait_seconds_sum{" + calls + ",outcome=granted,set=east}":         1,
			"concurry_wait_seconds_bucket{" + calls + ",outcome=granted,set=east,le=1}": 1,
			"concurry_wait_seconds_count{" + calls + ",outcome=claimed,set=west}":       1,
			"concurry_wait_seconds_sum{" + calls + ",outcome=claimed,set=west}":         1,
			"concurry_wait_seconds_bucket{" + calls + ",outcome=claimed,set=west,le=1}": 1,
		}, only(scrape(t, h), "concurry_pool_", "concurry_acquisitions", "concurry_wait_"))

		got := scrape(t, h)
		assert.Equal(t, 0.0, got["concurry_limit_available{"+calls+",set=east,window=1s}"])
		assert.Contains(t, got, "concurry_limit_available{"+calls+",set=west,window=2s}", "the pool's sets are read")
	})
}

// KeyedHooks give every identity one series, named as the Keyed.
func TestKeyedHooksShareOneSeries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c, h := newCollector(t, concurryprom.Options{})
		k, err := concurry.NewKeyed(concurry.KeyedOptions{
			Name:   "users",
			Limits: []concurry.Limit{concurry.CallLimit{Window: time.Second, Capacity: 1}},
			Hooks:  c.KeyedHooks("users"),
		})
		require.NoError(t, err)
		defer k.Close()
		require.NoError(t, c.RegisterKeyed(k, "users"))
		for _, id := range []string{"alice", "bob"} {
			a, err := k.TryAcquire(ctx, id, nil)
			require.NoError(t, err)
			require.NoError(t, a.Release())
		}
		_, err = k.TryAcquire(ctx, "alice", nil)
		require.ErrorIs(t, err, concurry.ErrWouldBlock)

		assert.Equal(t, map[string]float64{
			"concurry_acquisitions_total{backend=memory,outcome=granted,set=users}":                                           2,
			"concurry_acquisitions_total{algorithm=token_bucket,backend=memory,key=call_count,outcome=would_block,set=users}": 1,
			"concurry_keyed_identities{backend=memory,set=users}":                                                             2,
		}, scrape(t, h))
	})
}

// Two registered sets of one name could not be told apart: the second is
// refused, and so is a Keyed under a taken name.
func TestDuplicateNamesAreRefused(t *testing.T) {
	c, _ := newCollector(t, concurryprom.Options{})
	newSet := func(name string) *concurry.LimitSet {
		ls, err := concurry.NewLimitSet(nil, concurry.WithName(name))
		require.NoError(t, err)
		return ls
	}
	a, b, other := newSet("a"), newSet("a"), newSet("b")
	require.NoError(t, c.Register(a))
	require.NoError(t, c.Register(a), "registering again replaces")
	require.ErrorIs(t, c.Register(b), concurryprom.ErrDuplicateName)
	pool, err := concurry.NewLimitPool([]*concurry.LimitSet{other, b})
	require.NoError(t, err)
	require.ErrorIs(t, c.RegisterPool(pool, "p"), concurryprom.ErrDuplicateName)
	assert.False(t, c.Unregister(pool), "nothing was registered")
	require.True(t, c.Unregister(a))
	require.NoError(t, c.RegisterPool(pool, "p"))
	require.ErrorIs(t, c.Register(a), concurryprom.ErrDuplicateName, "b is in the pool")

	k1, err := concurry.NewKeyed(concurry.KeyedOptions{})
	require.NoError(t, err)
	k2, err := concurry.NewKeyed(concurry.KeyedOptions{})
	require.NoError(t, err)
	require.NoError(t, c.RegisterKeyed(k1, "users"))
	require.ErrorIs(t, c.RegisterKeyed(k2, "users"), concurryprom.ErrDuplicateName)
}
