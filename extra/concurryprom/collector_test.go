package concurryprom_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend/memory"
	"github.com/concurry/concurry/backend/unixsock"
	"github.com/concurry/concurry/extra/concurryprom"
)

// A real promhttp handler on a real socket: a scrape over HTTP parses to
// what the set did. Windows of a year keep refills out of the values.
func TestScrapeOverHTTP(t *testing.T) {
	c, h := newCollector(t, concurryprom.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	hooks := c.Hooks()
	waiting := make(chan struct{})
	hooks.WaitStart = func(concurry.WaitInfo) { close(waiting) }
	set := openSet(t, hooks, "api",
		concurry.RateLimit{Key: "tokens", Window: 366 * 24 * time.Hour, Capacity: 1000},
		concurry.ResourceLimit{Key: "conns", Capacity: 1})
	require.NoError(t, c.Register(set))

	waitBehind(t, set, waiting)

	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got := parse(t, resp.Body)

	const conns, tokens = "algorithm=semaphore,backend=memory,key=conns", "algorithm=token_bucket,backend=memory,key=tokens"
	assert.Greater(t, got["concurry_wait_seconds_sum{"+conns+",outcome=granted,set=api}"], 0.0)
	delete(got, "concurry_wait_seconds_sum{"+conns+",outcome=granted,set=api}")
	for k := range only(got, "concurry_wait_seconds_bucket") {
		delete(got, k) // real time: the bucket is not known
	}
	assert.Equal(t, map[string]float64{
		"concurry_acquisitions_total{backend=memory,outcome=granted,set=api}":       2,
		"concurry_wait_seconds_count{" + conns + ",outcome=granted,set=api}":        1,
		"concurry_refunded_units_total{" + tokens + ",set=api}":                     50,
		"concurry_limit_available{" + tokens + ",set=api,window=8784h0m0s}":         450,
		"concurry_limit_in_use{" + tokens + ",set=api,window=8784h0m0s}":            0,
		"concurry_limit_debt{" + tokens + ",set=api,window=8784h0m0s}":              0,
		"concurry_limit_capacity{" + tokens + ",set=api,window=8784h0m0s}":          1000,
		"concurry_limit_utilization_ratio{" + tokens + ",set=api,window=8784h0m0s}": 0.55,
		"concurry_limit_available{" + conns + ",set=api}":                           1,
		"concurry_limit_in_use{" + conns + ",set=api}":                              0,
		"concurry_limit_debt{" + conns + ",set=api}":                                0,
		"concurry_limit_capacity{" + conns + ",set=api}":                            1,
		"concurry_limit_utilization_ratio{" + conns + ",set=api}":                   0,
		"concurry_degraded_decisions_total{backend=memory,set=api}":                 0,
		"concurry_lease_renewal_failures_total{backend=memory,set=api}":             0,
		"concurry_leases_lost_total{backend=memory,set=api}":                        0,
	}, got)
}

// waitBehind holds 500 tokens and the one connection of set while a second
// acquisition of 100 tokens waits for it; once waiting has said it waits,
// it releases, and the second, granted, reports 50 and releases.
func waitBehind(t *testing.T, set *concurry.LimitSet, waiting <-chan struct{}) {
	t.Helper()
	ctx := context.Background()
	a, err := set.TryAcquire(ctx, concurry.Amounts{"tokens": 500})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		b, err := set.Acquire(ctx, concurry.Amounts{"tokens": 100}) // waits for conns
		if err == nil {
			_ = b.Update(concurry.Amounts{"tokens": 50}) // 50 refunded
			err = b.Release()
		}
		done <- err
	}()
	select {
	case <-waiting:
	case <-time.After(30 * time.Second):
		t.Fatal("the second acquisition never waited")
	}
	require.NoError(t, a.Update(concurry.Amounts{"tokens": 500}))
	require.NoError(t, a.Release())
	require.NoError(t, <-done)
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []concurryprom.Options{
		{WaitBuckets: []float64{1, 1}},
		{WaitBuckets: []float64{2, 1}},
		{WaitBuckets: []float64{math.NaN()}},
		{WaitBuckets: []float64{1, math.Inf(1)}},
		{StatsTimeout: -time.Second},
		{MaxSeries: -1},
	} {
		_, err := concurryprom.NewCollector(o)
		require.ErrorIs(t, err, concurryprom.ErrInvalidOptions, "%+v", o)
		assert.ErrorIs(t, fmt.Errorf("setup: %w", err), concurryprom.ErrInvalidOptions)
		assert.Contains(t, err.Error(), "concurry: ")
	}
	assert.ErrorIs(t, fmt.Errorf("setup: %w", concurryprom.ErrDuplicateName), concurryprom.ErrDuplicateName)
}

