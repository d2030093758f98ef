package concurryotel_test

import (
	"context"
	"fmt"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryotel"
)

// Hooks record the decisions of a set; Register adds its gauges. Here a
// ManualReader stands for the exporter a program would use.
func ExampleMetrics() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)

	m, err := concurryotel.New(mp, concurryotel.Options{})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	set, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1000},
	}, concurry.WithName("openai"), concurry.WithHooks(m.Hooks()))
	if err != nil {
		panic(err)
	}
	if err := m.Register(set); err != nil {
		panic(err)
	}

	_ = set.Do(ctx, concurry.Amounts{"tokens": 500}, func(_ context.Context, a *concurry.Acquisition) error {
		return a.Update(concurry.Amounts{"tokens": 200}) // 300 refunded
	})
	_, err = set.TryAcquire(ctx, concurry.Amounts{"tokens": 900})
	fmt.Println(err != nil)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		panic(err)
	}
	for _, mt := range rm.ScopeMetrics[0].Metrics {
		switch d := mt.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				if outcome, ok := p.Attributes.Value(concurryotel.AttrOutcome); ok {
					fmt.Printf("%s{outcome=%s} %d\n", mt.Name, outcome.String(), p.Value)
				} else {
					fmt.Println(mt.Name, p.Value)
				}
			}
		case metricdata.Gauge[int64]:
			if mt.Name == "concurry.limit.available" {
				fmt.Println(mt.Name, d.DataPoints[0].Value)
			}
		}
	}
	// Unordered output:
	// true
	// concurry.acquisitions{outcome=granted} 1
	// concurry.acquisitions{outcome=would_block} 1
	// concurry.refunded 300
	// concurry.limit.available 800
	// concurry.degraded.decisions 0
	// concurry.lease.renewal_failures 0
	// concurry.lease.lost 0
}
