package unixsock

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// The benchmarks talk to peers in other processes, as real clients do: the
// test binary re-executed as an echo server and as a limit server. The
// targets are ratios to the echo round trip, which BenchmarkVersusEcho
// measures in the same run, in alternating blocks, so that a busy machine
// slows both alike:
//
//	go test -run '^$' -bench 'VersusEcho|Parallel' -count 10 ./backend/unixsock/ | tee new.txt
//	benchstat -col /cycle new.txt
//
// (BenchmarkEcho and BenchmarkCycle* give each alone.)

// rates is a set of rate limits only: calls and tokens, as an LLM API
// counts them.
var rates = []backend.Spec{
	{Key: concurry.CallKey, Kind: backend.Rate, Algorithm: algorithms.TokenBucket, Window: time.Hour, Capacity: 1 << 50},
	{Key: "tokens", Kind: backend.Rate, Algorithm: algorithms.TokenBucket, Window: time.Hour, Capacity: 1 << 50},
}

// ratesAndConn adds a resource: a connection held until the release.
var ratesAndConn = append(rates[:2:2], backend.Spec{Key: "conn", Kind: backend.Resource, Capacity: 1 << 20})

// cycles are the acquire+release cycles measured: exact usage of rate
// limits, exact usage with a resource, and a refund of part of the tokens.
var benchCycles = []struct {
	name          string
	specs         []backend.Spec
	amounts, used []int64
}{
	{"exact", rates, []int64{1, 100}, nil},
	{"resource", ratesAndConn, []int64{1, 100, 1}, nil},
	{"refund", rates, []int64{1, 100}, []int64{0, -40}},
}

// echoPeer starts an echo server in another process and returns a
// connection to it.
func echoPeer(b *testing.B) net.Conn {
	path := sockPath(b)
	startChild(b, "", "echo", nil, "CQ_SOCK="+path).expect(b, "SERVING", 10*time.Second)
	c, err := net.Dial("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// echo makes one 16-byte round trip.
func echo(b *testing.B, c net.Conn, buf []byte) {
	if _, err := c.Write(buf); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		b.Fatal(err)
	}
}

// serverPeer starts a limit server in another process and opens a set of
// specs on it. The server stops gracefully, so that it can write the CPU
// profile CQ_CPUPROFILE asks for.
func serverPeer(b *testing.B, specs []backend.Spec) backend.Set {
	path := sockPath(b)
	srv := startChild(b, "", "serve", nil, "CQ_SOCK="+path)
	srv.expect(b, "SERVING", 10*time.Second)
	b.Cleanup(func() { srv.stop(false) })
	set, err := dial(b, path, Options{DisableAutoHost: true}).Open(context.Background(), "bench", specs)
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// cycle acquires amounts, waiting if need be, and releases them with the
// usage delta.
func cycle(b *testing.B, set backend.Set, amounts, delta []int64) {
	ctx := context.Background()
	lease, err := set.Acquire(ctx, amounts, backend.AcquireOptions{Wait: true})
	if err == nil {
		err = set.(backend.Releaser).Release(ctx, lease, amounts, delta)
	}
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEcho is the floor: one 16-byte round trip over a Unix socket to
// an echo server in another process, with no protocol at all.
func BenchmarkEcho(b *testing.B) {
	c, buf := echoPeer(b), make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		echo(b, c, buf)
	}
}

// BenchmarkCycle is one Acquire and one Release through the backend, from
// one goroutine, for each cycle.
func BenchmarkCycle(b *testing.B) {
	for _, cy := range benchCycles {
		b.Run("cycle="+cy.name, func(b *testing.B) {
			set := serverPeer(b, cy.specs)
			b.ReportAllocs()
			for b.Loop() {
				cycle(b, set, cy.amounts, cy.used)
			}
		})
	}
}

// BenchmarkVersusEcho alternates blocks of 32 echo round trips and 32
// cycles and reports each one's mean and the ratio of the cycle to the
// echo ("x-echo"), the figure the targets are set in.
func BenchmarkVersusEcho(b *testing.B) {
	for _, cy := range benchCycles {
		b.Run("cycle="+cy.name, func(b *testing.B) {
			c, buf := echoPeer(b), make([]byte, 16)
			set := serverPeer(b, cy.specs)
			const block = 32
			var echoes, spent time.Duration
			for b.Loop() {
				t0 := time.Now()
				for range block {
					echo(b, c, buf)
				}
				t1 := time.Now()
				for range block {
					cycle(b, set, cy.amounts, cy.used)
				}
				echoes, spent = echoes+t1.Sub(t0), spent+time.Since(t1)
			}
			n := float64(b.N * block)
			b.ReportMetric(float64(echoes)/n, "echo-ns")
			b.ReportMetric(float64(spent)/n, "cycle-ns")
			b.ReportMetric(float64(spent)/float64(echoes), "x-echo")
		})
	}
}

// BenchmarkCycleParallel runs the cycles from 64 goroutines (32 per
// GOMAXPROCS on two cores) and reports the aggregate rate.
func BenchmarkCycleParallel(b *testing.B) {
	for _, cy := range benchCycles {
		b.Run("cycle="+cy.name, func(b *testing.B) {
			set := serverPeer(b, cy.specs)
			b.ReportAllocs()
			b.SetParallelism(max(1, 64/testingProcs()))
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					cycle(b, set, cy.amounts, cy.used)
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cycles/s")
		})
	}
}

// BenchmarkLimitSetCycle is Acquire and Release through the public API, of
// a call limit and a resource.
func BenchmarkLimitSetCycle(b *testing.B) {
	path := sockPath(b)
	startChild(b, "", "serve", nil, "CQ_SOCK="+path).expect(b, "SERVING", 10*time.Second)
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 1 << 50},
		concurry.ResourceLimit{Key: "conn", Capacity: 1 << 20},
	}, concurry.WithName("bench"), concurry.WithBackend(dial(b, path, Options{DisableAutoHost: true})))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		a, err := ls.Acquire(ctx, nil)
		if err == nil {
			err = a.Release()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
