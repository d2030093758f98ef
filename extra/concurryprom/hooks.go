package concurryprom

import (
	"github.com/concurry/concurry/internal/observe"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/concurry/concurry"
)

// Hooks returns hooks to give to concurry.WithHooks of a LimitSet. They
// record each decision of the set into concurry_acquisitions_total,
// concurry_wait_seconds, concurry_refunded_units_total,
// concurry_overage_units_total, concurry_feedback_total and
// concurry_lease_lost_errors_total, labelled with the set's name
// (concurry.WithName) and backend (registered with WithBackend, else
// Options.Backend). One Hooks value may serve any number of sets. Recording
// allocates nothing once a series has been seen (up to Options.MaxSeries of
// them).
//
// Give a LimitPool PoolHooks, and the Hooks to its sets: a pool's own hooks
// see each of its grants besides the granting set's, so Hooks given to a
// pool would count those grants twice (they ignore the pool's refusals and
// waits, which name no set). Give a Keyed KeyedHooks, so that its
// identities share one series instead of making one each.
func (c *Collector) Hooks() concurry.Hooks {
	return (&setRecorder{c: c}).hooks()
}

// KeyedHooks returns hooks to give to KeyedOptions.Hooks. They record what
// Hooks records, with name (best KeyedOptions.Name) as the set label of
// every identity's set and the backend WithBackend names, so that the
// series do not multiply with the identities.
func (c *Collector) KeyedHooks(name string, opts ...RegisterOption) *concurry.Hooks {
	s := newSource(c.reg, name, opts)
	h := (&setRecorder{c: c, fixed: true, name: s.Name, backend: s.Backend}).hooks()
	return &h
}

// PoolHooks returns hooks to give to concurry.WithHooks of a LimitPool.
// They record the pool's decisions — one per acquisition, whichever set
// granted it — into concurry_pool_acquisitions_total and
// concurry_pool_wait_seconds, with name as the pool label.
func (c *Collector) PoolHooks(name string) concurry.Hooks {
	r := &poolRecorder{c: c, name: name}
	return concurry.Hooks{Granted: r.granted, Refused: r.refused, WaitDone: r.waitDone}
}

// counter returns the child of vec for the label values of k.
func (c *Collector) counter(vec *prometheus.CounterVec, k seriesKey, values func(seriesKey) []string) prometheus.Counter {
	k.vec = vec.MetricVec
	return c.counters.get(k, func(k seriesKey) prometheus.Counter { return vec.WithLabelValues(values(k)...) })
}

// observer returns the child of vec for the label values of k.
func (c *Collector) observer(vec *prometheus.HistogramVec, k seriesKey, values func(seriesKey) []string) prometheus.Observer {
	k.vec = vec.MetricVec
	return c.observers.get(k, func(k seriesKey) prometheus.Observer { return vec.WithLabelValues(values(k)...) })
}

// The label values of each kind of vector, in the order of its labels.
func decideValues(k seriesKey) []string {
	return []string{k.set, k.backend, k.outcome, k.key, k.algorithm}
}
func settleValues(k seriesKey) []string { return []string{k.set, k.backend, k.key, k.algorithm} }
func kindValues(k seriesKey) []string   { return []string{k.set, k.backend, k.kind, k.key, k.algorithm} }
func setValues(k seriesKey) []string    { return []string{k.set, k.backend} }
func poolValues(k seriesKey) []string   { return []string{k.pool, k.outcome} }

// setRecorder records the decisions of sets.
type setRecorder struct {
	c             *Collector
	fixed         bool   // every set is labelled name and backend (a Keyed's)
	name, backend string // when fixed
}

func (r *setRecorder) hooks() concurry.Hooks {
	return concurry.Hooks{
		Granted: r.granted, Refused: r.refused, WaitDone: r.waitDone,
		Settled: r.settled, Feedback: r.feedbackApplied, LeaseLost: r.leaseLost,
	}
}

// key returns the series key of ls with key's labels (empty when ls has no
// such key, so that a stray key cannot make series) and outcome.
func (r *setRecorder) key(ls *concurry.LimitSet, key, outcome string) seriesKey {
	k := seriesKey{set: r.name, backend: r.backend, key: key, algorithm: observe.AlgorithmOfKey(ls, key), outcome: outcome}
	if !r.fixed {
		k.set, k.backend = ls.Name(), r.c.reg.BackendOf(ls)
	}
	if k.algorithm == "" {
		k.key = ""
	}
	return k
}

func (r *setRecorder) granted(i concurry.GrantInfo) {
	if i.Set == nil {
		return
	}
	r.c.counter(r.c.acquisitions, r.key(i.Set, "", OutcomeGranted), decideValues).Inc()
}

func (r *setRecorder) refused(i concurry.RefusalInfo) {
	if i.Set == nil {
		return // a pool's own refusal: PoolHooks records it
	}
	r.c.counter(r.c.acquisitions, r.key(i.Set, i.Key, i.Cause.String()), decideValues).Inc()
}

func (r *setRecorder) waitDone(i concurry.WaitInfo) {
	if i.Set == nil {
		return // a pool's own wait: PoolHooks records it
	}
	r.c.observer(r.c.wait, r.key(i.Set, i.Key, observe.OutcomeOf(i.Err)), decideValues).Observe(i.Waited.Seconds())
}

func (r *setRecorder) settled(i concurry.SettleInfo) {
	if i.Set == nil {
		return
	}
	k := r.key(i.Set, i.Key, "")
	if i.Refunded > 0 {
		r.c.counter(r.c.refunded, k, settleValues).Add(float64(i.Refunded))
	}
	if i.Overage > 0 {
		r.c.counter(r.c.overage, k, settleValues).Add(float64(i.Overage))
	}
}

func (r *setRecorder) feedbackApplied(i concurry.FeedbackInfo) {
	if i.Set == nil {
		return
	}
	k := r.key(i.Set, i.Key, "")
	k.kind = "lower"
	if i.Pause {
		k.kind = "pause"
	}
	r.c.counter(r.c.feedback, k, kindValues).Inc()
}

func (r *setRecorder) leaseLost(i concurry.LeaseLostInfo) {
	if i.Set == nil {
		return
	}
	r.c.counter(r.c.leaseLost, r.key(i.Set, "", ""), setValues).Inc()
}

// poolRecorder records the decisions of a pool.
type poolRecorder struct {
	c    *Collector
	name string
}

func (r *poolRecorder) granted(concurry.GrantInfo) {
	r.c.counter(r.c.poolAcquisitions, seriesKey{pool: r.name, outcome: OutcomeGranted}, poolValues).Inc()
}

func (r *poolRecorder) refused(i concurry.RefusalInfo) {
	r.c.counter(r.c.poolAcquisitions, seriesKey{pool: r.name, outcome: i.Cause.String()}, poolValues).Inc()
}

func (r *poolRecorder) waitDone(i concurry.WaitInfo) {
	r.c.observer(r.c.poolWait, seriesKey{pool: r.name, outcome: observe.OutcomeOf(i.Err)}, poolValues).Observe(i.Waited.Seconds())
}
