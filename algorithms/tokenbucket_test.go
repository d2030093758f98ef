package algorithms_test

import (
	"math"
	"math/big"
	"sort"
	"testing"
	"time"

	"github.com/concurry/concurry/algorithms"
	"golang.org/x/time/rate"
	"pgregory.net/rapid"
)

// bucketOracle is an exact token bucket in big rationals: the model both
// TokenBucket and GCRA must follow, refunds included.
type bucketOracle struct {
	c, w  int64
	level *big.Rat // tokens at last; negative is debt
	last  int64
}

// newBucketOracle returns a full oracle bucket.
func newBucketOracle(w, c int64) *bucketOracle {
	return &bucketOracle{c: c, w: w, level: new(big.Rat).SetInt64(c), last: math.MinInt64}
}

// at returns the level at t; instants before last count as last.
func (o *bucketOracle) at(t int64) *big.Rat {
	l := new(big.Rat).Set(o.level)
	if t <= o.last {
		return l
	}
	dt := new(big.Int).Sub(bi(t), bi(o.last))
	l.Add(l, new(big.Rat).SetFrac(dt.Mul(dt, bi(o.c)), bi(o.w)))
	if full := new(big.Rat).SetInt64(o.c); l.Cmp(full) > 0 {
		l = full
	}
	return l
}

// fits reports whether n tokens are there at t.
func (o *bucketOracle) fits(t, n int64) bool { return o.at(t).Cmp(new(big.Rat).SetInt64(n)) >= 0 }

// advance moves the oracle to t when t is later than last.
func (o *bucketOracle) advance(t int64) {
	if t > o.last {
		o.level, o.last = o.at(t), t
	}
}

// take removes n tokens at t; the whole tokens stop at −MaxDebt, keeping
// the fraction.
func (o *bucketOracle) take(t, n int64) {
	o.advance(t)
	frac := new(big.Rat).Sub(o.level, new(big.Rat).SetInt(floorRat(o.level)))
	o.level.Sub(o.level, new(big.Rat).SetInt64(n))
	if floor := new(big.Rat).Add(new(big.Rat).SetInt64(-algorithms.MaxDebt), frac); o.level.Cmp(floor) < 0 {
		o.level = floor
	}
}

// refund adds n tokens at t up to full and returns n, or ⌊room⌋ when capped.
func (o *bucketOracle) refund(t, n int64) int64 {
	o.advance(t)
	room := new(big.Rat).Sub(new(big.Rat).SetInt64(o.c), o.level)
	if new(big.Rat).SetInt64(n).Cmp(room) < 0 {
		o.level.Add(o.level, new(big.Rat).SetInt64(n))
		return n
	}
	o.level.SetInt64(o.c)
	return floorRat(room).Int64()
}

// available returns ⌊level⌋ at t clamped to [0, c].
func (o *bucketOracle) available(t int64) int64 { return clampInt(floorRat(o.at(t)), o.c) }

// debt returns −⌊level⌋ at t when the level is negative, else 0.
func (o *bucketOracle) debt(t int64) int64 {
	return max(-floorRat(o.at(t)).Int64(), 0)
}

// lower leaves r + the fraction of a token at t (r at least −MaxDebt) when
// ⌊level⌋ is more than r; otherwise it changes nothing.
func (o *bucketOracle) lower(t, r int64) {
	r = max(r, -algorithms.MaxDebt)
	if floorRat(o.at(t)).Cmp(bi(r)) <= 0 {
		return
	}
	o.advance(t)
	frac := new(big.Rat).Sub(o.level, new(big.Rat).SetInt(floorRat(o.level)))
	o.level = frac.Add(frac, new(big.Rat).SetInt64(r))
}

