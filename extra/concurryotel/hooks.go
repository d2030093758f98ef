package concurryotel

import (
	"context"
	"github.com/concurry/concurry/internal/observe"

	"github.com/concurry/concurry"
)

// Hooks returns hooks to give to concurry.WithHooks of a LimitSet. They
// record each decision of the set into concurry.acquisitions,
// concurry.wait.duration, concurry.refunded, concurry.overage,
// concurry.feedback and concurry.lease.lost_errors, with the set's name
// (concurry.WithName) and backend (registered with WithBackend, else
// Options.Backend) as attributes. One Hooks value may serve any number of
// sets. Recording allocates nothing once a series has been seen (up to
// Options.MaxSeries of them).
//
// Give a LimitPool PoolHooks, and the Hooks to its sets: a pool's own hooks
// see each of its grants besides the granting set's, so Hooks given to a
// pool would count those grants twice (they ignore the pool's refusals and
// waits, which name no set). Give a Keyed KeyedHooks, so that its
// identities share one series instead of making one each.
func (m *Metrics) Hooks() concurry.Hooks {
	return (&setRecorder{m: m}).hooks()
}

// KeyedHooks returns hooks to give to KeyedOptions.Hooks. They record what
// Hooks records, with name (best KeyedOptions.Name) as the
// concurry.set.name of every identity's set and the backend WithBackend
// names, so that the series do not multiply with the identities.
func (m *Metrics) KeyedHooks(name string, opts ...RegisterOption) *concurry.Hooks {
	s := newSource(m.reg, name, opts)
	h := (&setRecorder{m: m, fixed: true, name: s.Name, backend: s.Backend}).hooks()
	return &h
}

// PoolHooks returns hooks to give to concurry.WithHooks of a LimitPool.
// They record the pool's decisions — one per acquisition, whichever set
// granted it — into concurry.pool.acquisitions and
// concurry.pool.wait.duration, with name as concurry.pool.name.
func (m *Metrics) PoolHooks(name string) concurry.Hooks {
	r := &poolRecorder{m: m, name: name}
	return concurry.Hooks{Granted: r.granted, Refused: r.refused, WaitDone: r.waitDone}
}

// setRecorder records the decisions of sets.
type setRecorder struct {
	m             *Metrics
	fixed         bool   // every set is labelled name and backend (a Keyed's)
	name, backend string // when fixed
}

func (r *setRecorder) hooks() concurry.Hooks {
	return concurry.Hooks{
		Granted: r.granted, Refused: r.refused, WaitDone: r.waitDone,
		Settled: r.settled, Feedback: r.feedbackApplied, LeaseLost: r.leaseLost,
	}
}

// labels returns the set and backend attributes of ls.
func (r *setRecorder) labels(ls *concurry.LimitSet) (set, backend string) {
	if r.fixed {
		return r.name, r.backend
	}
	return ls.Name(), r.m.reg.BackendOf(ls)
}

// series returns the series of ls with the key attributes of key (none when
// ls has no such key, so that a stray key cannot make series) and outcome.
func (r *setRecorder) series(ls *concurry.LimitSet, key, outcome, feedback string) *series {
	set, backend := r.labels(ls)
	alg := observe.AlgorithmOfKey(ls, key)
	if alg == "" {
		key = ""
	}
	return r.m.cache.get(seriesKey{set: set, backend: backend, key: key, algorithm: alg, outcome: outcome, feedback: feedback})
}

func (r *setRecorder) granted(i concurry.GrantInfo) {
	if i.Set == nil {
		return
	}
	r.m.acquisitions.Add(context.Background(), 1, r.series(i.Set, "", OutcomeGranted, "").add...)
}

func (r *setRecorder) refused(i concurry.RefusalInfo) {
	if i.Set == nil {
		return // a pool's own refusal: PoolHooks records it
	}
	r.m.acquisitions.Add(context.Background(), 1, r.series(i.Set, i.Key, i.Cause.String(), "").add...)
}

func (r *setRecorder) waitDone(i concurry.WaitInfo) {
	if i.Set == nil {
		return // a pool's own wait: PoolHooks records it
	}
	r.m.wait.Record(context.Background(), i.Waited.Seconds(), r.series(i.Set, i.Key, observe.OutcomeOf(i.Err), "").rec...)
}

func (r *setRecorder) settled(i concurry.SettleInfo) {
	if i.Set == nil {
		return
	}
	s := r.series(i.Set, i.Key, "", "")
	if i.Refunded > 0 {
		r.m.refunded.Add(context.Background(), i.Refunded, s.add...)
	}
	if i.Overage > 0 {
		r.m.overage.Add(context.Background(), i.Overage, s.add...)
	}
}

func (r *setRecorder) feedbackApplied(i concurry.FeedbackInfo) {
	if i.Set == nil {
		return
	}
	kind := "lower"
	if i.Pause {
		kind = "pause"
	}
	r.m.feedback.Add(context.Background(), 1, r.series(i.Set, i.Key, "", kind).add...)
}

func (r *setRecorder) leaseLost(i concurry.LeaseLostInfo) {
	if i.Set == nil {
		return
	}
	r.m.leaseLost.Add(context.Background(), 1, r.series(i.Set, "", "", "").add...)
}

// poolRecorder records the decisions of a pool.
type poolRecorder struct {
	m    *Metrics
	name string
}

func (r *poolRecorder) series(outcome string) *series {
	return r.m.cache.get(seriesKey{pool: r.name, outcome: outcome})
}

func (r *poolRecorder) granted(concurry.GrantInfo) {
	r.m.poolAcquisitions.Add(context.Background(), 1, r.series(OutcomeGranted).add...)
}

func (r *poolRecorder) refused(i concurry.RefusalInfo) {
	r.m.poolAcquisitions.Add(context.Background(), 1, r.series(i.Cause.String()).add...)
}

func (r *poolRecorder) waitDone(i concurry.WaitInfo) {
	r.m.poolWait.Record(context.Background(), i.Waited.Seconds(), r.series(observe.OutcomeOf(i.Err)).rec...)
}
