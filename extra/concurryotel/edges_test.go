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

// twoWindows opens a registered set named name with one key, tok, of two
// windows (1s of 100 on first, 1h of 1000 on second), takes take of it at
// once and reports used, and returns the set's Stats and what the reader
// collects then.
func twoWindows(t *testing.T, name string, first, second concurry.Algorithm, take, used int64) (concurry.Stats, map[string]float64) {
	t.Helper()
	m, reader := newMetrics(t, concurryotel.Options{})
	set := registered(t, m, name,
		concurry.RateLimit{Key: "tok", Window: time.Second, Capacity: 100, Algorithm: first},
		concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 1000, Algorithm: second})
	use(t, set, "tok", take, used)
	st, err := set.Stats(context.Background())
	require.NoError(t, err)
	return st, collect(t, reader)
}

// DESIGN "Observability": the OpenTelemetry module is built on the hooks and
// on Stats. A key with two windows whose second (TokenBucket) refunds: the
// refunded counter read with a ManualReader equals Stats' refunds.
func TestEdgeOtelRefundMultiWindowKeyEqualsStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, got := twoWindows(t, "mw", concurry.SlidingWindow, concurry.TokenBucket, 50, 10)
		var statsRefunded int64
		for _, l := range st.Limits {
			statsRefunded += l.Refunded
		}
		t.Log(only(got, "concurry.refunded", "concurry.limit.available"))
		assert.Equal(t, int64(40), statsRefunded)
		assert.Equal(t, float64(statsRefunded), sum(got, "concurry.refunded"))
	})
}

// Overage: the overage counter equals Stats.Overage, and debt gauges equal
// Stats.Debt, per window of a two-window key.
func TestEdgeOtelOverageAndDebtEqualStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, got := twoWindows(t, "ov", concurry.GCRA, concurry.FixedWindow, 100, 130)
		t.Log(only(got, "concurry.overage", "concurry.limit.debt"))
		assert.Equal(t, float64(st.Limits[0].Overage), sum(got, "concurry.overage"), "one settle per key: the overage of the key")
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
