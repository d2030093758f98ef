package algorithms_test

import (
	"testing"

	"github.com/concurry/concurry/algorithms"
)

// readyTake runs the hot path b.N times on s: one Ready and, when it grants,
// one Take, with requests arriving at twice the limit's rate.
func readyTake(s algorithms.State, n int) {
	now := t0
	for i := 0; i < n; i++ {
		now += 500_000 // 0.5ms: twice 1000 per second
		if s.Ready(now, 1) == now {
			s.Take(now, 1)
		}
	}
}

// BenchmarkReadyTake measures Ready+Take for every algorithm at 1000 per second.
func BenchmarkReadyTake(b *testing.B) {
	for _, k := range allKinds {
		b.Run(k.String(), func(b *testing.B) {
			s := newState(k, sec, 1000)
			b.ReportAllocs()
			b.ResetTimer()
			readyTake(s, b.N)
		})
	}
}

// BenchmarkReadyTakeParallel is BenchmarkReadyTake with one state per
// goroutine (a State is not safe for concurrent use): the math shares nothing.
func BenchmarkReadyTakeParallel(b *testing.B) {
	for _, k := range allKinds {
		b.Run(k.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				s := newState(k, sec, 1000)
				now := t0
				for pb.Next() {
					now += 500_000
					if s.Ready(now, 1) == now {
						s.Take(now, 1)
					}
				}
			})
		})
	}
}
