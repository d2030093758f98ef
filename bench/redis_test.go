package bench

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/internal/redistest"
)

// callCounter counts the commands a client sends: one per round trip, since
// these benchmarks never pipeline.
type callCounter struct{ n atomic.Int64 }

func (c *callCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *callCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *callCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// BenchmarkRedis compares, on one redis-server started for the run, a plain
// PING, one redis_rate.Allow, a concurry acquisition of a 3-limit request
// (a CallLimit, a RateLimit and a ResourceLimit), and a full concurry cycle
// (acquire, update with less than requested, release), serially and from 16
// goroutines. calls/op is the number of Redis round trips per operation.
//
//	cd bench && go test -run '^$' -bench Redis -count 5 -benchmem
func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	counter := &callCounter{}
	client := srv.Client()
	client.AddHook(counter)
	peer := redis_rate.NewLimiter(client)
	ls := redisSet(b, client)
	req := concurry.Amounts{"tokens": 100}
	usage := concurry.Amounts{"tokens": 60}
	ops := map[string]func(b *testing.B){
		"Ping": func(b *testing.B) {
			if err := client.Ping(bg).Err(); err != nil {
				b.Fatal(err)
			}
		},
		"RedisRateAllow": func(b *testing.B) {
			if _, err := peer.Allow(bg, "peer", redis_rate.PerSecond(1<<30)); err != nil {
				b.Fatal(err)
			}
		},
		"Cycle": func(b *testing.B) {
			a, err := ls.TryAcquire(bg, req)
			if err != nil {
				b.Fatal(err)
			}
			if err := a.Update(usage); err != nil {
				b.Fatal(err)
			}
			if err := a.Release(); err != nil {
				b.Fatal(err)
			}
		},
	}
	for _, name := range []string{"Ping", "RedisRateAllow", "Cycle"} {
		op := ops[name]
		b.Run(name+"/serial", func(b *testing.B) { runSerial(b, counter, op) })
		b.Run(name+"/16goroutines", func(b *testing.B) { runParallel(b, counter, op) })
	}
	b.Run("Acquire3Limits/serial", func(b *testing.B) { benchAcquireOnly(b, counter, ls, req) })
}

func redisSet(b *testing.B, client *redis.Client) *concurry.LimitSet {
	// Round capacities large enough never to run out, and a long lease TTL:
	// no renewal runs during a benchmark.
	be := cr.New(client, cr.Options{LeaseTTL: time.Hour})
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 1_000_000_000},
		concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 1_000_000_000_000},
		concurry.ResourceLimit{Key: "conn", Capacity: 1 << 40},
	}, concurry.WithName(b.Name()), concurry.WithBackend(be))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ls.Close() })
	return ls
}

func runSerial(b *testing.B, counter *callCounter, op func(*testing.B)) {
	b.ReportAllocs()
	op(b) // load the scripts outside the measurement
	start := counter.n.Load()
	for b.Loop() {
		op(b)
	}
	b.ReportMetric(float64(counter.n.Load()-start)/float64(b.N), "calls/op")
}

func runParallel(b *testing.B, counter *callCounter, op func(*testing.B)) {
	b.ReportAllocs()
	op(b)
	b.SetParallelism(max(1, 16/runtimeProcs()))
	start := counter.n.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op(b)
		}
	})
	b.ReportMetric(float64(counter.n.Load()-start)/float64(b.N), "calls/op")
}

// benchAcquireOnly measures the acquisition alone; the leases are released
// after the timer stops.
func benchAcquireOnly(b *testing.B, counter *callCounter, ls *concurry.LimitSet, req concurry.Amounts) {
	b.ReportAllocs()
	held := make([]*concurry.Acquisition, 0, 1024)
	start := counter.n.Load()
	for b.Loop() {
		a, err := ls.TryAcquire(bg, req)
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, a)
	}
	b.ReportMetric(float64(counter.n.Load()-start)/float64(b.N), "calls/op")
	b.StopTimer()
	for _, a := range held {
		_ = a.Update(req)
		_ = a.Release()
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
