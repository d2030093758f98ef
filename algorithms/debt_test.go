package algorithms_test

import (
	"math"
	"testing"

	"github.com/concurry/concurry/algorithms"
)

// TestDebtVisibleAfterOverage checks, for the algorithms that do not
// refund, that overage shows as Debt with nothing available, as a Stats
// caller sees it: ten units of a capacity of 10 granted, 25 reported used.
func TestDebtVisibleAfterOverage(t *testing.T) {
	for _, kind := range []algorithms.Kind{algorithms.LeakyBucket, algorithms.SlidingWindow, algorithms.FixedWindow} {
		s := newState(kind, 1000*3600*sec, 10)
		s.Take(t0, 10)
		s.Take(t0, 15)
		eq(t, kind.String()+" Available", s.Available(t0), 0)
		eq(t, kind.String()+" Debt", s.Debt(t0), 15)
	}
}

// TestLeakyBucketDebt checks that the units queued beyond the capacity
// count as debt until they drain, rounded up as Available rounds.
func TestLeakyBucketDebt(t *testing.T) {
	s := newState(algorithms.LeakyBucket, sec, 4) // T = 250ms
	s.Take(t0, 6)                                 // next = t0 + 1.5s: 6 queued
	eq(t, "Debt", s.Debt(t0), 2)
	eq(t, "Debt(t0+1ns)", s.Debt(t0+1), 2) // 5.99… queued, rounded up
	eq(t, "Debt(t0+250ms)", s.Debt(t0+250*ms), 1)
	eq(t, "Debt(t0+499ms)", s.Debt(t0+499*ms), 1)
	eq(t, "Debt(t0+500ms)", s.Debt(t0+500*ms), 0)
	eq(t, "Available(t0+500ms)", s.Available(t0+500*ms), 0)
	eq(t, "Available(t0+750ms)", s.Available(t0+750*ms), 1)
	eq(t, "Debt before the last take", s.Debt(t0-sec), 2) // read as at t0

	s = newState(algorithms.LeakyBucket, sec, 3) // T = 333,333,333⅓ns
	s.Take(t0, 5)
	eq(t, "Debt, C=3", s.Debt(t0), 2)
	eq(t, "Debt(t0+666,666,666ns)", s.Debt(t0+666_666_666), 1) // 3.000…1 queued
	eq(t, "Debt(t0+666,666,667ns)", s.Debt(t0+666_666_667), 0)

	s = newState(algorithms.LeakyBucket, sec, 1<<30)
	s.Take(t0, 1<<53) // 2^53 queued: counted up to MaxDebt
	eq(t, "Debt at the bound", s.Debt(t0), algorithms.MaxDebt-1<<30)
	eq(t, "Available at the bound", s.Available(t0), 0)
	s = newState(algorithms.LeakyBucket, 1, 1)
	s.Take(t0, math.MaxInt64) // the queue saturates past the int64 range
	eq(t, "Debt when saturated", s.Debt(t0), algorithms.MaxDebt-1)
}

// TestSlidingWindowDebt checks that the units admitted in (now−W, now]
// beyond the capacity count as debt until they leave the window, however
// they were taken.
func TestSlidingWindowDebt(t *testing.T) {
	s := newState(algorithms.SlidingWindow, sec, 10)
	s.Take(t0, 6)
	s.Take(t0+100*ms, 12) // 18 in the window
	s.Take(t0+100*ms, 15) // merged into one instant: 33
	eq(t, "Debt", s.Debt(t0+100*ms), 23)
	eq(t, "Available", s.Available(t0+100*ms), 0)
	eq(t, "Debt(t0+1s)", s.Debt(t0+sec), 17) // the first take has left
	eq(t, "Debt(t0+1.1s)", s.Debt(t0+1100*ms), 0)
	eq(t, "Available(t0+1.1s)", s.Available(t0+1100*ms), 10)

	s = newState(algorithms.SlidingWindow, sec, 10)
	s.Take(t0, math.MaxInt64) // counted up to MaxDebt
	s.Take(t0+ms, 5)
	eq(t, "Debt at the bound", s.Debt(t0+ms), algorithms.MaxDebt-10)
	eq(t, "Debt after the big take left", s.Debt(t0+sec), 0)
	eq(t, "Available after the big take left", s.Available(t0+sec), 5)
}

// TestFixedWindowDebt checks that the units counted beyond the capacity
// in now's window are debt, and none once the window ends.
func TestFixedWindowDebt(t *testing.T) {
	s := newState(algorithms.FixedWindow, sec, 10)
	s.Take(t0+100*ms, 4)
	s.Take(t0+900*ms, 9)
	eq(t, "Debt", s.Debt(t0+900*ms), 3)
	eq(t, "Debt(t0+999,999,999ns)", s.Debt(t0+sec-1), 3)
	eq(t, "Debt(t0+1s)", s.Debt(t0+sec), 0)
	eq(t, "Available(t0+1s)", s.Available(t0+sec), 10)
	eq(t, "Debt before the last take", s.Debt(t0), 3) // read as at t0+900ms

	s.Take(t0+sec, math.MaxInt64)
	s.Take(t0+sec, math.MaxInt64) // the count stops at MaxDebt
	eq(t, "Debt at the bound", s.Debt(t0+sec), algorithms.MaxDebt-10)
}

// TestPackedDebt checks that the packed forms report the same debt as
// their states.
func TestPackedDebt(t *testing.T) {
	for _, kind := range []algorithms.Kind{algorithms.LeakyBucket, algorithms.FixedWindow} {
		l := algorithms.Limit{Kind: kind, Window: sec, Capacity: 10}
		w := make([]int64, l.Words())
		l.Start(w)
		l.Take(w, t0, 17)
		eq(t, kind.String()+" packed Debt", l.Debt(w, t0), 7)
	}
}
