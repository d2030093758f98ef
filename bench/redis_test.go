package bench

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
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
// (a CallLimit, a RateLimit and a ResourceLimit) and of a 1-limit request
// (one GCRA RateLimit: the work of redis_rate.Allow), and full concurry
// cycles (acquire, update, release): of the 3-limit request with less used
// than requested (two calls: the acquisition and the settle that refunds),
// and of a rate-only request (a CallLimit and a RateLimit) used as
// requested (one call: no lease, nothing to settle), serially and from 16
// goroutines. calls/op is the number of Redis round trips per operation,
// and srv-µs/op the Redis CPU time per operation (the usec INFO
// commandstats reports for the commands the client sends).
//
// RedisRateAllow's limit (2^30 per second) moves its arrival time by less
// than a double resolves at its magnitude, so its script never writes: it
// is a read (GET) and no SET. RedisRateAllowWrites (a million per second)
// writes on every call, as concurry's acquisitions do.
//
//	cd bench && go test -run '^$' -bench Redis -count 5 -benchmem
//
// Serial times include the wake-ups of the client and the server, which are
// slow and erratic on some virtual machines; pinning both to one CPU (the
// benchmark starts the server, which inherits the affinity) measures their
// work alone: go test -c && taskset -c 1 ./bench.test -test.run '^$'
// -test.bench Redis -test.count 5 -test.benchmem
func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	counter := &callCounter{}
	client := srv.Client()
	client.AddHook(counter)
	peer := redis_rate.NewLimiter(client)
	ls := redisSet(b, client, b.Name(), []concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 1_000_000_000},
		concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 1_000_000_000_000},
		concurry.ResourceLimit{Key: "conn", Capacity: 1 << 40},
	})
	one := redisSet(b, client, b.Name()+"/1", []concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: 1 << 30, Algorithm: concurry.GCRA},
	})
	rateOnly := redisSet(b, client, b.Name()+"/rate", []concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 1_000_000_000},
		concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 1_000_000_000_000},
	})
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
		"RedisRateAllowWrites": func(b *testing.B) {
			if _, err := peer.Allow(bg, "peer/writes", redis_rate.PerSecond(1_000_000)); err != nil {
				b.Fatal(err)
			}
		},
		"CycleRateOnly": func(b *testing.B) {
			a, err := rateOnly.TryAcquire(bg, req)
			if err != nil {
				b.Fatal(err)
			}
			if err := a.Update(req); err != nil {
				b.Fatal(err)
			}
			if err := a.Release(); err != nil {
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
	for _, name := range []string{"Ping", "RedisRateAllow", "RedisRateAllowWrites", "Cycle", "CycleRateOnly"} {
		op := ops[name]
		b.Run(name+"/serial", func(b *testing.B) { runSerial(b, client, counter, op) })
		b.Run(name+"/16goroutines", func(b *testing.B) { runParallel(b, client, counter, op) })
	}
	b.Run("Acquire3Limits/serial", func(b *testing.B) { benchAcquireOnly(b, client, counter, ls, req) })
	b.Run("Acquire1Limit/serial", func(b *testing.B) {
		benchAcquireOnly(b, client, counter, one, concurry.Amounts{"tokens": 1})
	})
}

// redisSet opens a set of limits with round capacities large enough never
// to run out, and a long lease TTL: no renewal runs during a benchmark.
func redisSet(b *testing.B, client *redis.Client, name string, limits []concurry.Limit) *concurry.LimitSet {
	be := cr.New(client, cr.Options{LeaseTTL: time.Hour})
	ls, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithBackend(be))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ls.Close() })
	return ls
}

func runSerial(b *testing.B, client *redis.Client, counter *callCounter, op func(*testing.B)) {
	b.ReportAllocs()
	op(b) // load the scripts outside the measurement
	report := measure(b, client, counter)
	for b.Loop() {
		op(b)
	}
	report()
}

