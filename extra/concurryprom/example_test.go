package concurryprom_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryprom"
)

// Hooks record the decisions of a set; Register adds its gauges; the
// Collector is registered like any other and served by promhttp.
func ExampleCollector() {
	ctx := context.Background()
	c, err := concurryprom.NewCollector(concurryprom.Options{})
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	set, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1000},
	}, concurry.WithName("openai"), concurry.WithHooks(c.Hooks()))
	if err != nil {
		panic(err)
	}
	if err := c.Register(set); err != nil {
		panic(err)
	}
	_ = set.Do(ctx, concurry.Amounts{"tokens": 500}, func(_ context.Context, a *concurry.Acquisition) error {
		return a.Update(concurry.Amounts{"tokens": 200}) // 300 refunded
	})
	_, err = set.TryAcquire(ctx, concurry.Amounts{"tokens": 900})
	fmt.Println(err != nil)

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "concurry_acquisitions_total") || strings.HasPrefix(line, "concurry_refunded") ||
			strings.HasPrefix(line, "concurry_limit_available") {
			fmt.Println(line)
		}
	}
	// Output:
	// true
	// concurry_acquisitions_total{algorithm="",backend="memory",key="",outcome="granted",set="openai"} 1
	// concurry_acquisitions_total{algorithm="token_bucket",backend="memory",key="tokens",outcome="would_block",set="openai"} 1
	// concurry_limit_available{algorithm="token_bucket",backend="memory",key="tokens",set="openai",window="1h0m0s"} 800
	// concurry_refunded_units_total{algorithm="token_bucket",backend="memory",key="tokens",set="openai"} 300
}
