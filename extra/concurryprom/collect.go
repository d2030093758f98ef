package concurryprom

import (
	"context"
	"github.com/concurry/concurry/internal/observe"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/concurry/concurry"
)

// Collect reads the Stats of every registered observe.Source, outside the
// registry's lock and within Options.StatsTimeout, and sends their metrics
// and those the hooks recorded. A failed read is counted in
// concurry_stats_errors_total and logged; it does not fail the scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.statsTimeout)
	defer cancel()
	sets, pools, keyed := c.reg.Snapshot()
	seen := make(map[*concurry.LimitSet]bool, len(sets))
	for _, s := range sets {
		seen[s.Set] = true
		st, err := s.Set.Stats(ctx)
		c.collectSet(ch, s.Set.Name(), s.Backend, st, err)
	}
	for _, p := range pools {
		c.collectPool(ctx, ch, p, seen)
	}
	for _, k := range keyed {
		ch <- prometheus.MustNewConstMetric(c.identities, prometheus.GaugeValue, float64(k.Keyed.Len()), k.Name, k.Backend)
	}
	for _, v := range c.vectors() {
		v.Collect(ch)
	}
}

// collectPool sends the dispatch counts of p and the metrics of its sets
// not in seen. When the pool's Stats fail, it counts the failure and reads
// each set on its own, so that one failing set hides no other.
func (c *Collector) collectPool(ctx context.Context, ch chan<- prometheus.Metric, p observe.PoolSource, seen map[*concurry.LimitSet]bool) {
	ps, err := p.Pool.Stats(ctx)
	if err != nil {
		c.statsErrors.WithLabelValues("", p.Name, p.Backend).Inc()
		c.warn("concurry: stats of a pool not read", "pool", p.Name, "err", err)
		for i := range p.Pool.Len() {
			ls := p.Pool.At(i)
			if !seen[ls] {
				seen[ls] = true
				st, err := ls.Stats(ctx)
				c.collectSet(ch, ls.Name(), p.Backend, st, err)
			}
		}
		return
	}
	for i, st := range ps.Sets {
		ls := p.Pool.At(i)
		ch <- prometheus.MustNewConstMetric(c.dispatched, prometheus.CounterValue, float64(ps.Dispatched[i]),
			p.Name, strconv.Itoa(i), ls.Name())
		if !seen[ls] {
			seen[ls] = true
			c.collectSet(ch, ls.Name(), p.Backend, st, nil)
		}
	}
}

// collectSet sends the metrics of one set from its stats st, read with the
// error err. On an error it sends only the counters Stats still reports
// (degraded decisions, renewal failures, lost leases).
func (c *Collector) collectSet(ch chan<- prometheus.Metric, name, backend string, st concurry.Stats, err error) {
	if err != nil {
		c.statsErrors.WithLabelValues(name, "", backend).Inc()
		c.warn("concurry: stats of a set not read", "set", name, "err", err)
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name, backend)
	}
	counter(c.degraded, st.Degraded)
	counter(c.renewFailures, st.RenewFailures)
	counter(c.leasesLost, st.LeasesLost)
	if err != nil {
		return
	}
	for _, l := range st.Limits {
		window := ""
		if l.Kind != concurry.KindResource {
			window = l.Window.String()
		}
		labels := []string{name, backend, l.Key, observe.StatsAlgorithm(l), window}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		gauge(c.available, float64(l.Available))
		gauge(c.inUse, float64(l.InUse))
		gauge(c.debt, float64(l.Debt))
		gauge(c.capacity, float64(l.Capacity))
		gauge(c.utilization, l.Utilization)
	}
}

// warn logs a warning to Options.Logger, whose handler is the user's: it
// runs in a goroutine of its own, so that a panic or a runtime.Goexit in it
// ends only that goroutine, and the scrape goes on.
func (c *Collector) warn(msg string, args ...any) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		c.logger.Warn(msg, args...)
	}()
	<-done
}
