package concurryotel_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryotel"
)

// BenchmarkAcquireRelease measures a TryAcquire, Update and Release cycle
// (with a refund, so that Settled records too) on a set without hooks and
// on one whose Hooks record into an SDK meter provider.
func BenchmarkAcquireRelease(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	m, err := concurryotel.New(mp, concurryotel.Options{})
	if err != nil {
		b.Fatal(err)
	}
	limits := []concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 1 << 40},
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1 << 40},
	}
	for _, c := range []struct {
		name string
		opts []concurry.Option
	}{
		{"plain", nil},
		{"otel", []concurry.Option{concurry.WithName("bench"), concurry.WithHooks(m.Hooks())}},
	} {
		ls, err := concurry.NewLimitSet(limits, c.opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cycle(ls)
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					cycle(ls)
				}
			})
		})
	}
}

var benchReq, benchUsage = concurry.Amounts{"tokens": 10}, concurry.Amounts{"tokens": 5}

func cycle(ls *concurry.LimitSet) {
	a, err := ls.TryAcquire(context.Background(), benchReq)
	if err != nil {
		panic(err)
	}
	_ = a.Update(benchUsage)
	_ = a.Release()
}
