package concurryotel_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend/memory"
	"github.com/concurry/concurry/backend/unixsock"
	"github.com/concurry/concurry/extra/concurryotel"
)

func TestInvalidOptions(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())
	for _, o := range []concurryotel.Options{
		{WaitBuckets: []float64{1, 1}},
		{WaitBuckets: []float64{2, 1}},
		{WaitBuckets: []float64{math.NaN()}},
		{WaitBuckets: []float64{1, math.Inf(1)}},
		{StatsTimeout: -time.Second},
		{MaxSeries: -1},
	} {
		_, err := concurryotel.New(mp, o)
		require.ErrorIs(t, err, concurryotel.ErrInvalidOptions, "%+v", o)
		wrapped := fmt.Errorf("setup: %w", err)
		assert.ErrorIs(t, wrapped, concurryotel.ErrInvalidOptions)
		assert.Contains(t, err.Error(), "concurry: ")
	}
	assert.ErrorIs(t, fmt.Errorf("setup: %w", concurryotel.ErrDuplicateName), concurryotel.ErrDuplicateName)
}

func TestBackendName(t *testing.T) {
	assert.Equal(t, "memory", concurryotel.BackendName(nil))
	assert.Equal(t, "memory", concurryotel.BackendName(memory.New()))
	assert.Equal(t, "unixsock", concurryotel.BackendName((*unixsock.Client)(nil)))
}

// Options.Backend names the backend of sets not registered with one.
func TestDefaultBackend(t *testing.T) {
	m, reader := newMetrics(t, concurryotel.Options{Backend: "unixsock"})
	set := openSet(t, m.Hooks(), "x")
	_, err := set.TryAcquire(context.Background(), nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"concurry.acquisitions{backend=unixsock,outcome=granted,set.name=x}": 1}, collect(t, reader))
}

func TestCloseStopsObserving(t *testing.T) {
	m, reader := newMetrics(t, concurryotel.Options{})
	set := registered(t, m, "x", concurry.ResourceLimit{Key: "conns", Capacity: 1})
	require.Contains(t, collect(t, reader), "concurry.limit.available{backend=memory,limit.algorithm=semaphore,limit.key=conns,set.name=x}")
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "idempotent")
	a, err := set.TryAcquire(context.Background(), nil)
	require.NoError(t, err)
	require.NoError(t, a.Release())
	assert.Equal(t, map[string]float64{"concurry.acquisitions{backend=memory,outcome=granted,set.name=x}": 1},
		collect(t, reader), "the hooks go on recording")
}

func TestRegisterNilPanics(t *testing.T) {
	m, _ := newMetrics(t, concurryotel.Options{})
	assert.PanicsWithValue(t, "concurry: Metrics.Register of a nil LimitSet", func() { _ = m.Register(nil) })
	assert.Panics(t, func() { _ = m.RegisterPool(nil, "p") })
	assert.Panics(t, func() { _ = m.RegisterKeyed(nil, "k") })
	assert.False(t, m.Unregister("not a source"))
}

// Recording through the hooks allocates nothing once a series is known:
// an acquisition and its release allocate as much with them as without.
func TestHooksDoNotAllocate(t *testing.T) {
	m, _ := newMetrics(t, concurryotel.Options{})
	limits := []concurry.Limit{concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1 << 40}}
	plain, err := concurry.NewLimitSet(limits)
	require.NoError(t, err)
	hooked, err := concurry.NewLimitSet(limits, concurry.WithName("x"), concurry.WithHooks(m.Hooks()))
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

// Options.WaitBuckets are the histogram's boundaries, copied: changing the
// caller's slice later changes nothing.
func TestWaitBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		buckets := []float64{0.05, 0.2}
		m, reader := newMetrics(t, concurryotel.Options{WaitBuckets: buckets})
		buckets[1] = 0.06
		set := openSet(t, m.Hooks(), "x", concurry.CallLimit{Window: time.Second, Capacity: 10})
		_, err := set.TryAcquire(context.Background(), concurry.Amounts{concurry.CallKey: 10})
		require.NoError(t, err)
		_, err = set.Acquire(context.Background(), concurry.Amounts{concurry.CallKey: 1}) // 100ms
		require.NoError(t, err)
		assert.Equal(t, map[string]float64{
			"concurry.wait.duration_bucket{backend=memory,limit.algorithm=token_bucket,limit.key=call_count,outcome=granted,set.name=x,le=0.2}": 1,
		}, only(collect(t, reader), "concurry.wait.duration_bucket"))
	})
}
