package bench

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/concurry/concurry"
)

// The rows of the performance targets that limits_test.go lacks: a
// ResourceLimit alone beside x/sync/semaphore, the guide's three limits
// beside a hand-rolled equivalent (two rate.Limiters and a semaphore, not
// even atomic), and the same set with empty hooks beside it without.

func BenchmarkResourceTryAcquireRelease(b *testing.B) {
	ls := newSet(b, concurry.ResourceLimit{Key: "connections", Capacity: huge})
	b.ReportAllocs()
	for b.Loop() {
		a, err := ls.TryAcquire(bg, nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = a.Release()
	}
}

// handRolled is what a user writes without concurry: calls and tokens as
// two rate.Limiters, connections as a semaphore, taken one after another
// (so not atomic), the tokens' refund done by hand.
type handRolled struct {
	calls, tokens *rate.Limiter
	conns         *semaphore.Weighted
}

func newHandRolled() *handRolled {
	return &handRolled{rate.NewLimiter(rate.Limit(huge), huge), rate.NewLimiter(rate.Limit(huge), huge), semaphore.NewWeighted(huge)}
}

func (h *handRolled) cycle(b *testing.B) {
	now := time.Now()
	if !h.calls.AllowN(now, 1) || !h.tokens.AllowN(now, 500) || !h.conns.TryAcquire(1) {
		b.Error("refused")
		return
	}
	h.tokens.ReserveN(now, -80) // give back what was not used (x/time/rate's refund)
	h.conns.Release(1)
}

func BenchmarkPeerHandRolled3(b *testing.B) {
	h := newHandRolled()
	b.ReportAllocs()
	for b.Loop() {
		h.cycle(b)
	}
}

func BenchmarkPeerHandRolled3Parallel(b *testing.B) {
	h := newHandRolled()
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.cycle(b)
		}
	})
}

// The three-limit cycle with hooks set but every hook nil: what a program
// pays for the feature when nobody listens.
func BenchmarkAcquireUpdateRelease3NilHooks(b *testing.B) {
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: time.Second, Capacity: huge},
		concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: huge},
		concurry.ResourceLimit{Key: "connections", Capacity: huge},
	}, concurry.WithHooks(concurry.Hooks{}))
	if err != nil {
		b.Fatal(err)
	}
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

// BenchmarkContention prints throughput of one set, of x/time/rate, and of a
// LimitPool of four sets (the guide's "split a hot limit"), at 1, 8, 64 and
// 512 goroutines. Printed, not asserted.
func BenchmarkContention(b *testing.B) {
	for _, g := range []int{1, 8, 64, 512} {
		par := max(1, g/2) // GOMAXPROCS is 2 here
		b.Run(fmt.Sprintf("goroutines=%d/concurry", g), func(b *testing.B) {
			ls := newSet(b, concurry.CallLimit{Window: time.Second, Capacity: huge})
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if a, err := ls.TryAcquire(bg, nil); err == nil {
						_ = a.Release()
					}
				}
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/pool4", g), func(b *testing.B) {
			var sets []*concurry.LimitSet
			for range 4 {
				sets = append(sets, newSet(b, concurry.CallLimit{Window: time.Second, Capacity: huge / 4}))
			}
			pool, err := concurry.NewLimitPool(sets)
			if err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if a, err := pool.TryAcquire(bg, nil); err == nil {
						_ = a.Release()
					}
				}
			})
		})
		b.Run(fmt.Sprintf("goroutines=%d/x-time-rate", g), func(b *testing.B) {
			l := rate.NewLimiter(rate.Limit(huge), huge)
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.AllowN(time.Now(), 1)
				}
			})
		})
	}
}
