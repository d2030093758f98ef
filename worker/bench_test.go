package worker_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

func inc(_ context.Context, _ int, _ concurry.Limiter) (int, error) { return 1, nil }

// BenchmarkRoundTrip measures Submit + Result of a trivial task, beside the
// same round trip through a plain channel and goroutines.
func BenchmarkRoundTrip(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("worker/%d", n), func(b *testing.B) {
			p := newPool(b, indexFactory, worker.Options{MaxWorkers: n})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				f, err := worker.Submit(ctx, p, inc)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Result(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("channel/%d", n), func(b *testing.B) {
			send, stop := channelPool(n)
			defer stop()
			b.ReportAllocs()
			for b.Loop() {
				send()
			}
		})
		b.Run(fmt.Sprintf("worker/%d/parallel", n), func(b *testing.B) {
			p := newPool(b, indexFactory, worker.Options{MaxWorkers: n})
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					f, err := worker.Submit(ctx, p, inc)
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := f.Result(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(fmt.Sprintf("channel/%d/parallel", n), func(b *testing.B) {
			send, stop := channelPool(n)
			defer stop()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					send()
				}
			})
		})
	}
}

// channelPool is the baseline: n goroutines reading requests from one
// channel and answering each on a channel of its own.
func channelPool(n int) (send func(), stop func()) {
	type request struct {
		fn    func() (int, error)
		reply chan int
	}
	reqs := make(chan request, 100)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for r := range reqs {
				v, _ := r.fn()
				r.reply <- v
			}
		})
	}
	fn := func() (int, error) { return 1, nil }
	send = func() {
		reply := make(chan int, 1)
		reqs <- request{fn, reply}
		<-reply
	}
	return send, func() { close(reqs); wg.Wait() }
}

// BenchmarkMillionTasks submits 1,000,000 tasks through a pool of 8 workers
// with the default queue, without waiting for each, and reports the peak of
// the live heap (as the GC last measured it) and of the heap's objects: the
// submission queue keeps both bounded however many tasks are submitted.
//
//	go test -run x -bench MillionTasks -benchtime 1x ./worker/
func BenchmarkMillionTasks(b *testing.B) {
	const tasks = 1_000_000
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	for b.Loop() {
		runtime.GC()
		metrics.Read(samples)
		baseLive, baseObj := samples[0].Value.Uint64(), samples[1].Value.Uint64()
		var peakLive, peakObj uint64
		p, err := worker.NewPool(context.Background(), indexFactory, worker.Options{MaxWorkers: 8, DrainOnStop: true})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		for i := range tasks {
			if _, err := worker.Submit(ctx, p, inc); err != nil {
				b.Fatal(err)
			}
			if i%1000 == 0 {
				metrics.Read(samples)
				peakLive = max(peakLive, samples[0].Value.Uint64())
				peakObj = max(peakObj, samples[1].Value.Uint64())
			}
		}
		p.Stop(ctx)
		b.ReportMetric(float64(peakLive-min(peakLive, baseLive))/(1<<20), "peak-live-MiB")
		b.ReportMetric(float64(peakObj-min(peakObj, baseObj))/(1<<20), "peak-heap-MiB")
		if peakObj-min(peakObj, baseObj) > 64<<20 {
			b.Fatalf("the heap grew by %d MiB for %d tasks: not bounded", (peakObj-baseObj)>>20, tasks)
		}
	}
}
