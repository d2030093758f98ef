package algorithms_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/concurry/concurry/algorithms"
	"go.uber.org/ratelimit"
	"pgregory.net/rapid"
)

// TestLeakyBucketTable checks LeakyBucket departures at exact instants.
func TestLeakyBucketTable(t *testing.T) {
	t.Run("pace", func(t *testing.T) {
		s := newState(algorithms.LeakyBucket, sec, 10) // T = 100ms
		eq(t, "Available(t0)", s.Available(t0), 10)
		eq(t, "Ready(t0,11)", s.Ready(t0, 11), algorithms.Never)
		for i := int64(0); i < 5; i++ {
			eq(t, "departure", s.Ready(t0, 1), t0+i*100*ms)
			s.Take(t0, 1) // queued: departs at t0 + i·100ms
		}
		eq(t, "Available(t0)", s.Available(t0), 5)
		eq(t, "Available(t0+250ms)", s.Available(t0+250*ms), 7) // 2.5 units queued
		eq(t, "Ready(t0+500ms−1,1)", s.Ready(t0+500*ms-1, 1), t0+500*ms)
		eq(t, "Ready(t0+500ms,1)", s.Ready(t0+500*ms, 1), t0+500*ms)
		eq(t, "Available(t0+10s)", s.Available(t0+10*sec), 10)
		eq(t, "Refund", s.Refund(t0, 3), 0)
	})
	t.Run("n=2 gaps of 200ms", func(t *testing.T) {
		s := newState(algorithms.LeakyBucket, sec, 10)
		for i := int64(0); i < 4; i++ {
			d := s.Ready(t0, 2)
			eq(t, "departure", d, t0+i*200*ms)
			s.Take(d, 2)
		}
		s.Take(t0+2*sec, 2) // idle queue: departs at once
		eq(t, "Ready after idle", s.Ready(t0+2*sec, 1), t0+2200*ms)
	})
	t.Run("non-integral pace rounds each departure up", func(t *testing.T) {
		s := newState(algorithms.LeakyBucket, sec, 3) // T = 333333333⅓ ns
		s.Take(t0, 1)
		eq(t, "second", s.Ready(t0, 1), t0+333_333_334)
		eq(t, "Available(t0)", s.Available(t0), 2)
		eq(t, "Available(t0+1)", s.Available(t0+1), 2)
		eq(t, "Available(t0+333333334)", s.Available(t0+333_333_334), 3)
		s.Take(t0, 1)
		eq(t, "third", s.Ready(t0, 1), t0+666_666_668)
		s.Take(t0, 2) // departs t0+666666668, next = +666666666⅔
		eq(t, "after n=2", s.Ready(t0, 1), t0+1_333_333_335)
	})
	t.Run("overage", func(t *testing.T) {
		s := newState(algorithms.LeakyBucket, sec, 10)
		s.Take(t0, 100) // next = t0 + 10s
		eq(t, "Ready", s.Ready(t0, 1), t0+10*sec)
		eq(t, "Available(t0+9s)", s.Available(t0+9*sec), 0)
		eq(t, "Available(t0+9.05s)", s.Available(t0+9050*ms), 0)
		eq(t, "Available(t0+9.1s)", s.Available(t0+9100*ms), 1)
	})
	t.Run("never", func(t *testing.T) {
		s := newState(algorithms.LeakyBucket, 366*day, 1)
		s.Take(t0, 1000)
		eq(t, "Ready", s.Ready(t0, 1), algorithms.Never)
		eq(t, "Available", s.Available(t0+1000*day), 0)
	})
}

// leakyOracle is the LeakyBucket model in big rationals.
type leakyOracle struct {
	c, w int64
	next *big.Rat // nil: the queue has never been used
}

// departure returns max(now, ⌈next⌉), or Never past the int64 range.
func (o *leakyOracle) departure(now int64) int64 {
	if o.next == nil {
		return now
	}
	d := ceilRat(o.next)
	if !d.IsInt64() || d.Int64() == algorithms.Never {
		return algorithms.Never
	}
	return max(now, d.Int64())
}

// take queues n units at now.
func (o *leakyOracle) take(now, n int64) {
	d := new(big.Rat).SetInt64(now)
	if o.next != nil {
		d.SetInt(ceilRat(o.next))
		d = maxRat(d, new(big.Rat).SetInt64(now))
	}
	o.next = d.Add(d, new(big.Rat).SetFrac(new(big.Int).Mul(bi(n), bi(o.w)), bi(o.c)))
}

// lower grows the queue by the drain time of k = available(now) − debt(now)
// − r units when k is positive (r at least −MaxDebt): next becomes
// max(next, now) + k·W/C, unrounded.
func (o *leakyOracle) lower(now, r int64) {
	k := o.available(now) - o.debt(now) - max(r, -algorithms.MaxDebt)
	if k <= 0 {
		return
	}
	d := new(big.Rat).SetInt64(now)
	if o.next != nil {
		d = maxRat(new(big.Rat).Set(o.next), d)
	}
	o.next = d.Add(d, new(big.Rat).SetFrac(new(big.Int).Mul(bi(k), bi(o.w)), bi(o.c)))
}

