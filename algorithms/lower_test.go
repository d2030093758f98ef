package algorithms_test

import (
	"math"
	"testing"

	"github.com/concurry/concurry/algorithms"
)

// bucketLowerTable checks Lower and Debt of a token bucket at exact
// instants (TokenBucket and GCRA share it).
func bucketLowerTable(t *testing.T, kind algorithms.Kind) {
	s := newState(kind, sec, 10) // a token per 100ms
	s.Take(t0, 3)
	s.Lower(t0, 2)
	eq(t, "Available after Lower(2)", s.Available(t0), 2)
	eq(t, "Debt", s.Debt(t0), 0)
	s.Lower(t0, 5)
	eq(t, "Available after Lower(5): never raised", s.Available(t0), 2)
	s.Lower(t0, -3)
	eq(t, "Available after Lower(−3)", s.Available(t0), 0)
	eq(t, "Debt after Lower(−3)", s.Debt(t0), 3)
	eq(t, "Ready(t0,1)", s.Ready(t0, 1), t0+400*ms)
	// Half a token later the level is −2.5: a debt of 3 whole units.
	eq(t, "Debt(t0+50ms)", s.Debt(t0+50*ms), 3)
	s.Lower(t0+50*ms, -5) // ⌊−2.5⌋ = −3: takes 2, keeping the half
	eq(t, "Debt after Lower(−5)", s.Debt(t0+50*ms), 5)
	eq(t, "Ready(t0+50ms,1)", s.Ready(t0+50*ms, 1), t0+600*ms)
	eq(t, "Debt(t0+550ms)", s.Debt(t0+550*ms), 0)
	eq(t, "Available(t0+600ms)", s.Available(t0+600*ms), 1)
	s.Lower(t0+600*ms, math.MinInt64) // stops at −MaxDebt
	eq(t, "Debt at the bound", s.Debt(t0+600*ms), algorithms.MaxDebt)
	eq(t, "Available at the bound", s.Available(t0+600*ms), 0)
}

// TestTokenBucketLower checks TokenBucket's Lower and Debt at exact instants.
func TestTokenBucketLower(t *testing.T) { bucketLowerTable(t, algorithms.TokenBucket) }

// TestGCRALower checks GCRA's Lower and Debt at exact instants.
func TestGCRALower(t *testing.T) { bucketLowerTable(t, algorithms.GCRA) }

// TestBucketDebtFromOverage checks that overage shows as debt until it is
// refilled, a unit counting until it is whole again.
func TestBucketDebtFromOverage(t *testing.T) {
	for _, kind := range []algorithms.Kind{algorithms.TokenBucket, algorithms.GCRA} {
		s := newState(kind, sec, 10)
		s.Take(t0, 14) // level −4
		eq(t, kind.String()+" Debt", s.Debt(t0), 4)
		eq(t, kind.String()+" Debt(t0+1ns)", s.Debt(t0+1), 4)
		eq(t, kind.String()+" Debt(t0+100ms)", s.Debt(t0+100*ms), 3)
		eq(t, kind.String()+" Debt(t0+400ms)", s.Debt(t0+400*ms), 0)
		eq(t, kind.String()+" Available(t0+400ms)", s.Available(t0+400*ms), 0)
		eq(t, kind.String()+" Available(t0+500ms)", s.Available(t0+500*ms), 1)
	}
}

// TestLeakyBucketLower checks that Lower grows the queue by exactly the
// drain time of the units it takes, without rounding to a nanosecond.
func TestLeakyBucketLower(t *testing.T) {
	s := newState(algorithms.LeakyBucket, sec, 4) // T = 250ms
	s.Lower(t0, 1)
	eq(t, "Available after Lower(1)", s.Available(t0), 1)
	eq(t, "Ready(t0,1)", s.Ready(t0, 1), t0+750*ms)
	s.Lower(t0, 3)
	eq(t, "Available after Lower(3): never raised", s.Available(t0), 1)
	s.Lower(t0+100*ms, -1) // one unit queued beyond capacity: debt
	eq(t, "Available after Lower(−1)", s.Available(t0+100*ms), 0)
	eq(t, "Debt after Lower(−1)", s.Debt(t0+100*ms), 1)
	eq(t, "Ready(t0+100ms,1)", s.Ready(t0+100*ms, 1), t0+sec+250*ms)
	s.Lower(t0+100*ms, -1)
	eq(t, "Debt after Lower(−1) again: never raised", s.Debt(t0+100*ms), 1)
	s.Lower(t0+100*ms, -3)
	eq(t, "Debt after Lower(−3)", s.Debt(t0+100*ms), 3)
	eq(t, "Debt after it drained a unit", s.Debt(t0+350*ms), 2)

	s = newState(algorithms.LeakyBucket, sec, 3) // T = 333,333,333⅓ns
	s.Lower(t0, 2)
	eq(t, "Available after Lower(2)", s.Available(t0), 2)
	eq(t, "Ready(t0,1)", s.Ready(t0, 1), t0+333_333_334)
	s.Lower(t0, 1)
	eq(t, "Available after Lower(1)", s.Available(t0), 1)
	eq(t, "Ready(t0,1) after two", s.Ready(t0, 1), t0+666_666_667)
}

// TestSlidingWindowLower checks that Lower counts its units at now: they
// expire a window later.
func TestSlidingWindowLower(t *testing.T) {
	s := newState(algorithms.SlidingWindow, sec, 10)
	s.Take(t0, 3)
	s.Lower(t0+100*ms, 4) // 7 available: 3 counted at t0+100ms
	eq(t, "Available", s.Available(t0+100*ms), 4)
	s.Lower(t0+100*ms, 6)
	eq(t, "Available after Lower(6): never raised", s.Available(t0+100*ms), 4)
	eq(t, "Ready(t0+100ms,5)", s.Ready(t0+100*ms, 5), t0+sec)
	eq(t, "Available(t0+1s)", s.Available(t0+sec), 7)
	eq(t, "Available(t0+1.1s)", s.Available(t0+1100*ms), 10)
	s.Lower(t0+1100*ms, -5) // 10 available: 15 counted at t0+1.1s
	eq(t, "Available after Lower(−5)", s.Available(t0+1100*ms), 0)
	eq(t, "Debt", s.Debt(t0+1100*ms), 5)
	s.Lower(t0+1100*ms, -2)
	eq(t, "Debt after Lower(−2): never raised", s.Debt(t0+1100*ms), 5)
	eq(t, "Debt a window later", s.Debt(t0+2100*ms), 0)
}

// TestFixedWindowLower checks that Lower counts its units in now's window.
func TestFixedWindowLower(t *testing.T) {
	s := newState(algorithms.FixedWindow, sec, 10)
	s.Take(t0+100*ms, 3)
	s.Lower(t0+200*ms, 2)
	eq(t, "Available after Lower(2)", s.Available(t0+200*ms), 2)
	s.Lower(t0+200*ms, 9)
	eq(t, "Available after Lower(9): never raised", s.Available(t0+200*ms), 2)
	s.Lower(t0+300*ms, -1)
	eq(t, "Available after Lower(−1)", s.Available(t0+300*ms), 0)
	eq(t, "Debt after Lower(−1)", s.Debt(t0+300*ms), 1)
	eq(t, "Ready(t0+300ms,1)", s.Ready(t0+300*ms, 1), t0+sec)
	eq(t, "Available(t0+1s)", s.Available(t0+sec), 10)
	eq(t, "Debt(t0+1s): the window ended", s.Debt(t0+sec), 0)
}
