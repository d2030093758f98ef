package concurryprom_test

// Edge tests of the Prometheus collector: a real scrape, parsed, equals Stats.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
		set, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.RateLimit{Key: "tok", Window: time.Second, Capacity: 100, Algorithm: concurry.SlidingWindow},
			concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 1000, Algorithm: concurry.TokenBucket},
		}, concurry.WithName("mw"), concurry.WithHooks(c.Hooks()))
		require.NoError(t, err)
		require.NoError(t, c.Register(set))
		a, err := set.TryAcquire(context.Background(), concurry.Amounts{"tok": 50})
		require.NoError(t, err)
		require.NoError(t, a.Update(concurry.Amounts{"tok": 10}))
		require.NoError(t, a.Release())
		st, err := set.Stats(context.Background())
		require.NoError(t, err)
		t.Logf("%+v", st.Limits)
		var statsRefunded int64
		for _, l := range st.Limits {
			statsRefunded += l.Refunded
		}
		got := scrape(t, h)
		var promRefunded float64
		for _, v := range only(got, "concurry_refunded_units_total") {
			promRefunded += v
		}
		t.Log(only(got, "concurry_refunded_units_total", "concurry_limit_available"))
		assert.Equal(t, int64(40), statsRefunded)
		assert.Equal(t, float64(statsRefunded), promRefunded)
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
		set, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.CallLimit{Window: time.Hour, Capacity: 1},
			concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 100, Algorithm: concurry.GCRA},
		}, concurry.WithName("r"), concurry.WithHooks(c.Hooks()))
		require.NoError(t, err)
		require.NoError(t, c.Register(set))
		ctx := context.Background()
		a, err := set.TryAcquire(ctx, concurry.Amounts{"tok": 10})
		require.NoError(t, err)
		require.NoError(t, a.Update(concurry.Amounts{"tok": 10}))
		require.NoError(t, a.Release())
		_, err = set.TryAcquire(ctx, concurry.Amounts{"tok": 10}) // call_count blocks
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
		var wb, inv, dl float64
		for k, v := range only(got, "concurry_acquisitions_total") {
			switch {
			case contains(k, "outcome=would_block"):
				wb += v
				assert.Contains(t, k, "key="+re.Key)
			case contains(k, "outcome=invalid"):
				inv += v
			case contains(k, "outcome=deadline"):
				dl += v
			}
		}
		assert.Equal(t, float64(st.Refusals.WouldBlock), wb)
		assert.Equal(t, float64(st.Refusals.Invalid), inv)
		assert.Equal(t, float64(st.Refusals.Deadline), dl)
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
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
	mk := func(c *concurryprom.Collector) *concurry.LimitSet {
		ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "r", Capacity: 1}},
			concurry.WithName("same"), concurry.WithHooks(c.Hooks()))
		require.NoError(t, err)
		require.NoError(t, c.Register(ls))
		return ls
	}
	a, b := mk(c1), mk(c2)
	defer a.Close()
	defer b.Close()
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
		set, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.RateLimit{Key: "tok", Window: 10 * time.Second, Capacity: 10},
			concurry.ResourceLimit{Key: "conn", Capacity: 1},
		}, concurry.WithName("w"), concurry.WithHooks(c.Hooks()))
		require.NoError(t, err)
		require.NoError(t, c.Register(set))
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
			var sum, count float64
			for k, v := range only(got, "concurry_wait_seconds_sum") {
				if contains(k, "key="+l.Key+",") {
					sum += v
				}
			}
			for k, v := range only(got, "concurry_wait_seconds_count") {
				if contains(k, "key="+l.Key+",") {
					count += v
				}
			}
			assert.InDelta(t, l.Waited.Seconds(), sum, 1e-9, l.Key)
			assert.Equal(t, float64(l.Blocked), count, l.Key)
		}
		conn, _ := st.Limit("conn")
		assert.Equal(t, 6*time.Second, conn.Waited)
	})
}
