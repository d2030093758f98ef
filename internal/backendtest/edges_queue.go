package backendtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// queueCases returns the cases of the queue of waiters: its order, its
// deadlines and how a waiter leaves it, seen through WaitStart.
func queueCases() []Case {
	return []Case{
		{"SetsOfANameShareOneQueue", testSetsOfANameShareOneQueue},
		{"LargeRequestNotStarvedByAStream", testLargeRequestNotStarved},
		{"DeadlineBehindAResourceWaiterWaits", testDeadlineBehindAResourceWaiter},
		{"CancelledHeadHandsOnTheTurn", testCancelledHeadHandsOn},
	}
}

// queuedSet returns a set of limits under name in the backend, closed when
// the test ends, that sends on queued each time a request starts to wait.
func queuedSet(e *Env, name string, queued chan<- struct{}, limits ...concurry.Limit) *concurry.LimitSet {
	e.T.Helper()
	ls, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithBackend(e.Backend),
		concurry.WithHooks(concurry.Hooks{WaitStart: func(concurry.WaitInfo) { queued <- struct{}{} }}))
	if err != nil {
		e.T.Fatalf("NewLimitSet(%q): %v", name, err)
	}
	e.T.Cleanup(func() { ls.Close() })
	return ls
}

// awaitQueued returns once a request of a queuedSet has started to wait.
func awaitQueued(e *Env, queued <-chan struct{}) {
	e.T.Helper()
	select {
	case <-queued:
	case <-time.After(waitLimit):
		e.T.Fatalf("no request started to wait within %v", waitLimit)
	}
}

// notReturned fails the test if the Acquire behind ch has returned.
func notReturned(e *Env, ch <-chan Result, why string) {
	e.T.Helper()
	select {
	case r := <-ch:
		e.T.Fatalf("%s, but it returned (%v)", why, r.Err)
	default:
	}
}

// testSetsOfANameShareOneQueue: two LimitSets of one name in one backend
// share one queue, so a TryAcquire through one never jumps a waiter of the
// other; Close of one wakes its own waiters with ErrClosed, not the other's,
// and its granted acquisition can still be released.
func testSetsOfANameShareOneQueue(t *testing.T, e *Env) {
	name := e.Name()
	queued := make(chan struct{}, 4)
	limits := []concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 2}, concurry.CallLimit{Window: Long, Capacity: 100}}
	x, y := queuedSet(e, name, queued, limits...), queuedSet(e, name, queued, limits...)
	held := e.MustTry(x, nil)
	xw := e.Go(e.Ctx(), x, concurry.Amounts{"conn": 2})
	awaitQueued(e, queued)
	e.Blocked(y, nil) // one unit is free, but x's waiter is first
	yw := e.Go(e.Ctx(), y, concurry.Amounts{"conn": 2})
	awaitQueued(e, queued)
	if err := x.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := e.Wait(xw)
	e.WantErr(err, concurry.ErrClosed, "the waiter of the closed set")
	notReturned(e, yw, "x's holding still holds a unit y's waiter needs")
	e.WantInUse(y, "conn", 1) // x's holding only: y's waiter was not granted
	e.Done(held, nil)         // granted before Close: it still releases
	a, err := e.Wait(yw)
	if err != nil {
		t.Fatalf("y's waiter after x closed: %v", err)
	}
	e.Done(a, nil)
}

