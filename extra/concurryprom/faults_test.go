package concurryprom_test

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/extra/concurryprom"
	"github.com/concurry/concurry/internal/observe/observetest"
)

// logged collects the records of a slog.Logger.
type logged struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logged) Enabled(context.Context, slog.Level) bool { return true }
func (l *logged) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r)
	return nil
}
func (l *logged) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logged) WithGroup(string) slog.Handler      { return l }

// errOf returns the "err" attribute of r.
func errOf(r slog.Record) error {
	var err error
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			err, _ = a.Value.Any().(error)
		}
		return true
	})
	return err
}

func TestFaultsAreCountedAndStatsErrorsReported(t *testing.T) {
	log := &logged{}
	c, h := newCollector(t, concurryprom.Options{Logger: slog.New(log)})
	b := observetest.NewFaultyBackend(backend.Faults{RenewFailures: 3, LeasesLost: 1}, 2)
	set, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conns", Capacity: 4}},
		concurry.WithName("shared"), concurry.WithBackend(b), concurry.WithHooks(c.Hooks()))
	require.NoError(t, err)
	defer set.Close()
	require.NoError(t, c.Register(set, concurryprom.WithBackend(b)))

	a, err := set.TryAcquire(context.Background(), nil)
	require.NoError(t, err)
	b.Lost.Store(true)
	require.ErrorIs(t, a.Update(concurry.Amounts{"conns": 1}), concurry.ErrLeaseLost)
	require.ErrorIs(t, a.Release(), concurry.ErrLeaseLost)

	const shared = "backend=observetest,set=shared" // the backend's package
	assert.Equal(t, map[string]float64{
		"concurry_lease_lost_errors_total{" + shared + "}":                                       1,
		"concurry_degraded_decisions_total{" + shared + "}":                                      2,
		"concurry_lease_renewal_failures_total{" + shared + "}":                                  3,
		"concurry_leases_lost_total{" + shared + "}":                                             1,
		"concurry_limit_available{algorithm=semaphore,backend=observetest,key=conns,set=shared}": 4,
	}, only(scrape(t, h), "concurry_lease", "concurry_degraded", "concurry_limit_available", "concurry_stats"))
	assert.Empty(t, log.records)

	b.Unread.Store(true)
	assert.Equal(t, map[string]float64{
		"concurry_stats_errors_total{" + shared + "}":           1,
		"concurry_lease_lost_errors_total{" + shared + "}":      1,
		"concurry_degraded_decisions_total{" + shared + "}":     2,
		"concurry_lease_renewal_failures_total{" + shared + "}": 3,
		"concurry_leases_lost_total{" + shared + "}":            1,
	}, only(scrape(t, h), "concurry_lease", "concurry_degraded", "concurry_limit_", "concurry_stats"),
		"the counters Stats still reports are sent; the gauges are not, and the scrape succeeds")
	require.Len(t, log.records, 1)
	assert.Equal(t, slog.LevelWarn, log.records[0].Level)
	assert.ErrorIs(t, errOf(log.records[0]), concurry.ErrBackendUnavailable)
}

// A scrape reads no longer than StatsTimeout, whatever the backend.
func TestStatsTimeoutBoundsCollection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, h := newCollector(t, concurryprom.Options{StatsTimeout: 3 * time.Second})
		b := observetest.NewFaultyBackend(backend.Faults{}, 0)
		b.Hang.Store(true)
		set, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conns", Capacity: 4}},
			concurry.WithName("stuck"), concurry.WithBackend(b))
		require.NoError(t, err)
		defer set.Close()
		require.NoError(t, c.Register(set, concurryprom.WithBackend(b)))
		start := time.Now()
		got := scrape(t, h)
		assert.Equal(t, 3*time.Second, time.Since(start))
		assert.Equal(t, 1.0, got["concurry_stats_errors_total{backend=observetest,set=stuck}"])
	})
}

// misbehaving is a slog handler that panics or ends its goroutine.
type misbehaving struct {
	logged
	goexit bool
}

func (m *misbehaving) Handle(context.Context, slog.Record) error {
	if m.goexit {
		runtime.Goexit()
	}
	panic("logger bug")
}

// A logger that panics or calls runtime.Goexit fails neither the scrape nor
// the count of the error it was told.
func TestMisbehavingLoggerIsContained(t *testing.T) {
	for _, goexit := range []bool{false, true} {
		c, h := newCollector(t, concurryprom.Options{Logger: slog.New(&misbehaving{goexit: goexit})})
		b := observetest.NewFaultyBackend(backend.Faults{}, 0)
		b.Unread.Store(true)
		set, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conns", Capacity: 4}},
			concurry.WithName("shared"), concurry.WithBackend(b))
		require.NoError(t, err)
		require.NoError(t, c.Register(set, concurryprom.WithBackend(b)))
		assert.Equal(t, 1.0, scrape(t, h)["concurry_stats_errors_total{backend=observetest,set=shared}"], "goexit %v", goexit)
		require.NoError(t, set.Close())
	}
}
