package algorithms_test

import (
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/concurry/concurry/algorithms"
	"pgregory.net/rapid"
)

// Instants and durations used by the tests, in nanoseconds.
const (
	ms  = int64(time.Millisecond)
	sec = int64(time.Second)
	day = int64(24 * time.Hour)
	// t0 is a realistic Unix instant (2027) on a whole second.
	t0 = int64(1_800_000_000_000_000_000)
)

// allKinds lists every algorithm.
var allKinds = []algorithms.Kind{
	algorithms.TokenBucket, algorithms.LeakyBucket, algorithms.SlidingWindow,
	algorithms.FixedWindow, algorithms.GCRA,
}

// newState returns a fresh state for a window in nanoseconds.
func newState(kind algorithms.Kind, window, capacity int64) algorithms.State {
	return algorithms.New(kind, time.Duration(window), capacity)
}

// eq fails the test when got differs from want.
func eq[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// bi returns x as a *big.Int.
func bi(x int64) *big.Int { return big.NewInt(x) }

// ceilQuo returns ⌈a/b⌉ for b > 0.
func ceilQuo(a, b *big.Int) *big.Int {
	q, m := new(big.Int).DivMod(a, b, new(big.Int)) // Euclidean: m ≥ 0
	if m.Sign() != 0 {
		q.Add(q, bi(1))
	}
	return q
}

// floorRat returns ⌊r⌋.
func floorRat(r *big.Rat) *big.Int {
	q, _ := new(big.Int).DivMod(r.Num(), r.Denom(), new(big.Int))
	return q
}

// ceilRat returns ⌈r⌉.
func ceilRat(r *big.Rat) *big.Int { return ceilQuo(r.Num(), r.Denom()) }

// clampInt returns x clamped to [0, c] as an int64.
func clampInt(x *big.Int, c int64) int64 {
	if x.Sign() < 0 {
		return 0
	}
	if x.Cmp(bi(c)) > 0 {
		return c
	}
	return x.Int64()
}

// windowDebt returns the debt of a window that counts n units of a
// capacity c: what it counts beyond c, counting at most MaxDebt.
func windowDebt(n, c int64) int64 { return max(min(n, algorithms.MaxDebt)-c, 0) }

// opKind is what a step of a random trace does.
type opKind int

const (
	opTry    opKind = iota // take n when Ready(now, n) == now
	opForce                // take n unconditionally (overage, up to 3×capacity)
	opRefund               // refund n
	opQueue                // take n when Available(now) ≥ n (a queued request)
	opLower                // lower to n remaining, n in [−2×capacity, capacity+1]
)

// step is one operation of a random trace, dt after the previous one.
type step struct {
	dt int64
	n  int64
	op opKind
}

// limitParams is a random limit and the instant its trace starts at.
type limitParams struct {
	window, capacity, start int64
}

// drawParams draws a limit from tiny to extreme (capacity up to 2^50, window
// up to 366 days) and a start instant that is either small or realistic.
func drawParams(t *rapid.T) limitParams {
	c := rapid.OneOf(
		rapid.Int64Range(1, 12),
		rapid.Int64Range(13, 1000),
		rapid.Int64Range(1<<40, 1<<50),
	).Draw(t, "capacity")
	w := rapid.OneOf(
		rapid.Int64Range(1, 2000),
		rapid.SampledFrom([]int64{ms, 10 * ms, sec, 3 * sec, 60 * sec, 366 * day}),
		rapid.Int64Range(1, 366*day),
	).Draw(t, "window")
	start := rapid.OneOf(
		rapid.Int64Range(0, 1_000_000),
		rapid.Int64Range(t0, t0+sec),
	).Draw(t, "start")
	return limitParams{window: w, capacity: c, start: start}
}

// drawTrace draws 1 to 150 steps using the given operations. Steps are
// scaled to the limit's pace so that traces both hit and miss the limit;
// with back, a step may go back in time by up to a pace.
func drawTrace(t *rapid.T, p limitParams, ops []opKind, back bool) []step {
	pace := max(p.window/p.capacity, 1)
	far := min(2*p.window, int64(2e16)) // 150 steps stay far from overflow
	lo := int64(0)
	if back {
		lo = -min(pace, far)
	}
	dt := rapid.OneOf(
		rapid.Just(int64(0)),
		rapid.Int64Range(lo, min(3*pace, far)),
		rapid.Int64Range(lo, far),
	)
	small := rapid.OneOf(rapid.Int64Range(1, min(p.capacity, 5)), rapid.Int64Range(1, p.capacity))
	gen := rapid.Custom(func(t *rapid.T) step {
		s := step{dt: dt.Draw(t, "dt"), op: rapid.SampledFrom(ops).Draw(t, "op")}
		switch s.op {
		case opForce:
			s.n = rapid.Int64Range(1, 3*p.capacity).Draw(t, "n")
		case opLower:
			s.n = rapid.OneOf(rapid.Int64Range(-2*p.capacity, p.capacity+1), small).Draw(t, "remaining")
		default:
			s.n = small.Draw(t, "n")
		}
		return s
	})
	size := rapid.IntRange(1, 150).Draw(t, "steps") // SliceOfN alone favours very short traces
	return rapid.SliceOfN(gen, size, size).Draw(t, "trace")
}

// checkReady checks Ready(now, n) against an exact predicate fits(t), "n
// units fit at instant t if nothing else happens": Ready returns now exactly
// when they fit now, and otherwise the first instant they fit.
func checkReady(t *rapid.T, s algorithms.State, now, n int64, fits func(int64) bool) {
	t.Helper()
	r := s.Ready(now, n)
	if fits(now) {
		if r != now {
			t.Fatalf("Ready(%d, %d) = %d, but it fits now", now, n, r)
		}
		return
	}
	switch {
	case r == now:
		t.Fatalf("Ready(%d, %d) = now, but it does not fit", now, n)
	case r < now:
		t.Fatalf("Ready(%d, %d) = %d, before now", now, n, r)
	case r == algorithms.Never:
		if fits(math.MaxInt64 - 1) {
			t.Fatalf("Ready(%d, %d) = Never, but it fits at MaxInt64−1", now, n)
		}
	case !fits(r) || fits(r-1):
		t.Fatalf("Ready(%d, %d) = %d: fits there %v, fits 1ns before %v", now, n, r, fits(r), fits(r-1))
	}
}