func TestBackendName(t *testing.T) {
	assert.Equal(t, "memory", concurryprom.BackendName(nil))
	assert.Equal(t, "memory", concurryprom.BackendName(memory.New()))
	assert.Equal(t, "unixsock", concurryprom.BackendName((*unixsock.Client)(nil)))
}

// Options.Backend names the backend of sets not registered with one.
func TestDefaultBackend(t *testing.T) {
	c, h := newCollector(t, concurryprom.Options{Backend: "unixsock"})
	set := openSet(t, c.Hooks(), "x")
	_, err := set.TryAcquire(context.Background(), nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"concurry_acquisitions_total{backend=unixsock,outcome=granted,set=x}": 1}, scrape(t, h))
}

func TestRegisterNilPanics(t *testing.T) {
	c, _ := newCollector(t, concurryprom.Options{})
	assert.PanicsWithValue(t, "concurry: Collector.Register of a nil LimitSet", func() { _ = c.Register(nil) })
	assert.Panics(t, func() { _ = c.RegisterPool(nil, "p") })
	assert.Panics(t, func() { _ = c.RegisterKeyed(nil, "k") })
	assert.False(t, c.Unregister("not a source"))
}

// Recording through the hooks allocates nothing once a series is known:
// an acquisition and its release allocate as much with them as without.
func TestHooksDoNotAllocate(t *testing.T) {
	c, _ := newCollector(t, concurryprom.Options{})
	limits := []concurry.Limit{concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1 << 40}}
	plain, err := concurry.NewLimitSet(limits)
	require.NoError(t, err)
	hooked, err := concurry.NewLimitSet(limits, concurry.WithName("x"), concurry.WithHooks(c.Hooks()))
	require.NoError(t, err)
	req, usage := concurry.Amounts{"tokens": 10}, concurry.Amounts{"tokens": 5}
	cycle := func(ls *concurry.LimitSet) func() {
		return func() {
			a, err := ls.TryAcquire(context.Background(), req)
			if err != nil {
				panic(err)
			}
			_ = a.Update(usage)
			_ = a.Release() // refunds 5: Settled records too
		}
	}
	cycle(hooked)() // the series are made once
	assert.Equal(t, testing.AllocsPerRun(100, cycle(plain)), testing.AllocsPerRun(100, cycle(hooked)))
}

// Options.WaitBuckets are the histogram's buckets, copied: changing the
// caller's slice later changes nothing.
func TestWaitBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		buckets := []float64{0.05, 0.2}
		c, h := newCollector(t, concurryprom.Options{WaitBuckets: buckets})
		buckets[1] = 0.06
		set := openSet(t, c.Hooks(), "x", concurry.CallLimit{Window: time.Second, Capacity: 10})
		_, err := set.TryAcquire(context.Background(), concurry.Amounts{concurry.CallKey: 10})
		require.NoError(t, err)
		_, err = set.Acquire(context.Background(), concurry.Amounts{concurry.CallKey: 1}) // 100ms
		require.NoError(t, err)
		got := only(scrape(t, h), "concurry_wait_seconds_bucket")
		assert.Equal(t, map[string]float64{
			"concurry_wait_seconds_bucket{algorithm=token_bucket,backend=memory,key=call_count,outcome=granted,set=x,le=0.2}": 1,
		}, got)
	})
}
