package concurryprom

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// seriesKey names one child of a metric vector the hooks record into: the
// vector and its label values.
type seriesKey struct {
	vec                          *prometheus.MetricVec
	set, backend, key, algorithm string
	outcome, kind, pool          string
}

// seriesCache maps series keys to the children of the metric vectors, so
// that a hook records without looking the labels up (and without
// allocating) each time. It holds at most max of them; past that, children
// are looked up in their vector each time (correct, but allocating), so that
// a program with unbounded set names (a Keyed given Hooks instead of
// KeyedHooks) cannot grow it without bound.
type seriesCache[V any] struct {
	max int

	mu sync.RWMutex
	m  map[seriesKey]V // guarded by mu
}

func newSeriesCache[V any](max int) *seriesCache[V] {
	return &seriesCache[V]{max: max, m: make(map[seriesKey]V)}
}

// get returns the child of k, made by build when it is not cached.
func (c *seriesCache[V]) get(k seriesKey, build func(seriesKey) V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = build(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok {
		return old
	}
	if len(c.m) < c.max {
		c.m[k] = v
	}
	return v
}
