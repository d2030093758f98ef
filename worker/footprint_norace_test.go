//go:build !race

package worker_test

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"

	"github.com/concurry/concurry/worker"
)

// The race detector allocates on its own account, so these tests count
// allocations and bytes only without it.

// A round trip allocates the future and the task's record, nothing more:
// no channel, no context, no closure, no goroutine.
func TestSubmitAndResultAllocateTwice(t *testing.T) {
	p := newPool(t, indexFactory, worker.Options{})
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		f, err := worker.Submit(ctx, p, index)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Result(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Fatalf("Submit+Result allocates %v times, want 2", allocs)
	}
}

// Run needs no future of its own: the task's record holds it.
func TestRunAllocatesOnce(t *testing.T) {
	p := newPool(t, indexFactory, worker.Options{})
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := worker.Run(ctx, p, index); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Fatalf("Run allocates %v times, want 1", allocs)
	}
}

// A completed future whose result is not read yet takes a few words of
// the heap, not its task's record.
func TestHeldFuturesAreSmall(t *testing.T) {
	const n = 20_000
	p, err := worker.NewPool(context.Background(), indexFactory, worker.Options{MaxWorkers: 2, MaxQueuedTasks: -1, DrainOnStop: true})
	if err != nil {
		t.Fatal(err)
	}
	before := liveHeap()
	futures := make([]*worker.Future[int], n)
	for i := range futures {
		futures[i] = submit(t, p, index)
	}
	if err := p.Stop(context.Background()); err != nil { // drains: every future has completed
		t.Fatal(err)
	}
	held := liveHeap() - before
	runtime.KeepAlive(futures)
	if perFuture := held / n; perFuture > 64+8 { // the future, and its pointer in the slice
		t.Fatalf("a held future takes %d bytes of the live heap", perFuture)
	}
}

// liveHeap returns the bytes of the heap a full collection leaves live.
func liveHeap() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}
