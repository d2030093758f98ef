package concurryprom_test

// Edge tests of the Prometheus collector: a real scrape, parsed, equals Stats.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryprom"
)

// Package doc: concurry_refunded_units_total is "recorded by the hooks";
// DESIGN: "The OpenTelemetry and Prometheus modules are built on it and on
// Stats". A key with two windows whose second (TokenBucket) refunds: the
// scraped refund equals what Stats counts.
func TestEdgePromRefundMultiWindowKeyEqualsStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newCollector(t, concurryprom.Options{})
		set := registered(t, c, "mw",
			concurry.RateLimit{Key: "tok", Window: time.Second, Capacity: 100, Algorithm: concurry.SlidingWindow},
			concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 1000, Algorithm: concurry.TokenBucket})
		use(t, set, "tok", 50, 10)
		st, err := set.Stats(context.Background())
		require.NoError(t, err)
		t.Logf("%+v", st.Limits)
		var statsRefunded int64
		for _, l := range st.Limits {
			statsRefunded += l.Refunded
		}
		got := scrape(t, h)
		t.Log(only(got, "concurry_refunded_units_total", "concurry_limit_available"))
		assert.Equal(t, int64(40), statsRefunded)
		assert.Equal(t, float64(statsRefunded), sum(got, "concurry_refunded_units_total"))
		// gauges: one series per window
		assert.Equal(t, 50.0, got["concurry_limit_available{algorithm=sliding_window,backend=memory,key=tok,set=mw,window=1s}"])
		assert.Equal(t, 990.0, got["concurry_limit_available{algorithm=token_bucket,backend=memory,key=tok,set=mw,window=1h0m0s}"])
	})
}

// Refusal counts from the hooks equal Stats.Refusals, the key label naming
// the key that refused; a Goexit-free panic in another hook does not skew them.
func TestEdgePromRefusalsEqualStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newCollector(t, concurryprom.Options{})
		set := registered(t, c, "r",
			concurry.CallLimit{Window: time.Hour, Capacity: 1},
			concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 100, Algorithm: concurry.GCRA})
		ctx := context.Background()
		use(t, set, "tok", 10, 10)
		_, err := set.TryAcquire(ctx, concurry.Amounts{"tok": 10}) // call_count blocks
		var re *concurry.RefusalError
		require.True(t, errors.As(err, &re))
		_, err = set.TryAcquire(ctx, concurry.Amounts{"tok": 101})
		require.ErrorIs(t, err, concurry.ErrExceedsCapacity)
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = set.Acquire(dctx, concurry.Amounts{"tok": 1})
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		st, err := set.Stats(ctx)
		require.NoError(t, err)
		got := scrape(t, h)
		t.Log(only(got, "concurry_acquisitions_total"))
		for k := range only(got, "concurry_acquisitions_total") {
			if strings.Contains(k, "outcome=would_block") {
				assert.Contains(t, k, "key="+re.Key)
			}
		}
		assert.Equal(t, float64(st.Refusals.WouldBlock), sum(got, "concurry_acquisitions_total", "outcome=would_block"))
		assert.Equal(t, float64(st.Refusals.Invalid), sum(got, "concurry_acquisitions_total", "outcome=invalid"))
		assert.Equal(t, float64(st.Refusals.Deadline), sum(got, "concurry_acquisitions_total", "outcome=deadline"))
	})
}

// Two collectors in one registry, each with a set named alike: registering
// must not panic, and a scrape must not fail on duplicate series.
func TestEdgePromTwoCollectorsSameSetName(t *testing.T) {
	c1, err := concurryprom.NewCollector(concurryprom.Options{})
	require.NoError(t, err)
	c2, err := concurryprom.NewCollector(concurryprom.Options{})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	require.NotPanics(t, func() { _ = reg.Register(c1) })
	var err2 error
	require.NotPanics(t, func() { err2 = reg.Register(c2) })
	t.Logf("second collector: %v", err2)
	registered(t, c1, "same", concurry.ResourceLimit{Key: "r", Capacity: 1})
	registered(t, c2, "same", concurry.ResourceLimit{Key: "r", Capacity: 1})
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	t.Logf("status %d: %.300s", rec.Code, rec.Body.String())
	if err2 == nil {
		assert.Equal(t, http.StatusOK, rec.Code, "both collectors accepted: the scrape must work")
	}
}

// Waits: the scraped wait histogram (sum and count, over every outcome)
// equals Stats' Waited and the waits counted in Blocked, per blocking key,
// at exact fake-time instants: a granted wait, a cancelled one, and one
// whose deadline came while waiting.
func TestEdgePromWaitsEqualStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newCollector(t, concurryprom.Options{})
		set := registered(t, c, "w",
			concurry.RateLimit{Key: "tok", Window: 10 * time.Second, Capacity: 10},
			concurry.ResourceLimit{Key: "conn", Capacity: 1})
		ctx := context.Background()
		held, err := set.TryAcquire(ctx, concurry.Amounts{"tok": 10})
		require.NoError(t, err)
		// a waiter on conn cancelled after 3s
		cctx, cancel := context.WithCancel(ctx)
		go func() { time.Sleep(3 * time.Second); cancel() }()
		_, err = set.Acquire(cctx, concurry.Amounts{"tok": 1})
		require.ErrorIs(t, err, context.Canceled)
		// a waiter on conn whose deadline (2s) comes while it waits
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = set.Acquire(dctx, concurry.Amounts{"tok": 1})
		dcancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		// a waiter on conn granted after 1s
		go func() {
			time.Sleep(time.Second)
			_ = held.Update(concurry.Amounts{"tok": 10})
			_ = held.Release()
		}()
		b, err := set.Acquire(ctx, concurry.Amounts{"tok": 1})
		require.NoError(t, err)
		require.NoError(t, b.Update(concurry.Amounts{"tok": 1}))
		require.NoError(t, b.Release())
		st, err := set.Stats(ctx)
		require.NoError(t, err)
		got := scrape(t, h)
		t.Log(only(got, "concurry_wait_seconds_sum", "concurry_wait_seconds_count"))
		for _, l := range st.Limits {
			assert.InDelta(t, l.Waited.Seconds(), sum(got, "concurry_wait_seconds_sum", "key="+l.Key+","), 1e-9, l.Key)
			assert.Equal(t, float64(l.Blocked), sum(got, "concurry_wait_seconds_count", "key="+l.Key+","), l.Key)
		}
		conn, _ := st.Limit("conn")
		assert.Equal(t, 6*time.Second, conn.Waited)
	})
}
