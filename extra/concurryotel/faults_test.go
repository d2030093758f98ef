package concurryotel_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
	"github.com/concurry/concurry/extra/concurryotel"
)

// faultyBackend keeps its sets in memory, and fails as a shared backend can
// when told to: holdings lost, Stats unreadable, and fault counts to report.
type faultyBackend struct {
	mem      *memory.Backend
	lost     atomic.Bool // holdings are lost
	unread   atomic.Bool // Stats fail
	hang     atomic.Bool // Stats wait for their ctx to end
	faults   backend.Faults
	degraded int64
}

type faultySet struct {
	backend.Set
	b *faultyBackend
}

var errLost = fmt.Errorf("%w: the test dropped it", backend.ErrLeaseLost)

func (b *faultyBackend) Open(ctx context.Context, _ string, specs []backend.Spec) (backend.Set, error) {
	s, err := b.mem.Open(ctx, "", specs)
	return &faultySet{Set: s, b: b}, err
}

func (s *faultySet) CheckLease(backend.Lease) error {
	if s.b.lost.Load() {
		return errLost
	}
	return nil
}

func (s *faultySet) Settle(ctx context.Context, l backend.Lease, held, delta []int64, final bool, refunded []int64) error {
	err := s.Set.Settle(ctx, l, held, delta, final, refunded)
	if s.b.lost.Load() {
		err = errors.Join(err, errLost)
	}
	return err
}

func (s *faultySet) Stats(ctx context.Context) ([]backend.SpecStats, error) {
	if s.b.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if s.b.unread.Load() {
		return nil, fmt.Errorf("%w: the test made it so", backend.ErrBackendUnavailable)
	}
	return s.Set.Stats(ctx)
}

func (s *faultySet) Faults() backend.Faults { return s.b.faults }
func (s *faultySet) Degraded() int64        { return s.b.degraded }

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
	b := &faultyBackend{mem: memory.New(), faults: backend.Faults{RenewFailures: 3, LeasesLost: 1}, degraded: 2}
	set, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conns", Capacity: 4}},
		concurry.WithName("shared"), concurry.WithBackend(b), concurry.WithHooks(m.Hooks()))
	require.NoError(t, err)
	defer set.Close()
	require.NoError(t, m.Register(set, concurryotel.WithBackend(b)))

	a, err := set.TryAcquire(context.Background(), nil)
	require.NoError(t, err)
	b.lost.Store(true)
	require.ErrorIs(t, a.Update(concurry.Amounts{"conns": 1}), concurry.ErrLeaseLost)
	require.ErrorIs(t, a.Release(), concurry.ErrLeaseLost)

	const shared = "backend=concurryotel_test,set.name=shared" // the backend's package
	got := collect(t, reader)
	assert.Equal(t, map[string]float64{
		"concurry.lease.lost_errors{" + shared + "}":      1, // once per acquisition
		"concurry.degraded.decisions{" + shared + "}":     2,
		"concurry.lease.renewal_failures{" + shared + "}": 3,
		"concurry.lease.lost{" + shared + "}":             1,
		"concurry.limit.available{backend=concurryotel_test,limit.algorithm=semaphore,limit.key=conns,set.name=shared}": 4,
	}, only(got, "concurry.lease", "concurry.degraded", "concurry.limit.available", "concurry.stats"))
	assert.Empty(t, handled.errs)

	b.unread.Store(true)
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
		b := &faultyBackend{mem: memory.New()}
		b.hang.Store(true)
		set, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conns", Capacity: 4}},
			concurry.WithName("stuck"), concurry.WithBackend(b))
		require.NoError(t, err)
		defer set.Close()
		require.NoError(t, m.Register(set, concurryotel.WithBackend(b)))
		start := time.Now()
		got := collect(t, reader)
		assert.Equal(t, 3*time.Second, time.Since(start))
		assert.Equal(t, 1.0, got["concurry.stats.errors{backend=concurryotel_test,set.name=stuck}"])
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
		b := &faultyBackend{mem: memory.New()}
		b.unread.Store(true)
		set, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conns", Capacity: 4}},
			concurry.WithName("shared"), concurry.WithBackend(b))
		require.NoError(t, err)
		require.NoError(t, m.Register(set, concurryotel.WithBackend(b)))
		assert.Equal(t, 1.0, collect(t, reader)["concurry.stats.errors{backend=concurryotel_test,set.name=shared}"], "goexit %v", goexit)
		require.NoError(t, set.Close())
	}
}
