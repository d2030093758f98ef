package bench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"

	"github.com/alitto/pond/v2"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

// The worker benchmarks put concurry's pool beside its peers in one binary,
// so that a run measures both under the same load:
//
//	go test -run '^$' -bench 'Worker' -count 6 . | tee worker.txt
//	benchstat -col /impl worker.txt
//
// The peers are a bare channel hand-off (the least any pool can cost: a
// goroutine receiving func values over a channel and sending each result
// back) and alitto/pond/v2.

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

// handoff is the bare channel hand-off: n goroutines receive func values on
// one channel and send each result back on the channel that came with it.
type handoff struct {
	reqs chan handoffRequest
	wg   sync.WaitGroup
}

type handoffRequest struct {
	fn    func() (int, error)
	reply chan int
}

func newHandoff(b *testing.B, n int) *handoff {
	h := &handoff{reqs: make(chan handoffRequest, 100)}
	for range n {
		h.wg.Go(func() {
			for r := range h.reqs {
				v, _ := r.fn()
				r.reply <- v
			}
		})
	}
	b.Cleanup(func() { close(h.reqs); h.wg.Wait() })
	return h
}

// run hands fn to a goroutine and waits for its result.
func (h *handoff) run(fn func() (int, error)) int {
	reply := make(chan int, 1)
	h.reqs <- handoffRequest{fn, reply}
	return <-reply
}

// BenchmarkWorkerRoundTrip submits a trivial task and waits for its result,
// with concurry's pool (Submit then Result, and Run), a bare channel
// hand-off and pond's pool, at 1 and 8 workers; serially (one submitter) and
// from GOMAXPROCS submitters.
func BenchmarkWorkerRoundTrip(b *testing.B) {
	task := func() (int, error) { return 1, nil }
	for _, n := range []int{1, 8} {
		for _, parallel := range []bool{false, true} {
			mode := "serial"
			if parallel {
				mode = "parallel"
			}
			run := func(b *testing.B, do func() error) {
				b.ReportAllocs()
				if !parallel {
					for b.Loop() {
						if err := do(); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := do(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.Run(fmt.Sprintf("workers=%d/%s/impl=concurry", n, mode), func(b *testing.B) {
				p := newWorkerPool(b, n)
				run(b, func() error {
					f, err := worker.Submit(bg, p, one)
					if err != nil {
						return err
					}
					_, err = f.Result(bg)
					return err
				})
			})
			b.Run(fmt.Sprintf("workers=%d/%s/impl=concurry-run", n, mode), func(b *testing.B) {
				p := newWorkerPool(b, n)
				run(b, func() error { _, err := worker.Run(bg, p, one); return err })
			})
			b.Run(fmt.Sprintf("workers=%d/%s/impl=channel", n, mode), func(b *testing.B) {
				h := newHandoff(b, n)
				run(b, func() error { h.run(task); return nil })
			})
			b.Run(fmt.Sprintf("workers=%d/%s/impl=pond", n, mode), func(b *testing.B) {
				p := newPondPool(b, n)
				run(b, func() error { _, err := p.SubmitErr(task).Wait(); return err })
			})
		}
	}
}

// BenchmarkWorkerBatch submits 1,000 trivial tasks to 8 workers, then waits
// for them all; the time is per task.
func BenchmarkWorkerBatch(b *testing.B) {
	const batch = 1000
	task := func() (int, error) { return 1, nil }
	b.Run("impl=concurry", func(b *testing.B) {
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
	b.Run("impl=pond", func(b *testing.B) {
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

// heldFutures is how many futures BenchmarkWorkerHeldFutures keeps.
const heldFutures = 1_000_000

// BenchmarkWorkerHeldFutures submits 1,000,000 trivial tasks to 8 workers and
// keeps every future in a slice, its result not read, until every task has
// completed and the pool has stopped; it reports the live heap they hold
// (the slice included), in bytes per future and in MiB for the million.
func BenchmarkWorkerHeldFutures(b *testing.B) {
	task := func() (int, error) { return 1, nil }
	b.Run("impl=concurry", func(b *testing.B) {
		heldBytes(b, func() any {
			p, err := worker.NewPool(bg, func(_ context.Context, i int) (int, error) { return i, nil },
				worker.Options{MaxWorkers: 8, MaxQueuedTasks: -1, DrainOnStop: true})
			if err != nil {
				b.Fatal(err)
			}
			futures := make([]*worker.Future[int], heldFutures)
			for i := range futures {
				if futures[i], err = worker.Submit(bg, p, one); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Stop(bg); err != nil { // drains: every future has completed
				b.Fatal(err)
			}
			return futures
		})
	})
	b.Run("impl=pond", func(b *testing.B) {
		heldBytes(b, func() any {
			p := pond.NewResultPool[int](8)
			futures := make([]pond.ResultTask[int], heldFutures)
			for i := range futures {
				futures[i] = p.SubmitErr(task)
			}
			p.StopAndWait() // every task has completed
			return futures
		})
	})
}

// heldBytes runs fill, which returns what it holds, and reports the growth of
// the live heap while it is held.
func heldBytes(b *testing.B, fill func() any) {
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 {
		runtime.GC()
		metrics.Read(samples)
		return samples[0].Value.Uint64()
	}
	b.ReportAllocs()
	var held uint64
	for b.Loop() {
		before := live()
		kept := fill()
		after := live()
		runtime.KeepAlive(kept)
		held = after - min(after, before)
	}
	b.ReportMetric(float64(held)/heldFutures, "held-B/future")
	b.ReportMetric(float64(held)/(1<<20), "held-MiB")
}
