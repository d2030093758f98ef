package concurryotel_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryotel"
	"github.com/concurry/concurry/internal/observe/observetest"
)

func TestHooksRecordEveryDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, reader := newMetrics(t, concurryotel.Options{})
		set := openSet(t, m.Hooks(), "api", observetest.ScriptLimits()...)
		held := observetest.Script(t, set)
		defer held.Release()

		// Attributes in their sorted order, without "concurry.".
		const api, name = "backend=memory", ",set.name=api"
		const tokens = ",limit.algorithm=token_bucket,limit.key=tokens"
		assert.Equal(t, map[string]float64{
			"concurry.acquisitions{" + api + ",outcome=granted" + name + "}":                         3,
			"concurry.acquisitions{" + api + tokens + ",outcome=would_block" + name + "}":            1,
			"concurry.acquisitions{" + api + ",outcome=invalid" + name + "}":                         1,
			"concurry.acquisitions{" + api + tokens + ",outcome=deadline" + name + "}":               1,
			"concurry.wait.duration_count{" + api + tokens + ",outcome=granted" + name + "}":         1,
			"concurry.wait.duration_sum{" + api + tokens + ",outcome=granted" + name + "}":           0.1,
			"concurry.wait.duration_bucket{" + api + tokens + ",outcome=granted" + name + ",le=0.1}": 1,
			"concurry.refunded{" + api + tokens + name + "}":                                         50,
			"concurry.overage{" + api + tokens + name + "}":                                          20,
			"concurry.feedback{" + api + ",feedback.kind=lower" + tokens + name + "}":                1,
			"concurry.feedback{" + api + ",feedback.kind=pause" + name + "}":                         1,
		}, collect(t, reader), "nothing is registered: only what the hooks recorded")
	})
}

// The gauges read the registered set's Stats at the instant of collection.
func TestGaugesReadStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, reader := newMetrics(t, concurryotel.Options{})
		set := registered(t, m, "api", observetest.ScriptLimits()...)
		held := observetest.Script(t, set)

		const api, name = "backend=memory", ",set.name=api"
		const calls = api + ",limit.algorithm=token_bucket,limit.key=call_count,limit.window=1s" + name
		const tokens = api + ",limit.algorithm=token_bucket,limit.key=tokens,limit.window=1s" + name
		const conns = api + ",limit.algorithm=semaphore,limit.key=conns" + name
		want := map[string]float64{
			// Paused for a second: nothing is available.
			"concurry.limit.available{" + calls + "}": 0, "concurry.limit.in_use{" + calls + "}": 0,
			"concurry.limit.debt{" + calls + "}": 0, "concurry.limit.capacity{" + calls + "}": 10,
			"concurry.limit.utilization{" + calls + "}": 1,
			"concurry.limit.available{" + tokens + "}":  0, "concurry.limit.in_use{" + tokens + "}": 0,
			"concurry.limit.debt{" + tokens + "}": 20, "concurry.limit.capacity{" + tokens + "}": 100,
			"concurry.limit.utilization{" + tokens + "}": 1,
			"concurry.limit.available{" + conns + "}":    0, "concurry.limit.in_use{" + conns + "}": 1,
			"concurry.limit.debt{" + conns + "}": 0, "concurry.limit.capacity{" + conns + "}": 2,
			"concurry.limit.utilization{" + conns + "}":           1,
			"concurry.degraded.decisions{" + api + name + "}":     0,
			"concurry.lease.renewal_failures{" + api + name + "}": 0,
			"concurry.lease.lost{" + api + name + "}":             0,
		}
		assert.Equal(t, want, only(collect(t, reader), "concurry.limit.", "concurry.degraded", "concurry.lease"))

		time.Sleep(time.Second) // the fake clock: the pause ends, every limit refills
		require.NoError(t, held.Update(concurry.Amounts{"tokens": 10}))
		require.NoError(t, held.Release())
		got := collect(t, reader)
		for _, c := range []struct {
			series string
			value  float64
		}{
			{"available{" + calls, 10}, {"utilization{" + calls, 0},
			{"available{" + tokens, 80}, {"debt{" + tokens, 0}, {"utilization{" + tokens, 0.2}, // 100 refilled, 20 repaying the debt
			{"available{" + conns, 2}, {"in_use{" + conns, 0}, {"utilization{" + conns, 0},
		} {
			assert.Equal(t, c.value, got["concurry.limit."+c.series+"}"], c.series)
		}

		require.True(t, m.Unregister(set))
		require.False(t, m.Unregister(set))
		assert.Empty(t, only(collect(t, reader), "concurry.limit."), "an unregistered set is no longer observed")
	})
}