// bucketTable checks the exact instants of a token bucket (TokenBucket and
// GCRA share it: they admit the same).
func bucketTable(t *testing.T, kind algorithms.Kind) {
	t.Run("burst then pace", func(t *testing.T) {
		s := newState(kind, sec, 10)
		eq(t, "Available(t0)", s.Available(t0), 10)
		eq(t, "Ready(t0,10)", s.Ready(t0, 10), t0)
		eq(t, "Ready(t0,11)", s.Ready(t0, 11), algorithms.Never)
		s.Take(t0, 10)
		eq(t, "Available(t0)", s.Available(t0), 0)
		eq(t, "Ready(t0,1)", s.Ready(t0, 1), t0+100*ms)
		eq(t, "Ready(t0+100ms−1,1)", s.Ready(t0+100*ms-1, 1), t0+100*ms)
		eq(t, "Ready(t0+100ms,1)", s.Ready(t0+100*ms, 1), t0+100*ms)
		eq(t, "Ready(t0,10)", s.Ready(t0, 10), t0+sec)
		eq(t, "Available(t0+550ms)", s.Available(t0+550*ms), 5)
		eq(t, "Available(t0+5s)", s.Available(t0+5*sec), 10)
	})
	t.Run("non-integral pace", func(t *testing.T) {
		s := newState(kind, sec, 3)
		s.Take(t0, 3)
		eq(t, "Ready(t0,1)", s.Ready(t0, 1), t0+333_333_334)
		eq(t, "Ready(t0,2)", s.Ready(t0, 2), t0+666_666_667)
		eq(t, "Ready(t0,3)", s.Ready(t0, 3), t0+sec)
		s.Take(t0+333_333_334, 1)
		eq(t, "Ready after 1", s.Ready(t0+333_333_334, 1), t0+666_666_667)
	})
	t.Run("refund", func(t *testing.T) {
		s := newState(kind, sec, 10)
		eq(t, "Refund on full", s.Refund(t0, 5), 0)
		s.Take(t0, 10)
		eq(t, "Refund(t0,4)", s.Refund(t0, 4), 4)
		eq(t, "Available", s.Available(t0), 4)
		eq(t, "Ready(t0,4)", s.Ready(t0, 4), t0)
		eq(t, "Refund(t0,100)", s.Refund(t0, 100), 6)
		eq(t, "Available", s.Available(t0), 10)
		s.Take(t0, 10) // level 1.5 at t0+150ms: 8.5 tokens of room
		eq(t, "Refund(t0+150ms,8)", s.Refund(t0+150*ms, 8), 8)
		eq(t, "Available", s.Available(t0+150*ms), 9)
		eq(t, "Refund(t0+150ms,1) over the top", s.Refund(t0+150*ms, 1), 0)
		eq(t, "Available", s.Available(t0+150*ms), 10)
		s.Take(t0+150*ms, 10)
		eq(t, "Refund(t0+300ms,9) capped", s.Refund(t0+300*ms, 9), 8)
		eq(t, "Ready(t0+300ms,10)", s.Ready(t0+300*ms, 10), t0+300*ms)
	})
	t.Run("refund with half a token of room", func(t *testing.T) {
		s := newState(kind, 2, 1) // one token per 2ns
		s.Take(t0, 1)
		eq(t, "Available(t0+1)", s.Available(t0+1), 0)
		eq(t, "Refund(t0+1,1)", s.Refund(t0+1, 1), 0) // half a token fitted
		eq(t, "Ready(t0+1,1)", s.Ready(t0+1, 1), t0+1)
		s.Take(t0+1, 1)
		eq(t, "Ready(t0+1,1)", s.Ready(t0+1, 1), t0+3)
	})
	t.Run("debt", func(t *testing.T) {
		s := newState(kind, sec, 10)
		s.Take(t0, 100) // 10× capacity: level −90
		eq(t, "Available", s.Available(t0), 0)
		eq(t, "Ready(t0,1)", s.Ready(t0, 1), t0+9100*ms)
		eq(t, "Ready(t0,10)", s.Ready(t0, 10), t0+10*sec)
		eq(t, "Available(t0+9.1s)", s.Available(t0+9100*ms), 1)
		eq(t, "Refund in debt", s.Refund(t0+sec, 50), 50)
		eq(t, "Ready(t0+1s,10)", s.Ready(t0+sec, 10), t0+5*sec)
	})
	t.Run("never", func(t *testing.T) {
		s := newState(kind, 366*day, 1)
		s.Take(t0, 1000) // 1000 × 366 days is past the int64 range
		eq(t, "Ready", s.Ready(t0, 1), algorithms.Never)
		eq(t, "Available", s.Available(math.MaxInt64), 0)
	})
}

