package concurryotel

import (
	"context"
	"fmt"
	"github.com/concurry/concurry/internal/observe"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/concurry/concurry"
)

// observe is the collection callback: it reads the Stats of every
// registered observe.Source, outside the registry's lock, and observes the gauges.
// A failed read is counted in concurry.stats.errors and handed to otel.Handle;
// it is not returned, because a reader drops the whole collection of a
// callback that fails.
func (m *Metrics) observe(ctx context.Context, o metric.Observer) error {
	ctx, cancel := context.WithTimeout(ctx, m.statsTimeout)
	defer cancel()
	sets, pools, keyed := m.reg.Snapshot()
	seen := make(map[*concurry.LimitSet]bool, len(sets))
	for _, s := range sets {
		seen[s.Set] = true
		st, err := s.Set.Stats(ctx)
		m.observeSet(ctx, o, s.Set.Name(), s.Backend, st, err)
	}
	for _, p := range pools {
		m.observePool(ctx, o, p, seen)
	}
	for _, k := range keyed {
		attrs := metric.WithAttributes(attribute.String(AttrSet, k.Name), attribute.String(AttrBackend, k.Backend))
		o.ObserveInt64(m.identities, int64(k.Keyed.Len()), attrs)
	}
	return nil
}

// observePool observes the dispatch counts of p and the gauges of its sets
// not in seen. When the pool's Stats fail, it counts the failure and
// observes each set on its own, so that one failing set hides no other.
func (m *Metrics) observePool(ctx context.Context, o metric.Observer, p observe.PoolSource, seen map[*concurry.LimitSet]bool) {
	ps, err := p.Pool.Stats(ctx)
	if err != nil {
		m.statsFailed(ctx, attribute.String(AttrPool, p.Name), attribute.String(AttrBackend, p.Backend))
		handle(fmt.Errorf("concurry: stats of pool %q: %w", p.Name, err))
		for i := range p.Pool.Len() {
			ls := p.Pool.At(i)
			if !seen[ls] {
				seen[ls] = true
				st, err := ls.Stats(ctx)
				m.observeSet(ctx, o, ls.Name(), p.Backend, st, err)
			}
		}
		return
	}
	for i, st := range ps.Sets {
		ls := p.Pool.At(i)
		o.ObserveInt64(m.dispatched, ps.Dispatched[i], metric.WithAttributes(
			attribute.String(AttrPool, p.Name), attribute.Int(AttrPoolIndex, i), attribute.String(AttrSet, ls.Name())))
		if !seen[ls] {
			seen[ls] = true
			m.observeSet(ctx, o, ls.Name(), p.Backend, st, nil)
		}
	}
}

// observeSet observes the gauges of one set from its stats st, read with
// the error err. On an error it observes only the counters Stats still
// reports (degraded decisions, renewal failures, lost leases).
func (m *Metrics) observeSet(ctx context.Context, o metric.Observer, name, backend string, st concurry.Stats, err error) {
	set := []attribute.KeyValue{attribute.String(AttrSet, name), attribute.String(AttrBackend, backend)}
	if err != nil {
		m.statsFailed(ctx, set...)
		handle(fmt.Errorf("concurry: stats of set %q: %w", name, err))
	}
	setAttrs := metric.WithAttributes(set...)
	o.ObserveInt64(m.degraded, st.Degraded, setAttrs)
	o.ObserveInt64(m.renewFailures, st.RenewFailures, setAttrs)
	o.ObserveInt64(m.leasesLost, st.LeasesLost, setAttrs)
	if err != nil {
		return
	}
	for _, l := range st.Limits {
		kv := append(set[:2:2], attribute.String(AttrKey, l.Key), attribute.String(AttrAlgorithm, observe.StatsAlgorithm(l)))
		if l.Kind != concurry.KindResource {
			kv = append(kv, attribute.String(AttrWindow, l.Window.String()))
		}
		attrs := metric.WithAttributeSet(attribute.NewSet(kv...))
		o.ObserveInt64(m.available, l.Available, attrs)
		o.ObserveInt64(m.inUse, l.InUse, attrs)
		o.ObserveInt64(m.debt, l.Debt, attrs)
		o.ObserveInt64(m.capacity, l.Capacity, attrs)
		o.ObserveFloat64(m.utilization, l.Utilization, attrs)
	}
}

func (m *Metrics) statsFailed(ctx context.Context, attrs ...attribute.KeyValue) {
	m.statsErrors.Add(ctx, 1, metric.WithAttributes(attrs...))
}

// handle hands err to otel.Handle, whose handler may be the user's: it runs
// in a goroutine of its own, so that a panic or a runtime.Goexit in it ends
// only that goroutine, and the collection goes on.
func handle(err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		otel.Handle(err)
	}()
	<-done
}
