package backendtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// deadlineCases returns the cases of deadlines projected through the waiters ahead.
func deadlineCases() []Case {
	var cs []Case
	for _, alg := range []concurry.Algorithm{concurry.GCRA, concurry.TokenBucket} {
		cs = append(cs,
			Case{"DeadlineBehindWaiterFailsAtOnce/" + alg.String(), func(t *testing.T, e *Env) { testDeadlineBehindWaiter(t, e, alg) }},
			Case{"DeadlineBehindWaiterMet/" + alg.String(), func(t *testing.T, e *Env) { testDeadlineBehindWaiterMet(t, e, alg) }},
		)
	}
	return cs
}

// twoPerTwoSeconds returns a set of 2 units per 2 s of alg, drained, whose
// next unit is due 1 s from now and the one after 2 s from now, with a
// probe key for WaitQueued.
func twoPerTwoSeconds(e *Env, alg concurry.Algorithm) *concurry.LimitSet {
	ls := e.Set(
		concurry.RateLimit{Key: "r", Window: 2 * time.Second, Capacity: 2, Algorithm: alg},
		concurry.RateLimit{Key: "probe", Window: Long, Capacity: 1000},
	)
	e.Done(e.MustTry(ls, concurry.Amounts{"r": 2}), concurry.Amounts{"r": 2})
	return ls
}

var one = concurry.Amounts{"r": 1}

// testDeadlineBehindWaiter: W1 (no deadline) is due in 1 s; W2, behind it,
// can only be served in 2 s, so its deadline of 1.5 s fails at once, taking
// nothing, and W1 is served as if W2 had never come.
func testDeadlineBehindWaiter(t *testing.T, e *Env, alg concurry.Algorithm) {
	ls := twoPerTwoSeconds(e, alg)
	w1 := e.Go(e.Ctx(), ls, one)
	e.WaitQueued(ls, concurry.Amounts{"probe": 1})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := ls.Acquire(ctx, one)
	e.WantErr(err, context.DeadlineExceeded, "Acquire behind a waiter, with a deadline before its turn")
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("the unmeetable deadline failed after %v, not at once", d)
	}
	if e.Caps.Facts { // its unit alone would come in 1 s; behind W1, in 2 s
		var r *concurry.RefusalError
		if !errors.As(err, &r) || r.RetryAfter < 1500*time.Millisecond {
			t.Fatalf("refusal %+v: want a RefusalError whose RetryAfter (about 2 s) counts the waiter ahead", r)
		}
	}
	select {
	case r := <-w1:
		t.Fatalf("the waiter ahead returned before its turn: %v", r.Err)
	default:
	}
	a, err := e.Wait(w1)
	if err != nil {
		t.Fatalf("the waiter ahead: %v", err)
	}
	e.Done(a, one)
	e.Blocked(ls, one) // W2 took nothing: the next unit is 1 s away again
}

// testDeadlineBehindWaiterMet: a deadline that the projection through the
// waiter ahead can meet waits, and is granted after that waiter.
func testDeadlineBehindWaiterMet(t *testing.T, e *Env, alg concurry.Algorithm) {
	ls := twoPerTwoSeconds(e, alg)
	w1 := e.Go(e.Ctx(), ls, one)
	e.WaitQueued(ls, concurry.Amounts{"probe": 1})
	ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
	defer cancel()
	a2, err := ls.Acquire(ctx, one)
	if err != nil {
		t.Fatalf("Acquire behind a waiter, with a deadline after its turn: %v", err)
	}
	select {
	case r := <-w1:
		if r.Err != nil {
			t.Fatalf("the waiter ahead: %v", r.Err)
		}
		e.Done(r.A, one)
	default:
		t.Fatal("granted before the waiter ahead of it")
	}
	e.Done(a2, one)
}
