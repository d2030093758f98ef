package backendtest

import (
	"context"
	"errors"
	"testing"

	"github.com/concurry/concurry"
)

func lifecycleCases() []Case {
	return []Case{
		{"CloseWakesWaiters", testClose},
		{"SharedByName", testSharedByName},
		{"LimitMismatch", testMismatch},
		{"PoolWaitsOnEverySet", testPool},
	}
}

func testClose(t *testing.T, e *Env) {
	ls := connTokens(e, 2)
	held := e.MustAcquire(ls, probe)
	waiter := e.Go(e.Ctx(), ls, concurry.Amounts{"conn": 2, "tokens": 1})
	e.WaitQueued(ls, probe)
	if err := ls.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := e.Wait(waiter)
	e.WantErr(err, concurry.ErrClosed, "waiter of a closed set")
	_, err = ls.TryAcquire(context.Background(), probe)
	e.WantErr(err, concurry.ErrClosed, "TryAcquire on a closed set")
	_, err = ls.Acquire(e.Ctx(), probe)
	e.WantErr(err, concurry.ErrClosed, "Acquire on a closed set")
	e.Done(held, concurry.Amounts{"tokens": 0}) // granted acquisitions still update and release
	e.WantAvailable(ls, "tokens", 10)
	if err := ls.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testSharedByName(t *testing.T, e *Env) {
	name := e.Name()
	limits := []concurry.Limit{concurry.CallLimit{Window: Long, Capacity: 10}, concurry.ResourceLimit{Key: "conn", Capacity: 2}}
	a, b := e.Named(name, limits...), e.Named(name, limits...)
	held := e.MustAcquire(a, nil)
	e.WantInUse(b, "conn", 1)
	e.WantAvailable(b, concurry.CallKey, 9)
	e.Done(e.MustTry(b, nil), nil)
	e.Blocked(a, concurry.Amounts{"conn": 2})
	e.Done(held, nil)
	e.WantInUse(a, "conn", 0)
	e.WantAvailable(a, concurry.CallKey, 8)
}

func testMismatch(t *testing.T, e *Env) {
	name := e.Name()
	e.Named(name, concurry.CallLimit{Window: Long, Capacity: 10})
	others := [][]concurry.Limit{
		{concurry.CallLimit{Window: Long, Capacity: 11}},
		{concurry.CallLimit{Window: Long, Capacity: 10, Algorithm: concurry.GCRA}},
		{concurry.CallLimit{Window: Long / 2, Capacity: 10}},
		{concurry.CallLimit{Window: Long, Capacity: 10}, concurry.ResourceLimit{Key: "conn", Capacity: 1}},
	}
	for _, limits := range others {
		_, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithBackend(e.Backend))
		if !errors.Is(err, concurry.ErrLimitMismatch) {
			t.Fatalf("%v under the name of another definition: got %v, want ErrLimitMismatch", limits, err)
		}
	}
}

// testPool: a LimitPool waiting on several sets takes exactly one grant.
func testPool(t *testing.T, e *Env) {
	x := e.Set(concurry.ResourceLimit{Key: "conn", Capacity: 1})
	y := e.Set(concurry.ResourceLimit{Key: "conn", Capacity: 1})
	hx, hy := e.MustAcquire(x, nil), e.MustAcquire(y, nil)
	pool, err := concurry.NewLimitPool([]*concurry.LimitSet{x, y})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Result, 1)
	go func() {
		a, err := pool.Acquire(e.Ctx(), nil)
		got <- Result{a, err}
	}()
	e.Done(hy, nil)
	a, err := e.Wait(got)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	if a.Set() != y {
		t.Fatal("the pool's grant did not come from the set released")
	}
	e.Done(hx, nil)
	e.WantInUse(x, "conn", 0) // the losing wait took nothing
	e.WantInUse(y, "conn", 1)
	e.Done(a, nil)
}
