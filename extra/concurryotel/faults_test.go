package concurryotel_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/extra/concurryotel"
	"github.com/concurry/concurry/internal/observe/observetest"
)

// handled captures what reaches otel.Handle while the test runs.
type handled struct {
	mu   sync.Mutex
	errs []error
}

func captureOTelErrors(t *testing.T) *handled {
	h := &handled{}
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { h.mu.Lock(); h.errs = append(h.errs, err); h.mu.Unlock() }))
	t.Cleanup(func() { otel.SetErrorHandler(prev) })
	return h
}

func TestFaultsAreCountedAndStatsErrorsReported(t *testing.T) {
	handled := captureOTelErrors(t)
	m, reader := newMetrics(t, concurryotel.Options{})
	b := observetest.NewFaultyBackend(backend.Faults{RenewFailures: 3, LeasesLost: 1}, 2)
	set, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conns", Capacity: 4}},
		concurry.WithName("shared"), concurry.WithBackend(b), concurry.WithHooks(m.Hooks()))
	require.NoError(t, err)
	defer set.Close()
	require.NoError(t, m.Register(set, concurryotel.WithBackend(b)))

	a, err := set.TryAcquire(context.Background(), nil)
	require.NoError(t, err)
	b.Lost.Store(true)
	require.ErrorIs(t, a.Update(concurry.Amounts{"conns": 1}), concurry.ErrLeaseLost)
	require.ErrorIs(t, a.Release(), concurry.ErrLeaseLost)

	const shared = "backend=observetest,set.name=shared" // the backend's package
	got := collect(t, reader)
	assert.Equal(t, map[string]float64{
		"concurry.lease.lost_errors{" + shared + "}":                                                              1, // once per acquisition
		"concurry.degraded.decisions{" + shared + "}":                                                             2,
		"concurry.lease.renewal_failures{" + shared + "}":                                                         3,
		"concurry.lease.lost{" + shared + "}":                                                                     1,
		"concurry.limit.available{backend=observetest,limit.algorithm=semaphore,limit.key=conns,set.name=shared}": 4,
	}, only(got, "concurry.lease", "concurry.degraded", "concurry.limit.available", "concurry.stats"))
	assert.Empty(t, handled.errs)

	b.Unread.Store(true)
	got = collect(t, reader)
	assert.Equal(t, map[string]float64{
		"concurry.stats.errors{" + shared + "}":           1,
		"concurry.lease.lost_errors{" + shared + "}":      1, // once per acquisition
		"concurry.degraded.decisions{" + shared + "}":     2,
		"concurry.lease.renewal_failures{" + shared + "}": 3,
		"concurry.lease.lost{" + shared + "}":             1,
	}, only(got, "concurry.lease", "concurry.degraded", "concurry.limit.", "concurry.stats"),
		"the counters Stats still reports are observed; the gauges are not")
	require.Len(t, handled.errs, 1)
	assert.ErrorIs(t, handled.errs[0], concurry.ErrBackendUnavailable)
	assert.ErrorContains(t, handled.errs[0], `concurry: stats of set "shared"`)
}

// A collection reads no longer than StatsTimeout, whatever the backend.
func TestStatsTimeoutBoundsCollection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		handled := captureOTelErrors(t)
		m, reader := newMetrics(t, concurryotel.Options{StatsTimeout: 3 * time.Second})
		b := observetest.NewFaultyBackend(backend.Faults{}, 0)
		b.Hang.Store(true)
		set, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conns", Capacity: 4}},
			concurry.WithName("stuck"), concurry.WithBackend(b))
		require.NoError(t, err)
		defer set.Close()
		require.NoError(t, m.Register(set, concurryotel.WithBackend(b)))
		start := time.Now()
		got := collect(t, reader)
		assert.Equal(t, 3*time.Second, time.Since(start))
		assert.Equal(t, 1.0, got["concurry.stats.errors{backend=observetest,set.name=stuck}"])
		require.Len(t, handled.errs, 1)
		assert.ErrorIs(t, handled.errs[0], context.DeadlineExceeded)
	})
}

// An error handler that panics or calls runtime.Goexit fails neither the
// collection nor the count of the error it was told.
func TestMisbehavingErrorHandlerIsContained(t *testing.T) {
	prev := otel.GetErrorHandler()
	defer otel.SetErrorHandler(prev)
	for _, goexit := range []bool{false, true} {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {
			if goexit {
				runtime.Goexit()
			}
			panic("handler bug")
		}))
		m, reader := newMetrics(t, concurryotel.Options{})
		b := observetest.NewFaultyBackend(backend.Faults{}, 0)
		b.Unread.Store(true)
		set, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conns", Capacity: 4}},
			concurry.WithName("shared"), concurry.WithBackend(b))
		require.NoError(t, err)
		require.NoError(t, m.Register(set, concurryotel.WithBackend(b)))
		assert.Equal(t, 1.0, collect(t, reader)["concurry.stats.errors{backend=observetest,set.name=shared}"], "goexit %v", goexit)
		require.NoError(t, set.Close())
	}
}
