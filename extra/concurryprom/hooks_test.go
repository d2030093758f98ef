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

// script runs a fixed sequence of decisions on set at fixed instants (it
// must run in a synctest bubble): three grants (one after a 100ms wait on
// tokens), a refusal of each of three causes, a refund of 50, an overage of
// 20 and two feedbacks. It returns the acquisition it still holds.
func script(t *testing.T, set *concurry.LimitSet) *concurry.Acquisition {
	t.Helper()
	ctx := context.Background()
	held, err := set.TryAcquire(ctx, concurry.Amounts{"tokens": 10}) // 90 tokens left
	require.NoError(t, err)
	a, err := set.TryAcquire(ctx, concurry.Amounts{"tokens": 80})
	require.NoError(t, err)
	require.NoError(t, a.Update(concurry.Amounts{"tokens": 30}))
	require.NoError(t, a.Release()) // 50 refunded: 60 left
	_, err = set.TryAcquire(ctx, concurry.Amounts{"tokens": 70})
	require.ErrorIs(t, err, concurry.ErrWouldBlock)
	b, err := set.Acquire(ctx, concurry.Amounts{"tokens": 70}) // waits 100ms for 10 tokens at 100/s
	require.NoError(t, err)
	require.NoError(t, b.Update(concurry.Amounts{"tokens": 90}))
	require.NoError(t, b.Release()) // 20 over: 20 in debt
	_, err = set.TryAcquire(ctx, concurry.Amounts{"tokens": 101})
	require.ErrorIs(t, err, concurry.ErrExceedsCapacity)
	dctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	_, err = set.Acquire(dctx, concurry.Amounts{"tokens": 50})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, set.Lower(ctx, "tokens", 5, time.Now()))
	require.NoError(t, set.Pause(ctx, "", time.Now().Add(time.Second)))
	return held
}

func scriptLimits() []concurry.Limit {
	return []concurry.Limit{
		concurry.CallLimit{Window: time.Second, Capacity: 10},
		concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: 100},
		concurry.ResourceLimit{Key: "conns", Capacity: 2},
	}
}

func TestHooksRecordEveryDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newCollector(t, concurryprom.Options{})
		set, err := concurry.NewLimitSet(scriptLimits(), concurry.WithName("api"), concurry.WithHooks(c.Hooks()))
		require.NoError(t, err)
		defer set.Close()
		held := script(t, set)
		defer held.Release()

		// Labels in their sorted order.
		const tokens, api = "algorithm=token_bucket,backend=memory,key=tokens", ",set=api"
		assert.Equal(t, map[string]float64{
			"concurry_acquisitions_total{backend=memory,outcome=granted" + api + "}":         3,
			"concurry_acquisitions_total{" + tokens + ",outcome=would_block" + api + "}":     1,
			"concurry_acquisitions_total{backend=memory,outcome=invalid" + api + "}":         1,
			"concurry_acquisitions_total{" + tokens + ",outcome=deadline" + api + "}":        1,
			"concurry_wait_seconds_count{" + tokens + ",outcome=granted" + api + "}":         1,
			"concurry_wait_seconds_sum{" + tokens + ",outcome=granted" + api + "}":           0.1,
			"concurry_wait_seconds_bucket{" + tokens + ",outcome=granted" + api + ",le=0.1}": 1,
			"concurry_refunded_units_total{" + tokens + api + "}":                            50,
			"concurry_overage_units_total{" + tokens + api + "}":                             20,
			"concurry_feedback_total{" + tokens + ",kind=lower" + api + "}":                  1,
			"concurry_feedback_total{backend=memory,kind=pause" + api + "}":                  1,
		}, scrape(t, h), "nothing is registered: only what the hooks recorded")
	})
}

// The gauges read the registered set's Stats at the instant of the scrape.
func TestGaugesReadStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newCollector(t, concurryprom.Options{})
		set, err := concurry.NewLimitSet(scriptLimits(), concurry.WithName("api"), concurry.WithHooks(c.Hooks()))
		require.NoError(t, err)
		defer set.Close()
		require.NoError(t, c.Register(set))
		held := script(t, set)

		const calls = "algorithm=token_bucket,backend=memory,key=call_count,set=api,window=1s"
		const tokens = "algorithm=token_bucket,backend=memory,key=tokens,set=api,window=1s"
		const conns = "algorithm=semaphore,backend=memory,key=conns,set=api"
		want := map[string]float64{
			// Paused for a second: nothing is available.
			"concurry_limit_available{" + calls + "}": 0, "concurry_limit_in_use{" + calls + "}": 0,
			"concurry_limit_debt{" + calls + "}": 0, "concurry_limit_capacity{" + calls + "}": 10,
			"concurry_limit_utilization_ratio{" + calls + "}": 1,
			"concurry_limit_available{" + tokens + "}":        0, "concurry_limit_in_use{" + tokens + "}": 0,
			"concurry_limit_debt{" + tokens + "}": 20, "concurry_limit_capacity{" + tokens + "}": 100,
			"concurry_limit_utilization_ratio{" + tokens + "}": 1,
			"concurry_limit_available{" + conns + "}":          0, "concurry_limit_in_use{" + conns + "}": 1,
			"concurry_limit_debt{" + conns + "}": 0, "concurry_limit_capacity{" + conns + "}": 2,
			"concurry_limit_utilization_ratio{" + conns + "}":               1,
			"concurry_degraded_decisions_total{backend=memory,set=api}":     0,
			"concurry_lease_renewal_failures_total{backend=memory,set=api}": 0,
			"concurry_leases_lost_total{backend=memory,set=api}":            0,
		}
		assert.Equal(t, want, only(scrape(t, h), "concurry_limit_", "concurry_degraded", "concurry_lease"))

		time.Sleep(time.Second) // the fake clock: the pause ends, every limit refills
		require.NoError(t, held.Update(concurry.Amounts{"tokens": 10}))
		require.NoError(t, held.Release())
		got := scrape(t, h)
		for _, w := range []struct {
			series string
			value  float64
		}{
			{"available{" + calls, 10}, {"utilization_ratio{" + calls, 0},
			{"available{" + tokens, 80}, {"debt{" + tokens, 0}, {"utilization_ratio{" + tokens, 0.2}, // 100 refilled, 20 repaying the debt
			{"available{" + conns, 2}, {"in_use{" + conns, 0}, {"utilization_ratio{" + conns, 0},
		} {
			assert.Equal(t, w.value, got["concurry_limit_"+w.series+"}"], w.series)
		}

		require.True(t, c.Unregister(set))
		require.False(t, c.Unregister(set))
		assert.Empty(t, only(scrape(t, h), "concurry_limit_"), "an unregistered set is no longer read")
	})
}
