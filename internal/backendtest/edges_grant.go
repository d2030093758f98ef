package backendtest

import (
	"context"
	"errors"
	"testing"

	"github.com/concurry/concurry"
)

// grantCases returns the cases of a waiter's ctx checked at the instant of its grant.
func grantCases() []Case {
	return []Case{
		{"CancelledWaiterTakesNothing", testCancelledWaiterTakesNothing},
	}
}

// testCancelledWaiterTakesNothing cancels a waiter and at once releases what
// it waits for. The release may reach the backend before the waiter notices
// its cancellation; it must not be granted all the same (x/sync/semaphore had
// that bug: go.dev/issue/63615). Acquire returns ctx's error and no
// acquisition, and the set is as it was. Rounds make the race likely.
func testCancelledWaiterTakesNothing(t *testing.T, e *Env) {
	const rounds = 20
	ls := e.Set(concurry.ResourceLimit{Key: "conn", Capacity: 2})
	for i := range rounds {
		held := e.MustTry(ls, nil) // one of the two
		ctx, cancel := context.WithCancel(e.Ctx())
		waiter := e.Go(ctx, ls, concurry.Amounts{"conn": 2})
		e.WaitQueued(ls, concurry.Amounts{"conn": 1})
		cancel()
		e.Done(held, nil)
		a, err := e.Wait(waiter)
		if a != nil {
			a.Release()
			t.Fatalf("round %d: the cancelled waiter was granted (error %v)", i, err)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: cancelled waiter: %v, want context.Canceled", i, err)
		}
		e.WantInUse(ls, "conn", 0)
	}
}
