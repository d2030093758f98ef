package concurryotel_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryotel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newMetrics returns Metrics on a meter provider read by a ManualReader.
func newMetrics(t *testing.T, opts concurryotel.Options) (*concurryotel.Metrics, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := concurryotel.New(mp, opts)
	require.NoError(t, err)
	return m, reader
}

// collect reads every series once and returns them flattened:
// "name{attr=value,…}" → value, the attributes sorted and without their
// "concurry." prefix. A histogram gives name_count, name_sum and one
// name_bucket{…,le=bound} per non-empty bucket.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := make(map[string]float64)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			flatten(out, m)
		}
	}
	return out
}

func flatten(out map[string]float64, m metricdata.Metrics) {
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out[series(m.Name, p.Attributes)] = float64(p.Value)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out[series(m.Name, p.Attributes)] = float64(p.Value)
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			out[series(m.Name, p.Attributes)] = p.Value
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out[series(m.Name+"_count", p.Attributes)] = float64(p.Count)
			out[series(m.Name+"_sum", p.Attributes)] = p.Sum
			for i, n := range p.BucketCounts {
				if n == 0 {
					continue
				}
				le := "+Inf"
				if i < len(p.Bounds) {
					le = strconv.FormatFloat(p.Bounds[i], 'g', -1, 64)
				}
				out[series(m.Name+"_bucket", p.Attributes, "le="+le)] = float64(n)
			}
		}
	default:
		panic(fmt.Sprintf("unexpected data %T of %s", m.Data, m.Name))
	}
}

func series(name string, attrs attribute.Set, extra ...string) string {
	var parts []string
	for _, kv := range attrs.ToSlice() {
		parts = append(parts, strings.TrimPrefix(string(kv.Key), "concurry.")+"="+kv.Value.String())
	}
	parts = append(parts, extra...)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// only returns the entries of m whose names start with one of prefixes.
func only(m map[string]float64, prefixes ...string) map[string]float64 {
	out := make(map[string]float64)
	for k, v := range m {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				out[k] = v
			}
		}
	}
	return out
}

// openSet returns a set named name on limits, calling hooks, closed when the
// test ends.
func openSet(t *testing.T, hooks concurry.Hooks, name string, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	set, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithHooks(hooks))
	require.NoError(t, err)
	t.Cleanup(func() { _ = set.Close() })
	return set
}

// registered returns a set opened by openSet on the hooks of m, registered
// with m so that its gauges read the set's Stats.
func registered(t *testing.T, m *concurryotel.Metrics, name string, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	set := openSet(t, m.Hooks(), name, limits...)
	require.NoError(t, m.Register(set))
	return set
}

// use acquires take of key on set at once, reports used, and releases.
func use(t *testing.T, set *concurry.LimitSet, key string, take, used int64) {
	t.Helper()
	a, err := set.TryAcquire(context.Background(), concurry.Amounts{key: take})
	require.NoError(t, err)
	require.NoError(t, a.Update(concurry.Amounts{key: used}))
	require.NoError(t, a.Release())
}

// sum adds the values of the entries of m whose names start with prefix and
// contain every one of labels.
func sum(m map[string]float64, prefix string, labels ...string) float64 {
	var total float64
	for k, v := range only(m, prefix) {
		if !slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(k, l) }) {
			total += v
		}
	}
	return total
}
