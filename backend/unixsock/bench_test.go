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

// BenchmarkEcho is the floor: one 16-byte round trip over a Unix socket
// between two goroutines, with no protocol at all.
func BenchmarkEcho(b *testing.B) {
	path := sockPath(b)
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	ln.Close()
	<-done
}

var benchSpecs = []backend.Spec{
	{Key: concurry.CallKey, Kind: backend.Rate, Algorithm: algorithms.TokenBucket, Window: time.Hour, Capacity: 1 << 50},
	{Key: "conn", Kind: backend.Resource, Capacity: 1 << 20},
}

func benchSet(b *testing.B) backend.Set {
	srv := startServer(b, ServerOptions{})
	c := dial(b, srv.Path(), Options{DisableAutoHost: true})
	set, err := c.Open(context.Background(), "bench", benchSpecs)
	if err != nil {
		b.Fatal(err)
	}
	return set
}

func cycle(b *testing.B, set backend.Set, amounts []int64) {
	ctx := context.Background()
	lease, err := set.Acquire(ctx, amounts, backend.AcquireOptions{Wait: true})
	if err == nil {
		err = set.Settle(ctx, lease, amounts, nil, true, nil)
	}
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCycle is one Acquire and one final Settle through the backend,
// from one goroutine.
func BenchmarkCycle(b *testing.B) {
	set := benchSet(b)
	amounts := []int64{1, 1}
	b.ReportAllocs()
	for b.Loop() {
		cycle(b, set, amounts)
	}
}

// BenchmarkCycleParallel runs the cycle from 64 goroutines (32 per
// GOMAXPROCS on two cores) and reports the aggregate rate.
func BenchmarkCycleParallel(b *testing.B) {
	set := benchSet(b)
	b.ReportAllocs()
	b.SetParallelism(max(1, 64/testingProcs()))
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		amounts := []int64{1, 1}
		for pb.Next() {
			cycle(b, set, amounts)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cycles/s")
}

// BenchmarkLimitSetCycle is Acquire and Release through the public API.
func BenchmarkLimitSetCycle(b *testing.B) {
	srv := startServer(b, ServerOptions{})
	c := dial(b, srv.Path(), Options{DisableAutoHost: true})
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 1 << 50},
		concurry.ResourceLimit{Key: "conn", Capacity: 1 << 20},
	}, concurry.WithName("bench"), concurry.WithBackend(c))
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
