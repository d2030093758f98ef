package concurryotel

import (
	"errors"
	"fmt"
	"github.com/concurry/concurry/internal/observe"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/concurry/concurry"
)

// ScopeName is the instrumentation scope of the meter New takes from its
// MeterProvider.
const ScopeName = "github.com/concurry/concurry/extra/concurryotel"

// DefaultWaitBuckets are the bucket boundaries, in seconds, of the wait
// histograms when Options.WaitBuckets is empty: from a millisecond to ten
// minutes.
var DefaultWaitBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600}

// Options configure New. The zero value of each field is its default.
type Options struct {
	// WaitBuckets are the explicit bucket boundaries, in seconds, of
	// concurry.wait.duration and concurry.pool.wait.duration; finite and
	// strictly increasing. Empty means DefaultWaitBuckets.
	WaitBuckets []float64
	// Backend is the concurry.backend attribute of sets registered without
	// WithBackend, or not registered at all. "" means "memory", the backend
	// of a set made without concurry.WithBackend.
	Backend string
	// StatsTimeout bounds how long one collection may spend reading the
	// Stats of the registered sources (a shared backend's Stats does I/O).
	// 0 means 5 seconds. A source not read in time is counted in
	// concurry.stats.errors and its gauges are left out of that collection.
	StatsTimeout time.Duration
	// MaxSeries bounds how many attribute sets the hooks keep prepared. A
	// series past the bound is still recorded, but its attributes are
	// built anew, allocating, on each call. 0 means 10,000.
	MaxSeries int
}

// Metrics records the decisions of concurry's limiters as OpenTelemetry
// metrics: [Metrics.Hooks] (and KeyedHooks, PoolHooks) count acquisitions,
// waits, refunds, overage, feedback and lost leases as they happen, and the
// sets, pools and Keyeds given to Register, RegisterPool and RegisterKeyed
// are read at each collection for the gauges. The package documentation
// lists every instrument.
//
// A Metrics is safe for concurrent use. Close stops the collection of the
// gauges; the hooks go on recording.
type Metrics struct {
	reg          *observe.Registry
	cache        *seriesCache
	statsTimeout time.Duration
	callback     metric.Registration
	closed       atomic.Bool

	acquisitions, refunded, overage, feedback, leaseLost, poolAcquisitions, statsErrors metric.Int64Counter
	wait, poolWait                                                                      metric.Float64Histogram

	available, inUse, debt, capacity, identities metric.Int64ObservableGauge
	utilization                                  metric.Float64ObservableGauge
	degraded, renewFailures, leasesLost          metric.Int64ObservableCounter
	dispatched                                   metric.Int64ObservableCounter
}

// New creates the instruments in a meter of mp (scope ScopeName) and
// registers the callback that observes the gauges. It fails with
// ErrInvalidOptions for invalid options, or with the meter's error.
func New(mp metric.MeterProvider, opts Options) (*Metrics, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if len(opts.WaitBuckets) == 0 {
		opts.WaitBuckets = DefaultWaitBuckets
	}
	opts.WaitBuckets = slices.Clone(opts.WaitBuckets) // the caller's slice may change later
	if opts.Backend == "" {
		opts.Backend = observe.DefaultBackend
	}
	if opts.StatsTimeout == 0 {
		opts.StatsTimeout = 5 * time.Second
	}
	if opts.MaxSeries == 0 {
		opts.MaxSeries = 10_000
	}
	m := &Metrics{reg: observe.NewRegistry(opts.Backend), cache: newSeriesCache(opts.MaxSeries), statsTimeout: opts.StatsTimeout}
	meter := mp.Meter(ScopeName)
	if err := m.newCounters(meter, opts.WaitBuckets); err != nil {
		return nil, err
	}
	if err := m.newObservables(meter); err != nil {
		return nil, err
	}
	var err error
	m.callback, err = meter.RegisterCallback(m.observe,
		m.available, m.inUse, m.debt, m.capacity, m.identities, m.utilization,
		m.degraded, m.renewFailures, m.leasesLost, m.dispatched)
	if err != nil {
		return nil, fmt.Errorf("concurry: registering the metrics callback: %w", err)
	}
	return m, nil
}

