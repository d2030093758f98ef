package concurryprom_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryprom"
	"github.com/concurry/concurry/internal/observe/observetest"
)

func TestHooksRecordEveryDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newCollector(t, concurryprom.Options{})
		set := openSet(t, c.Hooks(), "api", observetest.ScriptLimits()...)
		held := observetest.Script(t, set)
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
		set := registered(t, c, "api", observetest.ScriptLimits()...)
		held := observetest.Script(t, set)

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
