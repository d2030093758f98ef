package concurryprom

import (
	"fmt"
	"github.com/concurry/concurry/internal/observe"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/concurry/concurry"
)

// DefaultWaitBuckets are the buckets, in seconds, of the wait histograms
// when Options.WaitBuckets is empty: from a millisecond to ten minutes.
var DefaultWaitBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600}

// Options configure NewCollector. The zero value of each field is its
// default.
type Options struct {
	// WaitBuckets are the upper bounds, in seconds, of the buckets of
	// concurry_wait_seconds and concurry_pool_wait_seconds; finite and
	// strictly increasing. Empty means DefaultWaitBuckets.
	WaitBuckets []float64
	// Backend is the backend label of sets registered without WithBackend,
	// or not registered at all. "" means "memory", the backend of a set
	// made without concurry.WithBackend.
	Backend string
	// StatsTimeout bounds how long one Collect may spend reading the Stats
	// of the registered sources (a shared backend's Stats does I/O). 0
	// means 5 seconds. A source not read in time is counted in
	// concurry_stats_errors_total and its gauges are left out of that
	// scrape.
	StatsTimeout time.Duration
	// MaxSeries bounds how many series the hooks keep at hand. A series
	// past the bound is still recorded, but looked up in its vector,
	// allocating, on each call. 0 means 10,000.
	MaxSeries int
	// Logger receives a warning for each failed Stats read, besides its
	// count in concurry_stats_errors_total. nil means none.
	Logger *slog.Logger
}

// Collector is a prometheus.Collector of the decisions of concurry's
// limiters and their state: [Collector.Hooks] (and KeyedHooks, PoolHooks)
// count acquisitions, waits, refunds, overage, feedback and lost leases as
// they happen, and the sets, pools and Keyeds given to Register,
// RegisterPool and RegisterKeyed are read at each scrape for the gauges.
// Register the Collector itself with a prometheus.Registerer. The package
// documentation lists every metric.
//
// A Collector is safe for concurrent use.
type Collector struct {
	reg          *observe.Registry
	counters     *seriesCache[prometheus.Counter]
	observers    *seriesCache[prometheus.Observer]
	statsTimeout time.Duration
	logger       *slog.Logger

	acquisitions, refunded, overage, feedback, leaseLost, poolAcquisitions, statsErrors *prometheus.CounterVec
	wait, poolWait                                                                      *prometheus.HistogramVec

	available, inUse, debt, capacity, utilization, identities *prometheus.Desc
	degraded, renewFailures, leasesLost, dispatched           *prometheus.Desc
}

var (
	setLabels    = []string{LabelSet, LabelBackend}
	limitLabels  = []string{LabelSet, LabelBackend, LabelKey, LabelAlgorithm, LabelWindow}
	decideLabels = []string{LabelSet, LabelBackend, LabelOutcome, LabelKey, LabelAlgorithm}
	settleLabels = []string{LabelSet, LabelBackend, LabelKey, LabelAlgorithm}
	poolLabels   = []string{LabelPool, LabelOutcome}
)

// NewCollector returns a Collector. It fails with ErrInvalidOptions for
// invalid options.
func NewCollector(opts Options) (*Collector, error) {
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
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Collector{
		reg:          observe.NewRegistry(opts.Backend),
		counters:     newSeriesCache[prometheus.Counter](opts.MaxSeries),
		observers:    newSeriesCache[prometheus.Observer](opts.MaxSeries),
		statsTimeout: opts.StatsTimeout,
		logger:       opts.Logger,
	}
	c.newVectors(opts.WaitBuckets)
	c.newDescs()
	return c, nil
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

// newVectors makes the metrics the hooks record into.
func (c *Collector) newVectors(buckets []float64) {
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	c.acquisitions = counter("concurry_acquisitions_total",
		"Acquisitions decided by a limit set, by outcome: granted, or the cause of the refusal.", decideLabels)
	c.wait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "concurry_wait_seconds", Buckets: buckets,
		Help: "How long requests waited, by the key that kept them waiting and the outcome of the wait."}, decideLabels)
	c.refunded = counter("concurry_refunded_units_total",
		"Units given back at release because they were granted but not used.", settleLabels)
	c.overage = counter("concurry_overage_units_total",
		"Units used beyond the grant, charged as debt at release.", settleLabels)
	c.feedback = counter("concurry_feedback_total", "Upstream feedback applied to a set: pauses and lowerings.",
		[]string{LabelSet, LabelBackend, LabelKind, LabelKey, LabelAlgorithm})
	c.leaseLost = counter("concurry_lease_lost_errors_total",
		"Update and Release calls told that their holding ended before its release (ErrLeaseLost).", setLabels)
	c.poolAcquisitions = counter("concurry_pool_acquisitions_total", "Acquisitions decided by a limit pool, by outcome.", poolLabels)
	c.poolWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "concurry_pool_wait_seconds", Buckets: buckets,
		Help: "How long requests waited on a limit pool, by outcome."}, poolLabels)
	c.statsErrors = counter("concurry_stats_errors_total",
		"Stats reads of registered sets (set) and pools (pool) that failed at a scrape.", []string{LabelSet, LabelPool, LabelBackend})
}