func (o *Options) check() error {
	for i, b := range o.WaitBuckets {
		if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && b <= o.WaitBuckets[i-1]) {
			return fmt.Errorf("%w: WaitBuckets %v are not finite and strictly increasing", ErrInvalidOptions, o.WaitBuckets)
		}
	}
	if o.StatsTimeout < 0 {
		return fmt.Errorf("%w: negative StatsTimeout %v", ErrInvalidOptions, o.StatsTimeout)
	}
	if o.MaxSeries < 0 {
		return fmt.Errorf("%w: negative MaxSeries %d", ErrInvalidOptions, o.MaxSeries)
	}
	return nil
}

// newCounters creates the instruments the hooks record into.
func (m *Metrics) newCounters(meter metric.Meter, buckets []float64) error {
	var errs [9]error
	m.acquisitions, errs[0] = meter.Int64Counter("concurry.acquisitions", metric.WithUnit("{acquisition}"),
		metric.WithDescription("Acquisitions decided by a limit set, by outcome: granted, or the cause of the refusal."))
	m.wait, errs[1] = meter.Float64Histogram("concurry.wait.duration", metric.WithUnit("s"),
		metric.WithDescription("How long requests waited, by the key that kept them waiting and the outcome of the wait."),
		metric.WithExplicitBucketBoundaries(buckets...))
	m.refunded, errs[2] = meter.Int64Counter("concurry.refunded", metric.WithUnit("{unit}"),
		metric.WithDescription("Units given back at release because they were granted but not used."))
	m.overage, errs[3] = meter.Int64Counter("concurry.overage", metric.WithUnit("{unit}"),
		metric.WithDescription("Units used beyond the grant, charged as debt at release."))
	m.feedback, errs[4] = meter.Int64Counter("concurry.feedback", metric.WithUnit("{feedback}"),
		metric.WithDescription("Upstream feedback applied to a set: pauses and lowerings."))
	m.leaseLost, errs[5] = meter.Int64Counter("concurry.lease.lost_errors", metric.WithUnit("{error}"),
		metric.WithDescription("Update and Release calls told that their holding ended before its release (ErrLeaseLost)."))
	m.poolAcquisitions, errs[6] = meter.Int64Counter("concurry.pool.acquisitions", metric.WithUnit("{acquisition}"),
		metric.WithDescription("Acquisitions decided by a limit pool, by outcome."))
	m.poolWait, errs[7] = meter.Float64Histogram("concurry.pool.wait.duration", metric.WithUnit("s"),
		metric.WithDescription("How long requests waited on a limit pool, by outcome."),
		metric.WithExplicitBucketBoundaries(buckets...))
	m.statsErrors, errs[8] = meter.Int64Counter("concurry.stats.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Stats reads of registered sets and pools that failed at collection."))
	if err := errors.Join(errs[:]...); err != nil {
		return fmt.Errorf("concurry: creating the metrics instruments: %w", err)
	}
	return nil
}