// TestTokenBucketTable checks TokenBucket at exact instants.
func TestTokenBucketTable(t *testing.T) { bucketTable(t, algorithms.TokenBucket) }

// bucketNeverOverAdmits checks that admitted units in any [a, b] stay within
// C + ⌊(b−a)·C/W⌋ plus the units asked back by refunds in [a, b], over traces
// of conditional takes (and refunds when withRefunds).
func bucketNeverOverAdmits(t *testing.T, kind algorithms.Kind, withRefunds bool) {
	ops := []opKind{opTry}
	if withRefunds {
		ops = append(ops, opRefund)
	}
	rapid.Check(t, func(t *rapid.T) {
		p := drawParams(t)
		s := newState(kind, p.window, p.capacity)
		type ev struct{ at, n int64 }
		var admits, refunds []ev
		now := p.start
		for _, st := range drawTrace(t, p, ops, false) {
			now += st.dt
			switch {
			case st.op == opRefund:
				refunds = append(refunds, ev{now, st.n})
				s.Refund(now, st.n)
			case s.Ready(now, st.n) == now:
				admits = append(admits, ev{now, st.n})
				s.Take(now, st.n)
			}
		}
		// back(a, b) sums the refunds asked for at instants in [a, b];
		// refunds are in time order.
		back := func(a, b int64) (sum int64) {
			i := sort.Search(len(refunds), func(i int) bool { return refunds[i].at >= a })
			for ; i < len(refunds) && refunds[i].at <= b; i++ {
				sum += refunds[i].n
			}
			return sum
		}
		bound, x := new(big.Int), new(big.Int)
		for i, a := range admits {
			var took int64
			for _, b := range admits[i:] {
				took += b.n
				bound.Mul(x.Sub(bi(b.at), bi(a.at)), bi(p.capacity))
				bound.Quo(bound, bi(p.window))
				bound.Add(bound, bi(p.capacity+back(a.at, b.at)))
				if bi(took).Cmp(bound) > 0 {
					t.Fatalf("admitted %d in [%d, %d], bound %v", took, a.at, b.at, bound)
				}
			}
		}
	})
}

// bucketMatchesOracle replays random traces of every operation, overage,
// lowering and steps back in time included, against the exact oracle:
// Ready, Available, Debt and Refund must agree at every step.
func bucketMatchesOracle(t *testing.T, kind algorithms.Kind) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawParams(t)
		s := newState(kind, p.window, p.capacity)
		o := newBucketOracle(p.window, p.capacity)
		now := p.start
		for _, st := range drawTrace(t, p, []opKind{opTry, opForce, opRefund, opLower}, true) {
			now += st.dt
			n := min(max(st.n, 1), p.capacity)
			checkReady(t, s, now, n, func(at int64) bool { return o.fits(at, n) })
			if got, want := s.Available(now), o.available(now); got != want {
				t.Fatalf("Available(%d) = %d, want %d", now, got, want)
			}
			if got, want := s.Debt(now), o.debt(now); got != want {
				t.Fatalf("Debt(%d) = %d, want %d", now, got, want)
			}
			switch st.op {
			case opLower:
				s.Lower(now, st.n)
				o.lower(now, st.n)
			case opTry:
				if s.Ready(now, n) == now {
					s.Take(now, n)
					o.take(now, n)
				}
			case opForce:
				s.Take(now, st.n)
				o.take(now, st.n)
			case opRefund:
				if got, want := s.Refund(now, st.n), o.refund(now, st.n); got != want {
					t.Fatalf("Refund(%d, %d) = %d, want %d", now, st.n, got, want)
				}
			}
		}
	})
}

