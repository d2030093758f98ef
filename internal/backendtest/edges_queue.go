package backendtest

import (
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// queueCases returns the cases of the one queue that the LimitSets of one
// name in one backend share.
func queueCases() []Case {
	return []Case{
		{"SetsOfANameShareOneQueue", testSetsOfANameShareOneQueue},
	}
}

// testSetsOfANameShareOneQueue: two LimitSets of one name in one backend
// share one queue, so a TryAcquire through one never jumps a waiter of the
// other; Close of one wakes its own waiters with ErrClosed, not the other's,
// and its granted acquisition can still be released.
func testSetsOfANameShareOneQueue(t *testing.T, e *Env) {
	name := e.Name()
	queued := make(chan struct{}, 4)
	open := func() *concurry.LimitSet {
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.ResourceLimit{Key: "conn", Capacity: 2},
			concurry.CallLimit{Window: Long, Capacity: 100},
		}, concurry.WithName(name), concurry.WithBackend(e.Backend),
			concurry.WithHooks(concurry.Hooks{WaitStart: func(concurry.WaitInfo) { queued <- struct{}{} }}))
		if err != nil {
			t.Fatalf("NewLimitSet(%q): %v", name, err)
		}
		t.Cleanup(func() { ls.Close() })
		return ls
	}
	waitQueued := func() {
		t.Helper()
		select {
		case <-queued:
		case <-time.After(waitLimit):
			t.Fatalf("no request started to wait within %v", waitLimit)
		}
	}
	x, y := open(), open()
	held := e.MustTry(x, nil)
	xw := e.Go(e.Ctx(), x, concurry.Amounts{"conn": 2})
	waitQueued()
	e.Blocked(y, nil) // one unit is free, but x's waiter is first
	yw := e.Go(e.Ctx(), y, concurry.Amounts{"conn": 2})
	waitQueued()
	if err := x.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := e.Wait(xw)
	e.WantErr(err, concurry.ErrClosed, "the waiter of the closed set")
	select {
	case r := <-yw:
		t.Fatalf("y's waiter returned (%v) while x's holding still holds a unit", r.Err)
	default:
	}
	e.WantInUse(y, "conn", 1) // x's holding only: y's waiter was not granted
	e.Done(held, nil)         // granted before Close: it still releases
	a, err := e.Wait(yw)
	if err != nil {
		t.Fatalf("y's waiter after x closed: %v", err)
	}
	e.Done(a, nil)
}
