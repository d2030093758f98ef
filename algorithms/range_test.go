package algorithms_test

import (
	"math"
	"testing"

	"github.com/concurry/concurry/algorithms"
	"pgregory.net/rapid"
)

// The ends of the contract's range (backend.MaxCapacity, backend.MaxWindow;
// algorithms imports nothing of ours).
const (
	maxCapacity = int64(1) << 50
	maxWindow   = 366 * day
)

// drawRangeParams draws a limit at or near the ends of the contract's range
// (capacity 1 and 2^50, window 1ns and 366 days) and a start instant near
// the ends of the int64 range of Unix nanoseconds, or at today's instants.
func drawRangeParams(t *rapid.T) limitParams {
	c := rapid.OneOf(
		rapid.SampledFrom([]int64{1, 2, 3, maxCapacity - 1, maxCapacity}),
		rapid.Int64Range(1, maxCapacity),
	).Draw(t, "capacity")
	w := rapid.OneOf(
		rapid.SampledFrom([]int64{1, 2, 3, maxWindow - 1, maxWindow}),
		rapid.Int64Range(1, maxWindow),
	).Draw(t, "window")
	start := rapid.OneOf(
		rapid.Int64Range(math.MinInt64, math.MinInt64+4*maxWindow),
		rapid.Int64Range(-sec, sec),
		rapid.Int64Range(t0, t0+sec),
		rapid.Int64Range(math.MaxInt64-4*maxWindow, math.MaxInt64-1),
		rapid.Int64Range(math.MaxInt64-2*w, math.MaxInt64-1),
	).Draw(t, "start")
	return limitParams{window: w, capacity: c, start: start}
}

// later returns now+dt for dt ≥ 0, saturating at the last instant before
// Never.
func later(now, dt int64) int64 {
	if now >= algorithms.Never-1-dt {
		return algorithms.Never - 1
	}
	return now + dt
}

// TestRangeEnds replays random traces at the ends of the range, with
// overage up to 2^50 per charge (the most Update accepts) and now and then
// up to math.MaxInt64, refunds of any size, and instants up to the end of
// the int64 range (the last instant before Never). Nothing may wrap: Available stays in [0, C]; Ready is now
// or a later instant at which the request fits and 1ns before which it does
// not, or Never; a request above the capacity is Never; Refund gives back
// between 0 and what was asked (0 for the kinds that do not refund); Debt
// stays in [0, MaxDebt] (MaxDebt − C for the kinds that do not refund) and
// is 0 while anything is available; Lower of any
// remaining never raises Available and leaves at most max(remaining, 0)
// (unless the queue saturated at the end of the int64 range);
// and TokenBucket and GCRA, run in lockstep, make the same decisions.
func TestRangeEnds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawRangeParams(t)
		states := make([]algorithms.State, len(allKinds))
		for i, k := range allKinds {
			states[i] = newState(k, p.window, p.capacity)
		}
		amount := rapid.OneOf(
			rapid.SampledFrom([]int64{1, p.capacity, max(p.capacity-1, 1)}),
			rapid.Int64Range(1, p.capacity),
		)
		overage := rapid.OneOf(amount, rapid.Int64Range(1, maxCapacity), rapid.Int64Range(1, math.MaxInt64))
		step := rapid.OneOf(
			rapid.Just(int64(0)),
			rapid.Int64Range(0, 3*max(p.window/p.capacity, 1)),
			rapid.Int64Range(0, 2*p.window),
			rapid.Int64Range(0, math.MaxInt64/4),
		)
		now := p.start
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for i := range steps {
			now = later(now, step.Draw(t, "dt"))
			n := amount.Draw(t, "n")
			for j, s := range states {
				checkRangeStep(t, allKinds[j], s, p, now, n)
			}
			tb, gcra := states[0].Ready(now, n), states[4].Ready(now, n)
			if tb != gcra {
				t.Fatalf("step %d: Ready(%d, %d): TokenBucket %d, GCRA %d", i, now, n, tb, gcra)
			}
			switch op := rapid.IntRange(0, 3).Draw(t, "op"); op {
			case 0: // a request granted when it fits
				for _, s := range states {
					if s.Ready(now, n) == now {
						s.Take(now, n)
					}
				}
			case 1: // overage, charged whatever the state
				m := overage.Draw(t, "overage")
				for _, s := range states {
					s.Take(now, m)
				}
			case 2:
				m := overage.Draw(t, "refund")
				var got [5]int64
				for j, s := range states {
					got[j] = s.Refund(now, m)
					if got[j] < 0 || got[j] > m || (!allKinds[j].Refunds() && got[j] != 0) {
						t.Fatalf("step %d: %v Refund(%d, %d) = %d", i, allKinds[j], now, m, got[j])
					}
				}
				if got[0] != got[4] {
					t.Fatalf("step %d: Refund(%d, %d): TokenBucket %d, GCRA %d", i, now, m, got[0], got[4])
				}
			case 3: // upstream feedback, down to any remaining
				r := rapid.OneOf(amount, rapid.Int64Range(math.MinInt64, p.capacity)).Draw(t, "remaining")
				for j, s := range states {
					before := s.Available(now)
					s.Lower(now, r)
					// Past the end of the int64 range a queue saturates: what
					// is left then is not lowered, but nothing fits either.
					got, saturated := s.Available(now), s.Ready(now, 1) == algorithms.Never
					if got > before || got > max(r, 0) && got != before && !saturated {
						t.Fatalf("step %d: %v Lower(%d, %d): Available %d, was %d", i, allKinds[j], now, r, got, before)
					}
				}
			}
		}
	})
}

// checkRangeStep checks the invariants of one state at now for a request
// of n ≤ capacity units.
func checkRangeStep(t *rapid.T, kind algorithms.Kind, s algorithms.State, p limitParams, now, n int64) {
	t.Helper()
	avail := s.Available(now)
	if avail < 0 || avail > p.capacity {
		t.Fatalf("%v: Available(%d) = %d, outside [0, %d]", kind, now, avail, p.capacity)
	}
	most := algorithms.MaxDebt // the buckets' bound; what the others count stops there
	if !kind.Refunds() {
		most -= p.capacity
	}
	if debt := s.Debt(now); debt < 0 || debt > most || (debt > 0 && avail > 0) {
		t.Fatalf("%v: Debt(%d) = %d with %d available", kind, now, debt, avail)
	}
	if r := s.Ready(now, p.capacity+1); r != algorithms.Never {
		t.Fatalf("%v: Ready(%d, C+1) = %d, want Never", kind, now, r)
	}
	r := s.Ready(now, n)
	switch {
	case r < now:
		t.Fatalf("%v: Ready(%d, %d) = %d, before now", kind, now, n, r)
	case r == now:
		if kind != algorithms.LeakyBucket && avail < n {
			t.Fatalf("%v: Ready(%d, %d) = now with only %d available", kind, now, n, avail)
		}
	case r == algorithms.Never:
	default:
		if s.Ready(r, n) != r {
			t.Fatalf("%v: Ready(%d, %d) = %d, which does not fit then", kind, now, n, r)
		}
		if s.Ready(r-1, n) == r-1 {
			t.Fatalf("%v: Ready(%d, %d) = %d, but it fits 1ns earlier", kind, now, n, r)
		}
		if kind != algorithms.LeakyBucket && avail >= n {
			t.Fatalf("%v: Ready(%d, %d) = %d with %d available now", kind, now, n, r, avail)
		}
	}
}
