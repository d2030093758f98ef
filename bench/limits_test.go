package bench

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/concurry/concurry"
)

var bg = context.Background()

// huge capacities never run out: these measure bookkeeping, not waiting.
const huge = 1 << 50

func newSet(b *testing.B, limits ...concurry.Limit) *concurry.LimitSet {
	ls, err := concurry.NewLimitSet(limits)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ls.Close() })
	return ls
}

// Peer baselines.

func BenchmarkPeerRateAllowN(b *testing.B) {
	l := rate.NewLimiter(rate.Limit(huge), huge)
	b.ReportAllocs()
	for b.Loop() {
		if !l.AllowN(time.Now(), 1) {
			b.Fatal("refused")
		}
	}
}

func BenchmarkPeerRateAllowNParallel(b *testing.B) {
	l := rate.NewLimiter(rate.Limit(huge), huge)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.AllowN(time.Now(), 1)
		}
	})
}

func BenchmarkPeerSemaphoreTryAcquireRelease(b *testing.B) {
	s := semaphore.NewWeighted(huge)
	b.ReportAllocs()
	for b.Loop() {
		if !s.TryAcquire(1) {
			b.Fatal("refused")
		}
		s.Release(1)
	}
}

func BenchmarkPeerSemaphoreAcquireRelease(b *testing.B) {
	s := semaphore.NewWeighted(huge)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Acquire(bg, 1); err != nil {
			b.Fatal(err)
		}
		s.Release(1)
	}
}

// concurry, measured in the same run.

// (a) TryAcquire+Release of one rate limit (a CallLimit: no usage to report).
func BenchmarkTryAcquireRelease(b *testing.B) {
	ls := newSet(b, concurry.CallLimit{Window: time.Second, Capacity: huge})
	b.ReportAllocs()
	for b.Loop() {
		a, err := ls.TryAcquire(bg, nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = a.Release()
	}
}

// (a') one RateLimit, with its usage reported.
func BenchmarkTryAcquireUpdateRelease(b *testing.B) {
	ls := newSet(b, concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: huge})
	req := concurry.Amounts{"tokens": 1}
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

func guideSet(b *testing.B) *concurry.LimitSet {
	return newSet(b,
		concurry.CallLimit{Window: time.Second, Capacity: huge},
		concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: huge},
		concurry.ResourceLimit{Key: "connections", Capacity: huge},
	)
}

// (b) Acquire+Update+Release of the guide's three-limit set.
func BenchmarkAcquireUpdateRelease3(b *testing.B) {
	ls := guideSet(b)
	req, usage := concurry.Amounts{"tokens": 500}, concurry.Amounts{"tokens": 420}
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

// (c) (a) and (b) from 64 goroutines.
func BenchmarkTryAcquireReleaseParallel(b *testing.B) {
	ls := newSet(b, concurry.CallLimit{Window: time.Second, Capacity: huge})
	b.ReportAllocs()
	b.SetParallelism(32)
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
	ls := guideSet(b)
	req, usage := concurry.Amounts{"tokens": 500}, concurry.Amounts{"tokens": 420}
	b.ReportAllocs()
	b.SetParallelism(32)
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
	ls := newSet(b)
	req := concurry.Amounts{"tokens": 500}
	b.ReportAllocs()
	for b.Loop() {
		a, _ := ls.Acquire(bg, req)
		_ = a.Update(req)
		_ = a.Release()
	}
}
