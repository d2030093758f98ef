package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/alitto/pond/v2"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

func one(context.Context, int, concurry.Limiter) (int, error) { return 1, nil }

func newWorkerPool(b *testing.B, n int) *worker.Pool[int] {
	p, err := worker.NewPool(bg, func(_ context.Context, i int) (int, error) { return i, nil }, worker.Options{MaxWorkers: n})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Stop(bg) })
	return p
}

func newPondPool(b *testing.B, n int) pond.ResultPool[int] {
	p := pond.NewResultPool[int](n)
	b.Cleanup(p.StopAndWait)
	return p
}

// BenchmarkWorkerRoundTrip submits a trivial task and waits for its result,
// with concurry's worker pool and with pond's, at 1 and 8 workers.
func BenchmarkWorkerRoundTrip(b *testing.B) {
	task := func() (int, error) { return 1, nil }
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("concurry/%d", n), func(b *testing.B) {
			p := newWorkerPool(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := worker.Run(bg, p, one); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("pond/%d", n), func(b *testing.B) {
			p := newPondPool(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.SubmitErr(task).Wait(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("concurry/%d/parallel", n), func(b *testing.B) {
			p := newWorkerPool(b, n)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := worker.Run(bg, p, one); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(fmt.Sprintf("pond/%d/parallel", n), func(b *testing.B) {
			p := newPondPool(b, n)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := p.SubmitErr(task).Wait(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkWorkerBatch submits 1,000 trivial tasks to 8 workers, then waits
// for them all; the time is per task.
func BenchmarkWorkerBatch(b *testing.B) {
	const batch = 1000
	task := func() (int, error) { return 1, nil }
	b.Run("concurry", func(b *testing.B) {
		p := newWorkerPool(b, 8)
		futures := make([]*worker.Future[int], batch)
		b.ReportAllocs()
		for b.Loop() {
			for i := range futures {
				f, err := worker.Submit(bg, p, one)
				if err != nil {
					b.Fatal(err)
				}
				futures[i] = f
			}
			if _, err := worker.Gather(bg, futures); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/task")
	})
	b.Run("pond", func(b *testing.B) {
		p := newPondPool(b, 8)
		tasks := make([]pond.ResultTask[int], batch)
		b.ReportAllocs()
		for b.Loop() {
			for i := range tasks {
				tasks[i] = p.SubmitErr(task)
			}
			for _, t := range tasks {
				if _, err := t.Wait(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/task")
	})
}
