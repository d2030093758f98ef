package backendtest

import (
	"context"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

var allAlgorithms = []concurry.Algorithm{
	concurry.TokenBucket, concurry.LeakyBucket, concurry.SlidingWindow, concurry.FixedWindow, concurry.GCRA,
}

func algorithmCases() []Case {
	var cs []Case
	for _, alg := range allAlgorithms {
		cs = append(cs,
			Case{"Burst/" + alg.String(), func(t *testing.T, e *Env) { testBurst(e, alg) }},
			Case{"Refund/" + alg.String(), func(t *testing.T, e *Env) { testRefund(e, alg) }},
			Case{"DeadlineCannotBeMet/" + alg.String(), func(t *testing.T, e *Env) { testDeadline(e, alg) }},
			Case{"WaitsForRate/" + alg.String(), func(t *testing.T, e *Env) { testWaitsForRate(e, alg) }},
		)
	}
	return append(cs,
		Case{"PartialRefund", testPartialRefund},
		Case{"Overage", testOverage},
		Case{"SharedKeyWindows", testSharedKeyWindows},
	)
}

// testBurst: a full bucket admits Capacity calls at once, except LeakyBucket,
// which admits one and paces the rest.
func testBurst(e *Env, alg concurry.Algorithm) {
	ls := e.Set(concurry.CallLimit{Window: Long, Capacity: 5, Algorithm: alg})
	want := 5
	if alg == concurry.LeakyBucket {
		want = 1
	}
	for i := range want {
		a, err := ls.TryAcquire(context.Background(), nil)
		if err != nil {
			e.T.Fatalf("%v: call %d of %d: %v", alg, i+1, want, err)
		}
		e.Done(a, nil)
	}
	e.Blocked(ls, nil)
	if alg != concurry.LeakyBucket {
		e.WantAvailable(ls, concurry.CallKey, 0)
	}
}

// testRefund: unused units come back for TokenBucket and GCRA only.
func testRefund(e *Env, alg concurry.Algorithm) {
	ls := e.Set(concurry.RateLimit{Key: "tokens", Window: Long, Capacity: 10, Algorithm: alg})
	a := e.MustTry(ls, concurry.Amounts{"tokens": 10})
	e.Done(a, concurry.Amounts{"tokens": 0})
	again, err := ls.TryAcquire(context.Background(), concurry.Amounts{"tokens": 10})
	if alg.Refunds() {
		if err != nil {
			e.T.Fatalf("%v refunds, yet the bucket is not full again: %v", alg, err)
		}
		e.Done(again, concurry.Amounts{"tokens": 10})
		// A whole-unit refund may lose the fraction refilled since the take.
		if got := e.Stat(ls, "tokens").Refunded; got < 9 || got > 10 {
			e.T.Fatalf("Refunded = %d, want 10 (or 9)", got)
		}
		return
	}
	e.WantErr(err, concurry.ErrWouldBlock, alg.String()+" must not refund")
	if got := e.Stat(ls, "tokens").Refunded; got != 0 {
		e.T.Fatalf("Refunded = %d, want 0", got)
	}
}

// testDeadline: a deadline before the instant the rate can grant fails at
// once and takes nothing.
func testDeadline(e *Env, alg concurry.Algorithm) {
	ls := e.Set(concurry.CallLimit{Window: Long, Capacity: 1, Algorithm: alg})
	e.Done(e.MustTry(ls, nil), nil)
	before := e.Stat(ls, concurry.CallKey).Available
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit/2)
	defer cancel()
	start := time.Now()
	_, err := ls.Acquire(ctx, nil)
	e.WantErr(err, context.DeadlineExceeded, "Acquire with a deadline that cannot be met")
	if d := time.Since(start); d > waitLimit/4 {
		e.T.Fatalf("a deadline that cannot be met took %v to fail", d)
	}
	if after := e.Stat(ls, concurry.CallKey).Available; after != before {
		e.T.Fatalf("available went from %d to %d", before, after)
	}
}

// testWaitsForRate: a blocked Acquire is granted when the rate allows, not
// before (FixedWindow: at the next window, wherever it falls).
func testWaitsForRate(e *Env, alg concurry.Algorithm) {
	const window = 300 * time.Millisecond
	ls := e.Set(concurry.CallLimit{Window: window, Capacity: 1, Algorithm: alg})
	first := time.Now()
	e.Done(e.MustTry(ls, nil), nil)
	a := e.MustAcquire(ls, nil)
	waited := time.Since(first)
	e.Done(a, nil)
	if alg != concurry.FixedWindow && waited < window*2/3 {
		e.T.Fatalf("%v granted a second call after %v, within the %v window", alg, waited, window)
	}
}

// testPartialRefund: reports replace each other, and the acquisition
// settles at release: the last report is refunded then, not before.
func testPartialRefund(t *testing.T, e *Env) {
	ls := e.Set(concurry.RateLimit{Key: "tokens", Window: Long, Capacity: 100})
	a := e.MustAcquire(ls, concurry.Amounts{"tokens": 60})
	e.WantAvailable(ls, "tokens", 40)
	for _, used := range []int64{20, 50} {
		if err := a.Update(concurry.Amounts{"tokens": used}); err != nil {
			t.Fatal(err)
		}
		e.WantAvailable(ls, "tokens", 40)
	}
	e.Done(a, nil)
	e.WantAvailable(ls, "tokens", 50)
	if got := e.Stat(ls, "tokens").Refunded; got != 10 {
		t.Fatalf("Refunded = %d, want 10", got)
	}
}

func testOverage(t *testing.T, e *Env) {
	ls := e.Set(concurry.RateLimit{Key: "tokens", Window: Long, Capacity: 100})
	e.Done(e.MustAcquire(ls, concurry.Amounts{"tokens": 10}), concurry.Amounts{"tokens": 30})
	e.WantAvailable(ls, "tokens", 70)
	if got := e.Stat(ls, "tokens").Overage; got != 20 {
		t.Fatalf("Overage = %d, want 20", got)
	}
	e.Blocked(ls, concurry.Amounts{"tokens": 71})
	// Into debt: nothing is available until the debt is paid off.
	e.Done(e.MustAcquire(ls, concurry.Amounts{"tokens": 70}), concurry.Amounts{"tokens": 150})
	e.WantAvailable(ls, "tokens", 0)
	e.Blocked(ls, concurry.Amounts{"tokens": 1})
}

func testSharedKeyWindows(t *testing.T, e *Env) {
	ls := e.Set(
		concurry.RateLimit{Key: "tokens", Window: 2 * Long, Capacity: 150},
		concurry.RateLimit{Key: "tokens", Window: Long, Capacity: 100},
	)
	e.Done(e.MustAcquire(ls, concurry.Amounts{"tokens": 60}), concurry.Amounts{"tokens": 60})
	if a, b := e.StatAt(ls, "tokens", 0).Available, e.StatAt(ls, "tokens", 1).Available; a != 90 || b != 40 {
		t.Fatalf("available %d and %d, want 90 and 40", a, b)
	}
	e.Blocked(ls, concurry.Amounts{"tokens": 41})
	e.Done(e.MustAcquire(ls, concurry.Amounts{"tokens": 40}), concurry.Amounts{"tokens": 40})
	e.Blocked(ls, concurry.Amounts{"tokens": 1})
	if got := e.StatAt(ls, "tokens", 0).Available; got != 50 {
		t.Fatalf("the longer window has %d available, want 50", got)
	}
}