// newObservables creates the instruments the collection callback observes.
func (m *Metrics) newObservables(meter metric.Meter) error {
	var errs [10]error
	m.available, errs[0] = meter.Int64ObservableGauge("concurry.limit.available", metric.WithUnit("{unit}"),
		metric.WithDescription("Units of a limit that could be taken now."))
	m.inUse, errs[1] = meter.Int64ObservableGauge("concurry.limit.in_use", metric.WithUnit("{unit}"),
		metric.WithDescription("Units of a resource limit held now."))
	m.debt, errs[2] = meter.Int64ObservableGauge("concurry.limit.debt", metric.WithUnit("{unit}"),
		metric.WithDescription("Units of a rate limit charged beyond it (overage) and not yet refilled."))
	m.capacity, errs[3] = meter.Int64ObservableGauge("concurry.limit.capacity", metric.WithUnit("{unit}"),
		metric.WithDescription("The capacity of a limit."))
	m.utilization, errs[4] = meter.Float64ObservableGauge("concurry.limit.utilization", metric.WithUnit("1"),
		metric.WithDescription("The share of a limit's capacity not available now, 0 to 1."))
	m.identities, errs[5] = meter.Int64ObservableGauge("concurry.keyed.identities", metric.WithUnit("{identity}"),
		metric.WithDescription("Identities of a Keyed that have a set in this process now."))
	m.degraded, errs[6] = meter.Int64ObservableCounter("concurry.degraded.decisions", metric.WithUnit("{decision}"),
		metric.WithDescription("Decisions a shared backend made while its store was unreachable."))
	m.renewFailures, errs[7] = meter.Int64ObservableCounter("concurry.lease.renewal_failures", metric.WithUnit("{renewal}"),
		metric.WithDescription("Lease renewals of a set's holdings that failed."))
	m.leasesLost, errs[8] = meter.Int64ObservableCounter("concurry.lease.lost", metric.WithUnit("{lease}"),
		metric.WithDescription("Holdings of a set that ended before their release."))
	m.dispatched, errs[9] = meter.Int64ObservableCounter("concurry.pool.dispatched", metric.WithUnit("{acquisition}"),
		metric.WithDescription("Acquisitions a limit pool granted from each of its sets."))
	if err := errors.Join(errs[:]...); err != nil {
		return fmt.Errorf("concurry: creating the metrics instruments: %w", err)
	}
	return nil
}

// Register adds ls to the sets whose gauges are observed at each
// collection, with the attributes of its limits; WithBackend names its
// backend for them and for the hooks. Registering a set again replaces its
// options. It fails with ErrDuplicateName, registering nothing, when another
// registered set has ls's name. It panics when ls is nil.
func (m *Metrics) Register(ls *concurry.LimitSet, opts ...RegisterOption) error {
	if ls == nil {
		panic("concurry: Metrics.Register of a nil LimitSet")
	}
	return m.reg.AddSet(ls, newSource(m.reg, "", opts))
}

// RegisterPool adds p, under name (the concurry.pool.name attribute), to
// the sources observed at each collection: concurry.pool.dispatched per set,
// and the gauges of each of its sets that is not registered itself.
// WithBackend names the backend of those sets. It fails with
// ErrDuplicateName, registering nothing, when two of the sets, or one of
// them and another registered set, share a name. It panics when p is nil.
func (m *Metrics) RegisterPool(p *concurry.LimitPool, name string, opts ...RegisterOption) error {
	if p == nil {
		panic("concurry: Metrics.RegisterPool of a nil LimitPool")
	}
	return m.reg.AddPool(p, newSource(m.reg, name, opts))
}

// RegisterKeyed adds k, under name (its concurry.set.name attribute, best
// KeyedOptions.Name), to the sources observed at each collection:
// concurry.keyed.identities. It fails with ErrDuplicateName, registering
// nothing, when another registered Keyed has that name. It panics when k is
// nil.
func (m *Metrics) RegisterKeyed(k *concurry.Keyed, name string, opts ...RegisterOption) error {
	if k == nil {
		panic("concurry: Metrics.RegisterKeyed of a nil Keyed")
	}
	return m.reg.AddKeyed(k, newSource(m.reg, name, opts))
}

// Unregister removes a *concurry.LimitSet, *concurry.LimitPool or
// *concurry.Keyed registered before, and reports whether it was registered.
// Series already exported keep their last values in the backend of the
// metrics, as OpenTelemetry does for any series no longer observed.
func (m *Metrics) Unregister(source any) bool { return m.reg.Remove(source) }

// Close unregisters the collection callback: the gauges are no longer
// observed. The hooks go on recording. Close is idempotent.
func (m *Metrics) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	if err := m.callback.Unregister(); err != nil {
		return fmt.Errorf("concurry: unregistering the metrics callback: %w", err)
	}
	return nil
}
