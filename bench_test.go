package concurry_test

import (
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// The capacities below never run out during a benchmark: they measure the
// cost of the bookkeeping, not of waiting.
const huge = 1 << 50

func benchSet(b *testing.B, limits ...concurry.Limit) *concurry.LimitSet {
	ls, err := concurry.NewLimitSet(limits)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ls.Close() })
	return ls
}

func guideBenchSet(b *testing.B) *concurry.LimitSet {
	return benchSet(b,
		concurry.CallLimit{Window: time.Second, Capacity: huge},
		concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: huge},
		concurry.ResourceLimit{Key: "connections", Capacity: huge},
	)
}

// (a) TryAcquire+Release of one rate limit that needs no usage report.
func BenchmarkTryAcquireRelease(b *testing.B) {
	ls := benchSet(b, concurry.CallLimit{Window: time.Second, Capacity: huge})
	b.ReportAllocs()
	for b.Loop() {
		a, err := ls.TryAcquire(bg, nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = a.Release()
	}
}

// (a') the same with a RateLimit, whose usage is reported before Release.
func BenchmarkTryAcquireUpdateRelease(b *testing.B) {
	ls := benchSet(b, concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: huge})
	req := concurry.Amounts{"tokens": 100}
	b.ReportAllocs()
	for b.Loop() {
		a, err := ls.TryAcquire(bg, req)
		if err != nil {
			b.Fatal(err)
		}
		_ = a.Update(req)
		_ = a.Release()
	}
}

// (b) Acquire+Update+Release of the guide's three-limit set.
func BenchmarkAcquireUpdateRelease3(b *testing.B) {
	ls := guideBenchSet(b)
	req := concurry.Amounts{"tokens": 500}
	usage := concurry.Amounts{"tokens": 420}
	b.ReportAllocs()
	for b.Loop() {
		a, err := ls.Acquire(bg, req)
		if err != nil {
			b.Fatal(err)
		}
		_ = a.Update(usage)
		_ = a.Release()
	}
}

// (c) both under RunParallel.
func BenchmarkTryAcquireReleaseParallel(b *testing.B) {
	ls := benchSet(b, concurry.CallLimit{Window: time.Second, Capacity: huge})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a, err := ls.TryAcquire(bg, nil)
			if err != nil {
				b.Error(err)
				return
			}
			_ = a.Release()
		}
	})
}

func BenchmarkAcquireUpdateRelease3Parallel(b *testing.B) {
	ls := guideBenchSet(b)
	req := concurry.Amounts{"tokens": 500}
	usage := concurry.Amounts{"tokens": 420}
	b.ReportAllocs()
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a, err := ls.Acquire(bg, req)
			if err != nil {
				b.Error(err)
				return
			}
			_ = a.Update(usage)
			_ = a.Release()
		}
	})
}

// (d) an empty set.
func BenchmarkEmptySet(b *testing.B) {
	ls := benchSet(b)
	req := concurry.Amounts{"tokens": 500}
	b.ReportAllocs()
	for b.Loop() {
		a, _ := ls.Acquire(bg, req)
		_ = a.Update(req)
		_ = a.Release()
	}
}
