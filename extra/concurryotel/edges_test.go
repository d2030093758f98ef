package concurryotel_test

// Edge tests of the OpenTelemetry metrics: read with a ManualReader, they equal Stats.

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryotel"
)

// DESIGN "Observability": the OpenTelemetry module is built on the hooks and
// on Stats. A key with two windows whose second (TokenBucket) refunds: the
// refunded counter read with a ManualReader equals Stats' refunds.
func TestEdgeOtelRefundMultiWindowKeyEqualsStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, reader := newMetrics(t, concurryotel.Options{})
		set, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.RateLimit{Key: "tok", Window: time.Second, Capacity: 100, Algorithm: concurry.SlidingWindow},
			concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 1000, Algorithm: concurry.TokenBucket},
		}, concurry.WithName("mw"), concurry.WithHooks(m.Hooks()))
		require.NoError(t, err)
		defer set.Close()
		require.NoError(t, m.Register(set))
		a, err := set.TryAcquire(context.Background(), concurry.Amounts{"tok": 50})
		require.NoError(t, err)
		require.NoError(t, a.Update(concurry.Amounts{"tok": 10}))
		require.NoError(t, a.Release())
		st, err := set.Stats(context.Background())
		require.NoError(t, err)
		var statsRefunded int64
		for _, l := range st.Limits {
			statsRefunded += l.Refunded
		}
		got := collect(t, reader)
		var otelRefunded float64
		for _, v := range only(got, "concurry.refunded") {
			otelRefunded += v
		}
		t.Log(only(got, "concurry.refunded", "concurry.limit.available"))
		assert.Equal(t, int64(40), statsRefunded)
		assert.Equal(t, float64(statsRefunded), otelRefunded)
	})
}

// Overage: the overage counter equals Stats.Overage, and debt gauges equal
// Stats.Debt, per window of a two-window key.
func TestEdgeOtelOverageAndDebtEqualStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, reader := newMetrics(t, concurryotel.Options{})
		set, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.RateLimit{Key: "tok", Window: time.Second, Capacity: 100, Algorithm: concurry.GCRA},
			concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 1000, Algorithm: concurry.FixedWindow},
		}, concurry.WithName("ov"), concurry.WithHooks(m.Hooks()))
		require.NoError(t, err)
		defer set.Close()
		require.NoError(t, m.Register(set))
		a, err := set.TryAcquire(context.Background(), concurry.Amounts{"tok": 100})
		require.NoError(t, err)
		require.NoError(t, a.Update(concurry.Amounts{"tok": 130}))
		require.NoError(t, a.Release())
		st, err := set.Stats(context.Background())
		require.NoError(t, err)
		got := collect(t, reader)
		t.Log(only(got, "concurry.overage", "concurry.limit.debt"))
		var ov float64
		for _, v := range only(got, "concurry.overage") {
			ov += v
		}
		assert.Equal(t, float64(st.Limits[0].Overage), ov, "one settle per key: the overage of the key")
		for _, l := range st.Limits {
			found := false
			for k, v := range only(got, "concurry.limit.debt") {
				if strings.Contains(k, "limit.window="+l.Window.String()) {
					found = true
					assert.Equal(t, float64(l.Debt), v, k)
				}
			}
			assert.True(t, found, l.Window.String())
		}
	})
}
