package backendtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
)

// rangeCases returns the cases of limits at the ends of the contract's range (2^50, 366 days) and sums that must not overflow.
func rangeCases() []Case {
	cs := []Case{
		{"Range/OutsideIsInvalid", testOutsideIsInvalid},
		{"Range/ResourceAtMaxCapacity", testResourceAtMaxCapacity},
		{"Range/WindowOf1ns", testWindowOf1ns},
	}
	for _, alg := range allAlgorithms {
		cs = append(cs,
			Case{"Range/RateAtTheEnds/" + alg.String(), func(t *testing.T, e *Env) { testRateAtTheEnds(e, alg) }},
			Case{"Range/OneUnitPer366Days/" + alg.String(), func(t *testing.T, e *Env) { testOneUnitPer366Days(e, alg) }},
		)
	}
	return cs
}

// testOutsideIsInvalid: capacities above 2^50 and windows above 366 days
// are ErrInvalidLimit, from NewLimitSet and from the backend's own Open (a
// resource of 1<<62 let two requests of 1<<62 both fit); the ends of the
// range themselves are accepted.
func testOutsideIsInvalid(t *testing.T, e *Env) {
	bad := []concurry.Limit{
		concurry.ResourceLimit{Key: "conn", Capacity: 1 << 62},
		concurry.ResourceLimit{Key: "conn", Capacity: concurry.MaxCapacity + 1},
		concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: concurry.MaxCapacity + 1},
		concurry.RateLimit{Key: "tokens", Window: concurry.MaxWindow + 1, Capacity: 1},
		concurry.CallLimit{Window: time.Second, Capacity: math.MaxInt64},
	}
	for _, l := range bad {
		ls, err := concurry.NewLimitSet([]concurry.Limit{l}, concurry.WithName(e.Name()), concurry.WithBackend(e.Backend))
		if err == nil {
			ls.Close()
		}
		e.WantErr(err, concurry.ErrInvalidLimit, fmt.Sprintf("NewLimitSet(%+v)", l))
	}
	specs := [][]backend.Spec{
		{{Key: "conn", Kind: backend.Resource, Capacity: 1 << 62}},
		{{Key: "tokens", Kind: backend.Rate, Window: time.Second, Capacity: backend.MaxCapacity + 1}},
		{{Key: "tokens", Kind: backend.Rate, Window: backend.MaxWindow + 1, Capacity: 1}},
	}
	for _, sp := range specs {
		s, err := e.Backend.Open(context.Background(), e.Name(), sp)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, backend.ErrInvalidLimit) {
			t.Fatalf("the backend's Open(%+v): got error %v, want ErrInvalidLimit", sp[0], err)
		}
	}
	e.Set(
		concurry.ResourceLimit{Key: "conn", Capacity: concurry.MaxCapacity},
		concurry.RateLimit{Key: "tokens", Window: concurry.MaxWindow, Capacity: concurry.MaxCapacity},
		concurry.CallLimit{Window: time.Nanosecond, Capacity: 1},
	)
}

// testResourceAtMaxCapacity: a resource of 2^50 is held to the unit, never
// more, and InUse never goes negative.
func testResourceAtMaxCapacity(t *testing.T, e *Env) {
	const c = concurry.MaxCapacity
	ls := e.Set(concurry.ResourceLimit{Key: "conn", Capacity: c})
	all := e.MustTry(ls, concurry.Amounts{"conn": c})
	e.Blocked(ls, concurry.Amounts{"conn": 1})
	e.WantInUse(ls, "conn", c)
	e.WantAvailable(ls, "conn", 0)
	e.Done(all, nil)
	if err := all.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	e.WantInUse(ls, "conn", 0)

	most := e.MustTry(ls, concurry.Amounts{"conn": c - 1})
	last := e.MustTry(ls, concurry.Amounts{"conn": 1})
	e.Blocked(ls, concurry.Amounts{"conn": 1})
	e.Blocked(ls, concurry.Amounts{"conn": c})
	e.WantInUse(ls, "conn", c)
	e.Done(most, nil)
	e.Done(last, nil)
	e.WantInUse(ls, "conn", 0)
	e.WantAvailable(ls, "conn", c)
}

// testRateAtTheEnds: a rate limit of 2^50 per 366 days grants its whole
// capacity at once (LeakyBucket: departs at once), then no second capacity;
// overage of up to 2^50 per report, charged again and again past any debt
// bound, never wraps: nothing is available, and the limit still refuses.
func testRateAtTheEnds(e *Env, alg concurry.Algorithm) {
	const c = concurry.MaxCapacity
	ls := e.Set(concurry.RateLimit{Key: "tokens", Window: concurry.MaxWindow, Capacity: c, Algorithm: alg})
	a := e.MustTry(ls, concurry.Amounts{"tokens": c})
	e.Blocked(ls, concurry.Amounts{"tokens": c})
	e.Done(a, concurry.Amounts{"tokens": c})
	for range 8 { // 8·2^50 of overage: past 2^52, where debt stops
		a, err := ls.TryAcquire(context.Background(), concurry.Amounts{"tokens": 1})
		if errors.Is(err, concurry.ErrWouldBlock) {
			break // no refill (the windows), or queued (LeakyBucket)
		}
		if err != nil {
			e.T.Fatalf("TryAcquire: %v", err)
		}
		e.Done(a, concurry.Amounts{"tokens": c})
	}
	if got := e.Stat(ls, "tokens").Available; got < 0 || got > c/1000 {
		e.T.Fatalf("%v: %d available after the overage, want about 0", alg, got)
	}
	e.Blocked(ls, concurry.Amounts{"tokens": c})
}

// testOneUnitPer366Days: capacity 1 over the longest window grants one unit,
// then nothing.
func testOneUnitPer366Days(e *Env, alg concurry.Algorithm) {
	ls := e.Set(concurry.CallLimit{Window: concurry.MaxWindow, Capacity: 1, Algorithm: alg})
	e.Done(e.MustTry(ls, nil), nil)
	e.Blocked(ls, nil)
	e.WantAvailable(ls, concurry.CallKey, 0)
}

// testWindowOf1ns: a call limit of 1 per nanosecond and one of 2^50 per
// nanosecond, the fastest rates of the range, grant every blocking Acquire
// at once or nearly.
func testWindowOf1ns(t *testing.T, e *Env) {
	for _, c := range []int64{1, concurry.MaxCapacity} {
		ls := e.Set(concurry.CallLimit{Window: time.Nanosecond, Capacity: c})
		for range 50 {
			e.Done(e.MustAcquire(ls, nil), nil)
		}
	}
}
