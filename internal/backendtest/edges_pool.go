package backendtest

import (
	"testing"

	"github.com/concurry/concurry"
)

// poolCases returns the cases of LimitPool waits where the losing sets spend nothing.
func poolCases() []Case {
	return []Case{
		{"PoolLoserSpendsNothing", testPoolLoserSpendsNothing},
	}
}

// testPoolLoserSpendsNothing makes two sets of a pool able to grant its
// waiting request at the same time, for every algorithm: exactly one grants
// it, and the other spends nothing — also an algorithm that cannot refund
// (FixedWindow, SlidingWindow, LeakyBucket). Rounds make the race likely.
func testPoolLoserSpendsNothing(t *testing.T, e *Env) {
	const calls = 2
	for _, alg := range []concurry.Algorithm{concurry.FixedWindow, concurry.SlidingWindow, concurry.LeakyBucket,
		concurry.TokenBucket, concurry.GCRA} {
		for round := range 4 {
			// A set grants {calls: 1, gate: 2} once the gate unit the test
			// holds is back; probe (with one gate unit) is free unless a
			// request waits.
			sets := make([]*concurry.LimitSet, 2)
			holds := make([]*concurry.Acquisition, 2)
			for i := range sets {
				sets[i] = e.Set(
					concurry.RateLimit{Key: "calls", Window: Long, Capacity: calls, Algorithm: alg},
					concurry.ResourceLimit{Key: "gate", Capacity: 2},
					concurry.RateLimit{Key: "probe", Window: Long, Capacity: 1000},
				)
				holds[i] = e.MustAcquire(sets[i], concurry.Amounts{"probe": 1})
			}
			pool, err := concurry.NewLimitPool(sets)
			if err != nil {
				t.Fatal(err)
			}
			ch := make(chan Result, 1)
			go func() {
				a, err := pool.Acquire(e.Ctx(), concurry.Amounts{"calls": 1, "gate": 2})
				ch <- Result{a, err}
			}()
			for _, ls := range sets {
				e.WaitQueued(ls, concurry.Amounts{"probe": 1})
			}
			for _, h := range holds {
				e.Done(h, concurry.Amounts{"probe": 1}) // both sets can grant now
			}
			a, err := e.Wait(ch)
			if err != nil {
				t.Fatalf("%v round %d: pool: %v", alg, round, err)
			}
			e.Done(a, concurry.Amounts{"calls": 1})
			for _, ls := range sets {
				if ls == a.Set() {
					continue
				}
				if got := e.Stat(ls, "calls").Available; got != calls {
					t.Fatalf("%v round %d: the losing set has %d calls left of %d: it spent one", alg, round, got, calls)
				}
			}
		}
	}
}