// testLargeRequestNotStarved: "a large request is not starved by a stream of
// small ones" — five small waiters behind a big one, the holdings released
// one at a time (each release would fit a small one).
func testLargeRequestNotStarved(t *testing.T, e *Env) {
	queued := make(chan struct{}, 8)
	ls := queuedSet(e, e.Name(), queued, concurry.ResourceLimit{Key: "conn", Capacity: 3})
	var holds []*concurry.Acquisition
	for range 3 {
		holds = append(holds, e.MustTry(ls, nil))
	}
	big := e.Go(e.Ctx(), ls, concurry.Amounts{"conn": 3})
	awaitQueued(e, queued)
	var smalls []<-chan Result
	for range 5 {
		smalls = append(smalls, e.Go(e.Ctx(), ls, nil))
		awaitQueued(e, queued)
	}
	for _, h := range holds {
		e.Done(h, nil)
		e.Stat(ls, "conn") // a round trip, in which a small one that jumped would be granted
	}
	a, err := e.Wait(big)
	if err != nil {
		t.Fatalf("big: %v", err)
	}
	for _, s := range smalls {
		notReturned(e, s, "a small waiter must not be granted before the big one released")
	}
	e.Done(a, nil)
	for _, s := range smalls {
		x, err := e.Wait(s)
		if err != nil {
			t.Fatalf("small: %v", err)
		}
		e.Done(x, nil) // capacity 3 for 5 smalls: each must go back
	}
}

// testDeadlineBehindAResourceWaiter: "A context deadline that cannot be met
// fails at once" — but one that may be met must not: behind a waiter that
// only a release can serve, the request waits, and a release before the
// deadline lets both through.
func testDeadlineBehindAResourceWaiter(t *testing.T, e *Env) {
	queued := make(chan struct{}, 8)
	ls := queuedSet(e, e.Name(), queued,
		concurry.RateLimit{Key: "u", Window: Long, Capacity: 10},
		concurry.ResourceLimit{Key: "conn", Capacity: 2})
	held := e.MustTry(ls, concurry.Amounts{"u": 1})
	big := e.Go(e.Ctx(), ls, concurry.Amounts{"u": 1, "conn": 2})
	awaitQueued(e, queued)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	third := e.Go(ctx, ls, concurry.Amounts{"u": 1})
	select {
	case <-queued:
	case r := <-third:
		t.Fatalf("behind a waiter for a release, with a deadline a release can meet: %v before waiting", r.Err)
	}
	e.Done(held, concurry.Amounts{"u": 1})
	ab, err := e.Wait(big)
	if err != nil {
		t.Fatalf("big: %v", err)
	}
	notReturned(e, third, "the big waiter holds every unit")
	e.Done(ab, concurry.Amounts{"u": 1})
	a, err := e.Wait(third)
	if err != nil {
		t.Fatalf("%v; the deadline could be met, it must not fail", err)
	}
	e.Done(a, concurry.Amounts{"u": 1})
}

// testCancelledHeadHandsOn: "cancellation while waiting leaves the set
// exactly as it was" — the head waiter, cancelled, hands its turn on: the
// one behind it is granted at once when its request fits, and nothing was
// spent of a limit that never refunds.
func testCancelledHeadHandsOn(t *testing.T, e *Env) {
	queued := make(chan struct{}, 8)
	ls := queuedSet(e, e.Name(), queued,
		concurry.CallLimit{Window: Long, Capacity: 100, Algorithm: concurry.FixedWindow},
		concurry.ResourceLimit{Key: "conn", Capacity: 2})
	held := e.MustTry(ls, nil)
	calls := e.Stat(ls, concurry.CallKey).Available
	ctx, cancel := context.WithCancel(e.Ctx())
	head := e.Go(ctx, ls, concurry.Amounts{"conn": 2})
	awaitQueued(e, queued)
	next := e.Go(e.Ctx(), ls, nil)
	awaitQueued(e, queued)
	start := time.Now()
	cancel()
	if _, err := e.Wait(head); !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled head: %v", err)
	}
	a, err := e.Wait(next)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the waiter behind the cancelled head was granted %v after the cancel", d)
	}
	if got := e.Stat(ls, concurry.CallKey).Available; got != calls-1 {
		t.Fatalf("calls available %d, want %d: the cancelled wait spent a call", got, calls-1)
	}
	e.Done(a, nil)
	e.Done(held, nil)
}
