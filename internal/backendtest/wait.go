package backendtest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

func waitCases() []Case {
	return []Case{
		{"TryAcquireDoesNotJumpWaiter", testNoJump},
		{"ReleaseWakesWaiter", testReleaseWakes},
		{"FIFO", testFIFO},
		{"CancelLeavesStateUnchanged", testCancel},
		{"DeadlineWhileWaiting", testDeadlineWhileWaiting},
		{"ConcurrentResourceBound", testConcurrentBound},
	}
}

// connTokens is a set whose probe {"conn": 1, "tokens": 1} can be granted
// whenever a connection is free and no one waits.
func connTokens(e *Env, conns int64) *concurry.LimitSet {
	return e.Set(
		concurry.RateLimit{Key: "tokens", Window: Long, Capacity: 10},
		concurry.ResourceLimit{Key: "conn", Capacity: conns},
	)
}

var probe = concurry.Amounts{"conn": 1, "tokens": 1}

func testNoJump(t *testing.T, e *Env) {
	ls := connTokens(e, 2)
	held := e.MustAcquire(ls, probe)
	waiter := e.Go(e.Ctx(), ls, concurry.Amounts{"conn": 2, "tokens": 1})
	e.WaitQueued(ls, probe) // fails unless TryAcquire refuses while a connection is free
	e.WantInUse(ls, "conn", 1)
	e.Done(held, concurry.Amounts{"tokens": 1})
	a, err := e.Wait(waiter)
	if err != nil {
		t.Fatalf("waiter: %v", err)
	}
	e.WantInUse(ls, "conn", 2)
	e.Done(a, concurry.Amounts{"tokens": 1})
}

func testReleaseWakes(t *testing.T, e *Env) {
	ls := e.Set(concurry.ResourceLimit{Key: "conn", Capacity: 1})
	held := e.MustAcquire(ls, nil)
	waiter := e.Go(e.Ctx(), ls, nil)
	e.Done(held, nil)
	a, err := e.Wait(waiter)
	if err != nil {
		t.Fatalf("waiter: %v", err)
	}
	e.Done(a, nil)
	e.WantInUse(ls, "conn", 0)
}

// testFIFO: a large request is not starved by a smaller one behind it.
func testFIFO(t *testing.T, e *Env) {
	ls := connTokens(e, 3)
	h1, h2 := e.MustAcquire(ls, probe), e.MustAcquire(ls, probe)
	big := e.Go(e.Ctx(), ls, concurry.Amounts{"conn": 3, "tokens": 1})
	e.WaitQueued(ls, probe)
	small := e.Go(e.Ctx(), ls, probe)
	e.Done(h1, concurry.Amounts{"tokens": 1}) // two free: enough for small, not for big
	e.Done(h2, concurry.Amounts{"tokens": 1})
	a, err := e.Wait(big)
	if err != nil {
		t.Fatalf("big: %v", err)
	}
	select {
	case r := <-small:
		t.Fatalf("the small request behind the big one was granted first (err %v)", r.Err)
	default:
	}
	e.Done(a, concurry.Amounts{"tokens": 1})
	b, err := e.Wait(small)
	if err != nil {
		t.Fatalf("small: %v", err)
	}
	e.Done(b, concurry.Amounts{"tokens": 1})
}

// testCancel: cancelling a waiting Acquire leaves the set as it was.
func testCancel(t *testing.T, e *Env) {
	ls := connTokens(e, 2)
	held := e.MustAcquire(ls, probe)
	ctx, cancel := context.WithCancel(e.Ctx())
	waiter := e.Go(ctx, ls, concurry.Amounts{"conn": 2, "tokens": 5})
	e.WaitQueued(ls, probe)
	cancel()
	_, err := e.Wait(waiter)
	e.WantErr(err, context.Canceled, "cancelled Acquire")
	e.WantAvailable(ls, "tokens", 9)
	e.WantInUse(ls, "conn", 1)
	e.Done(e.MustTry(ls, probe), concurry.Amounts{"tokens": 1}) // the queue is empty again
	e.Done(held, concurry.Amounts{"tokens": 1})
	e.WantInUse(ls, "conn", 0)
}

func testDeadlineWhileWaiting(t *testing.T, e *Env) {
	ls := connTokens(e, 1)
	held := e.MustAcquire(ls, probe)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := ls.Acquire(ctx, concurry.Amounts{"tokens": 5})
	e.WantErr(err, context.DeadlineExceeded, "Acquire past its deadline")
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("gave up after %v, before the deadline", d)
	}
	e.WantAvailable(ls, "tokens", 9)
	e.WantInUse(ls, "conn", 1)
	e.Done(held, concurry.Amounts{"tokens": 1})
	e.Done(e.MustTry(ls, probe), concurry.Amounts{"tokens": 1})
}

// testConcurrentBound: many goroutines never hold more than the capacity.
func testConcurrentBound(t *testing.T, e *Env) {
	const capacity, workers, rounds = 3, 16, 20
	ls := e.Set(concurry.CallLimit{Window: Long, Capacity: workers * rounds}, concurry.ResourceLimit{Key: "conn", Capacity: capacity})
	var inUse, peak atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range rounds {
				a, err := ls.Acquire(e.Ctx(), nil)
				if err != nil {
					errs <- err
					return
				}
				n := inUse.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				inUse.Add(-1)
				if err := a.Release(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if p := peak.Load(); p > capacity {
		t.Fatalf("%d held at once, capacity %d", p, capacity)
	}
	e.WantAvailable(ls, concurry.CallKey, 0)
	e.WantInUse(ls, "conn", 0)
}
