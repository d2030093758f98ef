package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// The load of the blocking benchmarks: a limit of 1,000 per second with a
// burst of 1, saturated for about 2 seconds.
const (
	blockingRate   = 1000 // grants per second
	blockingGrants = 2000
)

// acquireFunc blocks until one unit is granted (and released, where the
// limiter holds anything), or ctx ends.
type acquireFunc func(ctx context.Context) error

// rateError runs waiters goroutines that call acquire in a loop until
// blockingGrants units were granted in all, and returns the achieved rate's
// error relative to blockingRate, in percent; negative is fewer grants than
// the limit allows. The achieved rate is the least-squares slope of the
// grant count over the instants the grants returned at, so that one late
// wake-up (which delays one return, not the schedule) weighs little, while a
// schedule that drifts changes the slope.
func rateError(b *testing.B, waiters int, acquire acquireFunc) float64 {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var granted atomic.Int64
	at := make([]time.Time, blockingGrants)
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for range waiters {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := acquire(ctx); err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				now := time.Now()
				k := granted.Add(1)
				if k <= blockingGrants {
					at[k-1] = now
				}
				if k == blockingGrants {
					cancel() // the waiters still queued give up
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	slices.SortFunc(at, time.Time.Compare)
	return (slope(at)/blockingRate - 1) * 100
}

// slope returns the least-squares slope of i over at[i], per second.
func slope(at []time.Time) float64 {
	n := float64(len(at))
	var sx, sy, sxx, sxy float64
	for i, t := range at {
		x, y := t.Sub(at[0]).Seconds(), float64(i)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// concurryAcquire returns the acquireFunc of a fresh set of one CallLimit of
// 1,000 per second with a burst of 1, in the backend of opts.
func concurryAcquire(b *testing.B, opts ...concurry.Option) acquireFunc {
	b.Helper()
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: time.Second / blockingRate, Capacity: 1},
	}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ls.Close() })
	return func(ctx context.Context) error {
		a, err := ls.Acquire(ctx, nil)
		if err != nil {
			return err
		}
		return a.Release()
	}
}

// rateAcquire returns the acquireFunc of an x/time/rate Limiter of the same
// limit.
func rateAcquire() acquireFunc {
	l := rate.NewLimiter(blockingRate, 1)
	return l.Wait
}

// BenchmarkBlockingRate saturates a limit of 1,000 per second with a burst
// of 1 by 1 and by 64 goroutines that Acquire in a loop, for about 2 seconds
// each, with concurry (in-memory) and with x/time/rate's Limiter.Wait in the
// same run, and reports each one's rate error in percent (concurry-err-%,
// x/rate-err-%): the achieved rate against the limit, negative when fewer
// grants passed than the limit allows. Wake-ups come late on a busy
// machine; a limiter that dates each grant when its timer fires loses every
// such delay (concurry did: −9 %), one that keeps the schedule loses nothing.
//
//	cd bench && go test -run '^$' -bench BlockingRate
func BenchmarkBlockingRate(b *testing.B) {
	for _, waiters := range []int{1, 64} {
		b.Run(fmt.Sprintf("waiters=%d", waiters), func(b *testing.B) {
			var ours, peer float64
			for range b.N {
				ours += rateError(b, waiters, concurryAcquire(b))
				peer += rateError(b, waiters, rateAcquire())
			}
			b.ReportMetric(ours/float64(b.N), "concurry-err-%")
			b.ReportMetric(peer/float64(b.N), "x/rate-err-%")
		})
	}
}

// BenchmarkBlockingRateRedis is BenchmarkBlockingRate on the Redis backend,
// against a redis-server started for the run (skipped without one), each
// iteration beside x/time/rate's Limiter.Wait.
//
//	cd bench && go test -run '^$' -bench BlockingRateRedis
func BenchmarkBlockingRateRedis(b *testing.B) {
	srv := redistest.Start(b)
	client := srv.Client()
	for _, waiters := range []int{1, 64} {
		b.Run(fmt.Sprintf("waiters=%d", waiters), func(b *testing.B) {
			var ours, peer float64
			for i := range b.N {
				name := fmt.Sprintf("%s/%d/%d", b.Name(), time.Now().UnixNano(), i)
				ls := redisSet(b, client, name, []concurry.Limit{
					concurry.CallLimit{Window: time.Second / blockingRate, Capacity: 1},
				})
				ours += rateError(b, waiters, func(ctx context.Context) error {
					a, err := ls.Acquire(ctx, nil)
					if err != nil {
						return err
					}
					return a.Release()
				})
				peer += rateError(b, waiters, rateAcquire())
			}
			b.ReportMetric(ours/float64(b.N), "concurry-err-%")
			b.ReportMetric(peer/float64(b.N), "x/rate-err-%")
		})
	}
}
