package worker_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

// bigKey is the context key of the payload TestHeldFutureKeepsNothingOfItsTask
// watches.
type bigKey struct{}

// submitHeavy submits a task whose closure and submitter's context both
// hold a payload, and returns the future and a channel closed when the
// payload has been collected.
func submitHeavy(t *testing.T, p *worker.Pool[int]) (*worker.Future[int], <-chan struct{}) {
	t.Helper()
	payload := new([1 << 16]byte)
	payload[0] = 1
	collected := make(chan struct{})
	runtime.AddCleanup(payload, func(ch chan struct{}) { close(ch) }, collected)
	ctx := context.WithValue(context.Background(), bigKey{}, payload)
	f, err := worker.Submit(ctx, p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
		return int(payload[0]) + len(ctx.Value(bigKey{}).(*[1 << 16]byte)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, collected
}

// A future holds only the task's outcome: once the task has ended, its
// closure, its context (and so the submitter's) and its limiter can be
// collected while the future is held.
func TestHeldFutureKeepsNothingOfItsTask(t *testing.T) {
	p := newPool(t, indexFactory, worker.Options{})
	f, collected := submitHeavy(t, p)
	if got := result(t, f); got != 1+1<<16 {
		t.Fatalf("result %d", got)
	}
	runtime.GC() // queues the cleanup if nothing reaches the payload
	select {
	case <-collected:
	case <-time.After(10 * time.Second):
		t.Fatal("a completed future keeps its task's closure or context alive")
	}
	if r, err := f.Result(context.Background()); r != 1+1<<16 || err != nil {
		t.Fatalf("the held future: %d, %v", r, err)
	}
}

// Futures held after their pool has stopped keep nothing of the pool: not
// its workers, not their values.
func TestHeldFuturesKeepNotTheirPool(t *testing.T) {
	collected := make(chan struct{})
	futures := fillAndDrop(t, collected)
	runtime.GC() // queues the cleanup if nothing reaches the worker's value
	select {
	case <-collected:
	case <-time.After(10 * time.Second):
		t.Fatal("completed futures keep their stopped pool's worker values alive")
	}
	for _, f := range futures {
		if r, err := f.Result(context.Background()); r != 1 || err != nil {
			t.Fatalf("a held future: %d, %v", r, err)
		}
	}
}

// fillAndDrop runs tasks on a pool whose one worker's value is watched by a
// cleanup that closes collected, stops the pool and returns the futures.
func fillAndDrop(t *testing.T, collected chan struct{}) []*worker.Future[int] {
	t.Helper()
	type value struct{ payload [1 << 16]byte }
	p, err := worker.NewPool(context.Background(), func(context.Context, int) (*value, error) {
		v := &value{payload: [1 << 16]byte{1}}
		runtime.AddCleanup(v, func(ch chan struct{}) { close(ch) }, collected)
		return v, nil
	}, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var futures []*worker.Future[int]
	for range 3 {
		f, err := worker.Submit(context.Background(), p, func(_ context.Context, v *value, _ concurry.Limiter) (int, error) {
			return int(v.payload[0]), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	if _, err := futures[2].Result(context.Background()); err != nil { // parks, so the pool has parkers
		t.Fatal(err)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	return futures
}