// newDescs makes the descriptions of the metrics read from Stats.
func (c *Collector) newDescs() {
	desc := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	c.available = desc("concurry_limit_available", "Units of a limit that could be taken now.", limitLabels)
	c.inUse = desc("concurry_limit_in_use", "Units of a resource limit held now.", limitLabels)
	c.debt = desc("concurry_limit_debt", "Units of a rate limit charged beyond it (overage) and not yet refilled.", limitLabels)
	c.capacity = desc("concurry_limit_capacity", "The capacity of a limit.", limitLabels)
	c.utilization = desc("concurry_limit_utilization_ratio", "The share of a limit's capacity not available now, 0 to 1.", limitLabels)
	c.identities = desc("concurry_keyed_identities", "Identities of a Keyed that have a set in this process now.", setLabels)
	c.degraded = desc("concurry_degraded_decisions_total", "Decisions a shared backend made while its store was unreachable.", setLabels)
	c.renewFailures = desc("concurry_lease_renewal_failures_total", "Lease renewals of a set's holdings that failed.", setLabels)
	c.leasesLost = desc("concurry_leases_lost_total", "Holdings of a set that ended before their release.", setLabels)
	c.dispatched = desc("concurry_pool_dispatched_total", "Acquisitions a limit pool granted from each of its sets.",
		[]string{LabelPool, LabelIndex, LabelSet})
}

func (c *Collector) vectors() []prometheus.Collector {
	return []prometheus.Collector{c.acquisitions, c.wait, c.refunded, c.overage, c.feedback, c.leaseLost,
		c.poolAcquisitions, c.poolWait, c.statsErrors}
}

// Describe sends the description of every metric of the Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range c.vectors() {
		v.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{c.available, c.inUse, c.debt, c.capacity, c.utilization, c.identities,
		c.degraded, c.renewFailures, c.leasesLost, c.dispatched} {
		ch <- d
	}
}

// Register adds ls to the sets whose gauges are read at each scrape, with
// the labels of its limits; WithBackend names its backend for them and for
// the hooks. Registering a set again replaces its options. It fails with
// ErrDuplicateName, registering nothing, when another registered set has
// ls's name. It panics when ls is nil.
func (c *Collector) Register(ls *concurry.LimitSet, opts ...RegisterOption) error {
	if ls == nil {
		panic("concurry: Collector.Register of a nil LimitSet")
	}
	return c.reg.AddSet(ls, newSource(c.reg, "", opts))
}

// RegisterPool adds p, under name (the pool label), to the sources read at
// each scrape: concurry_pool_dispatched_total per set, and the gauges of
// each of its sets that is not registered itself. WithBackend names the
// backend of those sets. It fails with ErrDuplicateName, registering
// nothing, when two of the sets, or one of them and another registered set,
// share a name. It panics when p is nil.
func (c *Collector) RegisterPool(p *concurry.LimitPool, name string, opts ...RegisterOption) error {
	if p == nil {
		panic("concurry: Collector.RegisterPool of a nil LimitPool")
	}
	return c.reg.AddPool(p, newSource(c.reg, name, opts))
}

// RegisterKeyed adds k, under name (its set label, best KeyedOptions.Name),
// to the sources read at each scrape: concurry_keyed_identities. It fails
// with ErrDuplicateName, registering nothing, when another registered Keyed
// has that name. It panics when k is nil.
func (c *Collector) RegisterKeyed(k *concurry.Keyed, name string, opts ...RegisterOption) error {
	if k == nil {
		panic("concurry: Collector.RegisterKeyed of a nil Keyed")
	}
	return c.reg.AddKeyed(k, newSource(c.reg, name, opts))
}

// Unregister removes a *concurry.LimitSet, *concurry.LimitPool or
// *concurry.Keyed registered before, and reports whether it was registered.
// Its gauges are no longer read; what the hooks recorded stays.
func (c *Collector) Unregister(source any) bool { return c.reg.Remove(source) }
