package concurryotel_test

import (
	"context"
	"fmt"
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
	"github.com/concurry/concurry/internal/observe/observetest"
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

// registered returns a set opened by openSet on the hooks of m, registered
// with m so that its gauges read the set's Stats.
func registered(t *testing.T, m *concurryotel.Metrics, name string, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	set := openSet(t, m.Hooks(), name, limits...)
	require.NoError(t, m.Register(set))
	return set
}

// The helpers both exporters' tests share (see observetest).
var (
	only    = observetest.Only
	sum     = observetest.Sum
	openSet = observetest.OpenSet
	use     = observetest.Use
)