func runParallel(b *testing.B, client *redis.Client, counter *callCounter, op func(*testing.B)) {
	b.ReportAllocs()
	op(b)
	b.SetParallelism(max(1, 16/runtimeProcs()))
	report := measure(b, client, counter)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op(b)
		}
	})
	report()
}

// measure resets the server's command statistics and the call counter; the
// function it returns reports calls/op and srv-µs/op. Call that before
// stopping the timer: it sends commands of its own.
func measure(b *testing.B, client *redis.Client, counter *callCounter) func() {
	return newMeter(b, client, counter).report
}

// meter is measure, with a way to leave out of calls/op and srv-µs/op the
// calls made while the timer is stopped (see off).
type meter struct {
	b              *testing.B
	client         *redis.Client
	counter        *callCounter
	start          int64 // the counter when measuring began
	skipped, usecs int64 // calls and server µs made within off
}

func newMeter(b *testing.B, client *redis.Client, counter *callCounter) *meter {
	if err := client.ConfigResetStat(bg).Err(); err != nil {
		b.Fatal(err)
	}
	return &meter{b: b, client: client, counter: counter, start: counter.n.Load()}
}

// usec returns the server µs of the commands of topLevel so far.
func (m *meter) usec() int64 {
	info, err := m.client.Info(bg, "commandstats").Result()
	if err != nil {
		m.b.Fatal(err)
	}
	return commandUsec(info)
}

// off runs fn with the timer stopped, and leaves its calls (and its own
// INFO calls) out of what report reports.
func (m *meter) off(fn func()) {
	m.b.StopTimer()
	c0, u0 := m.counter.n.Load(), m.usec()
	fn()
	u1 := m.usec()
	m.skipped += m.counter.n.Load() - c0
	m.usecs += u1 - u0
	m.b.StartTimer()
}

func (m *meter) report() {
	calls := m.counter.n.Load() - m.start - m.skipped
	usec := m.usec() - m.usecs
	m.b.ReportMetric(float64(calls)/float64(m.b.N), "calls/op")
	m.b.ReportMetric(float64(usec)/float64(m.b.N), "srv-µs/op")
}

// topLevel are the commands these benchmarks send. INFO commandstats also
// counts the commands a script calls, whose time is already in the script's.
var topLevel = map[string]bool{
	"cmdstat_ping": true, "cmdstat_eval": true, "cmdstat_evalsha": true,
	"cmdstat_fcall": true, "cmdstat_function|load": true,
}

// commandUsec adds up the usec of the commands of topLevel in an INFO
// commandstats reply.
func commandUsec(info string) int64 {
	var total int64
	for line := range strings.Lines(info) {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !topLevel[name] {
			continue
		}
		for field := range strings.SplitSeq(stats, ",") {
			if v, ok := strings.CutPrefix(field, "usec="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				total += n
			}
		}
	}
	return total
}

// heldAtOnce bounds the acquisitions benchAcquireOnly holds: a service
// holds some hundreds at once, not every one a benchmark makes (b.N leases
// in one sorted set made each acquisition dearer the longer the benchmark
// ran).
const heldAtOnce = 1024

// benchAcquireOnly measures the acquisition alone: every heldAtOnce
// acquisitions, the timer stops while they are released, and the releases'
// calls and server time are left out.
func benchAcquireOnly(b *testing.B, client *redis.Client, counter *callCounter, ls *concurry.LimitSet, req concurry.Amounts) {
	b.ReportAllocs()
	held := make([]*concurry.Acquisition, 0, heldAtOnce)
	release := func() {
		for _, a := range held {
			_ = a.Update(req)
			if err := a.Release(); err != nil {
				b.Fatal(err)
			}
		}
		held = held[:0]
	}
	m := newMeter(b, client, counter)
	for b.Loop() {
		a, err := ls.TryAcquire(bg, req)
		if err != nil {
			b.Fatal(err)
		}
		if held = append(held, a); len(held) == heldAtOnce {
			m.off(release)
		}
	}
	m.report()
	b.StopTimer()
	release()
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
