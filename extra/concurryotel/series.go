package concurryotel

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// seriesKey names one series a hook records into: its attributes, of which
// "" ones are left out.
type seriesKey struct {
	set, backend, key, algorithm string
	outcome, feedback, pool      string
}

// series holds the prepared options of one attribute set, so that a hook
// records without building attributes (and without allocating) each time.
type series struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newSeries(k seriesKey) *series {
	kv := make([]attribute.KeyValue, 0, 7)
	for _, a := range [...]struct{ key, value string }{
		{AttrSet, k.set}, {AttrBackend, k.backend}, {AttrKey, k.key}, {AttrAlgorithm, k.algorithm},
		{AttrOutcome, k.outcome}, {AttrFeedback, k.feedback}, {AttrPool, k.pool},
	} {
		if a.value != "" {
			kv = append(kv, attribute.String(a.key, a.value))
		}
	}
	opt := metric.WithAttributeSet(attribute.NewSet(kv...))
	return &series{add: []metric.AddOption{opt}, rec: []metric.RecordOption{opt}}
}

// seriesCache maps series keys to prepared series. It holds at most max of
// them; past that, series are prepared anew each time (correct, but
// allocating), so that a program with unbounded set names (a Keyed given
// Hooks instead of KeyedHooks) cannot grow it without bound.
type seriesCache struct {
	max int

	mu sync.RWMutex
	m  map[seriesKey]*series // guarded by mu
}

func newSeriesCache(max int) *seriesCache {
	return &seriesCache{max: max, m: make(map[seriesKey]*series)}
}

func (c *seriesCache) get(k seriesKey) *series {
	c.mu.RLock()
	s := c.m[k]
	c.mu.RUnlock()
	if s != nil {
		return s
	}
	s = newSeries(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[k]; old != nil {
		return old
	}
	if len(c.m) < c.max {
		c.m[k] = s
	}
	return s
}
