package concurryprom_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryprom"
	"github.com/concurry/concurry/internal/observe/observetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newCollector returns a Collector registered in a registry of its own, and
// the promhttp handler serving that registry.
func newCollector(t *testing.T, opts concurryprom.Options) (*concurryprom.Collector, http.Handler) {
	t.Helper()
	c, err := concurryprom.NewCollector(opts)
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	return c, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// scrape serves GET /metrics from h in process (no socket, so that it can
// run in a synctest bubble) and parses the text it answers.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	return parse(t, rec.Body)
}

// parse reads the text exposition format and returns its samples
// flattened: "name{label=value,…}" → value, the labels sorted and those with
// empty values left out. A histogram gives name_count, name_sum and one
// name_bucket{…,le=bound} per bucket whose cumulative count grows there.
func parse(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	require.NoError(t, err)
	out := make(map[string]float64)
	for name, f := range families {
		if !strings.HasPrefix(name, "concurry_") {
			continue
		}
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[sample(name, m)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[sample(name, m)] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				out[sample(name+"_count", m)] = float64(h.GetSampleCount())
				out[sample(name+"_sum", m)] = h.GetSampleSum()
				prev := uint64(0)
				for _, b := range h.GetBucket() {
					if b.GetCumulativeCount() > prev {
						out[sample(name+"_bucket", m, "le="+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))] = float64(b.GetCumulativeCount() - prev)
						prev = b.GetCumulativeCount()
					}
				}
			default:
				t.Fatalf("unexpected type %v of %s", f.GetType(), name)
			}
		}
	}
	return out
}

func sample(name string, m *dto.Metric, extra ...string) string {
	var parts []string
	for _, l := range m.GetLabel() {
		if l.GetValue() != "" {
			parts = append(parts, l.GetName()+"="+l.GetValue())
		}
	}
	slices.Sort(parts)
	parts = append(parts, extra...)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// registered returns a set opened by openSet on the hooks of c, registered
// with c so that its gauges read the set's Stats.
func registered(t *testing.T, c *concurryprom.Collector, name string, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	set := openSet(t, c.Hooks(), name, limits...)
	require.NoError(t, c.Register(set))
	return set
}

// The helpers both exporters' tests share (see observetest).
var (
	only    = observetest.Only
	sum     = observetest.Sum
	openSet = observetest.OpenSet
	use     = observetest.Use
)
