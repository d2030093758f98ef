package concurryprom_test

import (
	"context"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/extra/concurryprom"
)

// BenchmarkAcquireRelease measures a TryAcquire, Update and Release cycle
// (with a refund, so that Settled records too) on a set without hooks and
// on one whose Hooks record into a Collector.
func BenchmarkAcquireRelease(b *testing.B) {
	c, err := concurryprom.NewCollector(concurryprom.Options{})
	if err != nil {
		b.Fatal(err)
	}
	limits := []concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 1 << 40},
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1 << 40},
	}
	for _, v := range []struct {
		name string
		opts []concurry.Option
	}{
		{"plain", nil},
		{"prometheus", []concurry.Option{concurry.WithName("bench"), concurry.WithHooks(c.Hooks())}},
	} {
		ls, err := concurry.NewLimitSet(limits, v.opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cycle(ls)
			}
		})
		b.Run(v.name+"/parallel", func(b *testing.B) {
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