// TestTokenBucketNeverOverAdmits checks the admission bound without refunds.
func TestTokenBucketNeverOverAdmits(t *testing.T) {
	bucketNeverOverAdmits(t, algorithms.TokenBucket, false)
}

// TestTokenBucketNeverOverAdmitsWithRefunds checks the bound with refunds.
func TestTokenBucketNeverOverAdmitsWithRefunds(t *testing.T) {
	bucketNeverOverAdmits(t, algorithms.TokenBucket, true)
}

// TestTokenBucketMatchesOracle checks every decision against the exact oracle.
func TestTokenBucketMatchesOracle(t *testing.T) { bucketMatchesOracle(t, algorithms.TokenBucket) }

// TestTokenBucketMatchesXTimeRate replays random traces through TokenBucket
// and golang.org/x/time/rate, on limits and millisecond steps for which
// rate's float64 arithmetic is exact, and requires the same decisions.
func TestTokenBucketMatchesXTimeRate(t *testing.T) {
	limits := []limitParams{ // whole tokens per millisecond
		{window: sec, capacity: 1000}, {window: 10 * ms, capacity: 10},
		{window: sec, capacity: 5000}, {window: 100 * ms, capacity: 100},
		{window: 2 * ms, capacity: 2}, {window: 8 * ms, capacity: 64},
	}
	rapid.Check(t, func(t *rapid.T) {
		p := rapid.SampledFrom(limits).Draw(t, "limit")
		perSec := float64(p.capacity) * float64(time.Second) / float64(p.window)
		peer := rate.NewLimiter(rate.Limit(perSec), int(p.capacity))
		s := newState(algorithms.TokenBucket, p.window, p.capacity)
		now := t0 + rapid.Int64Range(0, 1000).Draw(t, "start")*ms
		size := rapid.IntRange(1, 300).Draw(t, "size")
		steps := rapid.SliceOfN(rapid.Int64Range(0, 20), size, size).Draw(t, "steps")
		for i, dt := range steps {
			now += dt * ms
			n := rapid.Int64Range(1, p.capacity).Draw(t, "n")
			ours := s.Ready(now, n) == now
			if ours {
				s.Take(now, n)
			}
			if theirs := peer.AllowN(time.Unix(0, now), int(n)); ours != theirs {
				t.Fatalf("step %d: AllowN(+%dms, %d): ours %v, x/time/rate %v", i, (now-t0)/ms, n, ours, theirs)
			}
		}
	})
}

// TestTokenBucketNoDrift takes one token the instant it is ready, a million
// times, on a pace of 1/3 s that is not a whole number of nanoseconds: the
// k-th token after the burst must come at exactly t0 + ⌈k·W/C⌉.
func TestTokenBucketNoDrift(t *testing.T) { bucketNoDrift(t, algorithms.TokenBucket) }

// bucketNoDrift is TestTokenBucketNoDrift for a bucket kind.
func bucketNoDrift(t *testing.T, kind algorithms.Kind) {
	const c, w, steps = 3, sec, 1_000_000
	s := newState(kind, w, c)
	now := t0
	want, k := new(big.Int), new(big.Int)
	for i := int64(0); i < steps; i++ {
		now = s.Ready(now, 1)
		want.SetInt64(t0)
		if i >= c {
			k.SetInt64(i - c + 1)
			want.Add(want, ceilQuo(k.Mul(k, bi(w)), bi(c)))
		}
		if want.Cmp(bi(now)) != 0 {
			t.Fatalf("take %d at %d, want %v", i, now, want)
		}
		s.Take(now, 1)
	}
	// Over the whole run: exactly C + ⌊elapsed·C/W⌋ tokens.
	elapsed := new(big.Int).Sub(bi(now), bi(t0))
	total := elapsed.Quo(elapsed.Mul(elapsed, bi(c)), bi(w))
	eq(t, "tokens taken", int64(steps), total.Int64()+c)
}
