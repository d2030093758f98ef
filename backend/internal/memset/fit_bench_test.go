package memset

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// queueBehind starts n waiting Acquire calls of amounts through h and
// returns once all are queued, with a function that ends them.
func queueBehind(b *testing.B, s *Set, h *Handle, n int, amounts []int64) func() {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { _, _ = h.Acquire(ctx, amounts, backend.AcquireOptions{Wait: true}) })
	}
	for s.queued() < n {
		time.Sleep(time.Millisecond) // setup, outside the measurement
	}
	return func() { cancel(); wg.Wait() }
}

// BenchmarkRefusalBehindQueue measures a refused non-waiting Acquire while
// waiters are queued ahead of it, waiting for the rate limit (the refusal
// projects its RetryAfter through them) or for a resource (only a release
// can help).
//
//	go test -run '^$' -bench RefusalBehindQueue -benchmem ./backend/internal/memset
func BenchmarkRefusalBehindQueue(b *testing.B) {
	for _, waitFor := range []string{"rate", "resource"} {
		for _, n := range []int{10, 1000} {
			b.Run(fmt.Sprintf("%s/%d", waitFor, n), func(b *testing.B) {
				s := NewSet([]backend.Spec{
					{Key: "r", Kind: backend.Rate, Algorithm: algorithms.TokenBucket, Window: time.Hour, Capacity: 1000},
					{Key: "conn", Kind: backend.Resource, Capacity: 1},
				})
				h := s.Handle(nil)
				defer h.Close()
				block := []int64{1000, 0} // drains the rate limit
				if waitFor == "resource" {
					block = []int64{0, 1}
				}
				if _, err := h.Acquire(context.Background(), block, backend.AcquireOptions{}); err != nil {
					b.Fatal(err)
				}
				defer queueBehind(b, s, h, n, []int64{1, 1})()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := h.Acquire(context.Background(), []int64{1, 0}, backend.AcquireOptions{}); err == nil {
						b.Fatal("granted")
					}
				}
			})
		}
	}
}

// BenchmarkDeadlineWaitersJoin queues 2,000 waiters that have a deadline
// behind a drained rate limit: each checks its deadline against the
// projection of the queue ahead of it, which a queue that was walked on
// every check made quadratic.
func BenchmarkDeadlineWaitersJoin(b *testing.B) {
	const n = 2000
	b.ReportAllocs()
	for b.Loop() {
		s := NewSet([]backend.Spec{{Key: "r", Kind: backend.Rate, Algorithm: algorithms.GCRA, Window: time.Hour, Capacity: 1000}})
		h := s.Handle(nil)
		if _, err := h.Acquire(context.Background(), []int64{1000}, backend.AcquireOptions{}); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 1000*time.Hour)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { _, _ = h.Acquire(ctx, []int64{1}, backend.AcquireOptions{Wait: true}) })
		}
		for s.queued() < n {
			time.Sleep(100 * time.Microsecond)
		}
		cancel()
		wg.Wait()
		h.Close()
	}
}