// maxRat returns the larger of a and b.
func maxRat(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

// available returns C − ⌈(next − now)·C/W⌉ clamped to [0, C].
func (o *leakyOracle) available(now int64) int64 {
	if o.next == nil {
		return o.c
	}
	ahead := new(big.Rat).Sub(o.next, new(big.Rat).SetInt64(now))
	if ahead.Sign() <= 0 {
		return o.c
	}
	ahead.Mul(ahead, big.NewRat(o.c, o.w))
	return clampInt(new(big.Int).Sub(bi(o.c), ceilRat(ahead)), o.c)
}

// debt returns ⌈(next − now)·C/W⌉ − C clamped to [0, MaxDebt − C]: the
// units queued beyond the capacity.
func (o *leakyOracle) debt(now int64) int64 {
	if o.next == nil {
		return 0
	}
	ahead := new(big.Rat).Sub(o.next, new(big.Rat).SetInt64(now))
	if ahead.Sign() <= 0 {
		return 0
	}
	ahead.Mul(ahead, big.NewRat(o.c, o.w))
	return clampInt(new(big.Int).Sub(ceilRat(ahead), bi(o.c)), algorithms.MaxDebt-o.c)
}

// TestLeakyBucketProperties replays random traces of conditional, queued and
// overage takes and of lowering: Ready and Available must match the exact
// model, Debt is the queue beyond the capacity, and
// consecutive departures must be at least the earlier request's n·T apart.
func TestLeakyBucketProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawParams(t)
		s := newState(algorithms.LeakyBucket, p.window, p.capacity)
		o := &leakyOracle{c: p.capacity, w: p.window}
		now := p.start
		var prevD, prevN int64
		gap, need := new(big.Int), new(big.Int)
		for i, st := range drawTrace(t, p, []opKind{opTry, opQueue, opForce, opLower}, false) {
			now += st.dt
			n := min(max(st.n, 1), p.capacity)
			d := o.departure(now)
			if got := s.Ready(now, n); got != d {
				t.Fatalf("step %d: Ready(%d, %d) = %d, want %d", i, now, n, got, d)
			}
			if got, want := s.Available(now), o.available(now); got != want {
				t.Fatalf("step %d: Available(%d) = %d, want %d", i, now, got, want)
			}
			if got, want := s.Debt(now), o.debt(now); got != want {
				t.Fatalf("step %d: Debt(%d) = %d, want %d", i, now, got, want)
			}
			if st.op == opLower {
				s.Lower(now, st.n)
				o.lower(now, st.n)
				continue
			}
			take := st.op == opForce || (st.op == opTry && d == now) ||
				(st.op == opQueue && s.Available(now) >= st.n)
			if !take {
				continue
			}
			if i > 0 && prevN > 0 {
				gap.Mul(gap.Sub(bi(d), bi(prevD)), bi(p.capacity))
				if gap.Cmp(need.Mul(bi(prevN), bi(p.window))) < 0 {
					t.Fatalf("step %d: departures %d then %d: less than %d·T apart", i, prevD, d, prevN)
				}
			}
			s.Take(now, st.n)
			o.take(now, st.n)
			prevD, prevN = d, st.n
		}
	})
}

// fakeClock is a ratelimit.Clock whose Sleep advances its time at once.
type fakeClock struct{ now int64 }

// Now returns the fake time.
func (c *fakeClock) Now() time.Time { return time.Unix(0, c.now) }

// Sleep advances the fake time by d.
func (c *fakeClock) Sleep(d time.Duration) { c.now += int64(d) }

// TestLeakyBucketMatchesUberRatelimit replays random arrival gaps through
// LeakyBucket and go.uber.org/ratelimit without slack (on whole-nanosecond
// paces, which ratelimit needs) and requires the same departure instants.
func TestLeakyBucketMatchesUberRatelimit(t *testing.T) {
	limits := []limitParams{
		{window: sec, capacity: 10}, {window: sec, capacity: 1000},
		{window: 3 * sec, capacity: 3}, {window: 700, capacity: 7}, {window: 366 * day, capacity: 1 << 17},
	}
	rapid.Check(t, func(t *rapid.T) {
		p := rapid.SampledFrom(limits).Draw(t, "limit")
		pace := p.window / p.capacity
		clock := &fakeClock{now: t0 + rapid.Int64Range(0, sec).Draw(t, "start")}
		peer := ratelimit.New(int(p.capacity), ratelimit.Per(time.Duration(p.window)),
			ratelimit.WithoutSlack, ratelimit.WithClock(clock))
		s := newState(algorithms.LeakyBucket, p.window, p.capacity)
		size := rapid.IntRange(1, 300).Draw(t, "size")
		gap := rapid.OneOf(rapid.Just(int64(0)), rapid.Int64Range(0, 3*pace))
		gaps := rapid.SliceOfN(gap, size, size).Draw(t, "gaps")
		for i, gap := range gaps {
			clock.now += gap
			now := clock.now
			ours := s.Ready(now, 1)
			s.Take(now, 1)
			if theirs := peer.Take().UnixNano(); ours != theirs {
				t.Fatalf("step %d: departure at +%d: ours +%d, ratelimit +%d", i, now-t0, ours-t0, theirs-t0)
			}
		}
	})
}

// TestLeakyBucketNoDrift queues a million units back to back on whole and
// fractional paces: departures stay exactly on their schedule.
func TestLeakyBucketNoDrift(t *testing.T) {
	for _, c := range []struct{ c, gap int64 }{{4, 250 * ms}, {3, 333_333_334}} {
		s := newState(algorithms.LeakyBucket, sec, c.c)
		for i := int64(0); i < 1_000_000; i++ {
			if d := s.Ready(t0, 1); d != t0+i*c.gap {
				t.Fatalf("C=%d: departure %d at +%d, want +%d", c.c, i, d-t0, i*c.gap)
			}
			s.Take(t0, 1)
		}
	}
}
