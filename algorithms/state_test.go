package algorithms_test

import (
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/concurry/concurry/algorithms"
	"pgregory.net/rapid"
)

// TestNewPanics checks that New rejects invalid limits and unknown kinds.
func TestNewPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"zero window":     func() { algorithms.New(algorithms.TokenBucket, 0, 1) },
		"negative window": func() { algorithms.New(algorithms.GCRA, -time.Second, 1) },
		"zero capacity":   func() { algorithms.New(algorithms.LeakyBucket, time.Second, 0) },
		"unknown kind":    func() { algorithms.New(algorithms.Kind(99), time.Second, 1) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

// TestKind checks the names and refund flags of the kinds.
func TestKind(t *testing.T) {
	names := []string{"TokenBucket", "LeakyBucket", "SlidingWindow", "FixedWindow", "GCRA"}
	for i, k := range allKinds {
		eq(t, "String", k.String(), names[i])
		eq(t, k.String()+".Refunds", k.Refunds(), k == algorithms.TokenBucket || k == algorithms.GCRA)
	}
	eq(t, "unknown", algorithms.Kind(9).String(), "Kind(9)")
}

// TestNoRefunds checks that the kinds without refunds give nothing back and
// are left unchanged by a refund.
func TestNoRefunds(t *testing.T) {
	for _, k := range allKinds {
		if k.Refunds() {
			continue
		}
		s := newState(k, sec, 10)
		s.Take(t0, 10)
		ready, avail := s.Ready(t0, 5), s.Available(t0)
		eq(t, k.String()+" Refund", s.Refund(t0, 10), 0)
		eq(t, k.String()+" Ready after refund", s.Ready(t0, 5), ready)
		eq(t, k.String()+" Available after refund", s.Available(t0), avail)
	}
}

// TestSmallAmounts checks that non-positive amounts are free and change nothing.
func TestSmallAmounts(t *testing.T) {
	for _, k := range allKinds {
		s := newState(k, sec, 10)
		s.Take(t0, 10)
		ready := s.Ready(t0, 1)
		s.Take(t0, 0)
		s.Take(t0, -5)
		eq(t, k.String()+" Ready(t0,0)", s.Ready(t0, 0), t0)
		eq(t, k.String()+" Refund(t0,0)", s.Refund(t0, 0), 0)
		eq(t, k.String()+" Refund(t0,−1)", s.Refund(t0, -1), 0)
		eq(t, k.String()+" Ready(t0,1)", s.Ready(t0, 1), ready)
	}
}

// TestExtremeCapacityAndWindow checks C = 2^50 over W = 366 days.
func TestExtremeCapacityAndWindow(t *testing.T) {
	const c, w = int64(1) << 50, 366 * day
	pace := ceilQuo(bi(w), bi(c)).Int64() // ⌈W/C⌉ = 29ns
	third := ceilQuo(new(big.Int).Mul(bi(c/3), bi(w)), bi(c)).Int64()
	for _, k := range []algorithms.Kind{algorithms.TokenBucket, algorithms.GCRA} {
		s := newState(k, w, c)
		s.Take(t0, c)
		eq(t, k.String()+" Ready(t0,1)", s.Ready(t0, 1), t0+pace)
		eq(t, k.String()+" Ready(t0,C/3)", s.Ready(t0, c/3), t0+third)
		eq(t, k.String()+" Ready(t0,C)", s.Ready(t0, c), t0+w)
		eq(t, k.String()+" Available(t0+W/2)", s.Available(t0+w/2), c/2)
		s.Take(t0, 3*c)
		eq(t, k.String()+" Ready in debt", s.Ready(t0, c), t0+4*w)
		eq(t, k.String()+" Refund", s.Refund(t0, 2*c), 2*c)
		eq(t, k.String()+" Ready after refund", s.Ready(t0, c), t0+2*w)
		s.Take(t0, 10*c) // debt stops at MaxDebt = 4C
		eq(t, k.String()+" Ready at the debt bound", s.Ready(t0, c), t0+5*w)
		eq(t, k.String()+" Refund from the bound", s.Refund(t0, c), c)
		eq(t, k.String()+" Ready after refund", s.Ready(t0, c), t0+4*w)
	}
	l := newState(algorithms.LeakyBucket, w, c)
	l.Take(t0, 1)
	eq(t, "Leaky Ready", l.Ready(t0, 1), t0+pace)
	l.Take(t0, c) // departs at t0+29ns, next = that + W
	eq(t, "Leaky Ready after C", l.Ready(t0, 1), t0+pace+w)
	eq(t, "Leaky Available", l.Available(t0+pace), 0)
	eq(t, "Leaky Available at W/2", l.Available(t0+pace+w/2), c/2)

	s := newState(algorithms.SlidingWindow, w, c)
	s.Take(t0, 1)
	s.Take(t0+1, c-1)
	eq(t, "Sliding Ready(1)", s.Ready(t0+1, 1), t0+w)
	eq(t, "Sliding Ready(2)", s.Ready(t0+1, 2), t0+w+1)
	eq(t, "Sliding Available", s.Available(t0+w), 1)

	f := newState(algorithms.FixedWindow, w, c)
	f.Take(t0, c)
	eq(t, "Fixed Ready", f.Ready(t0, 1), (t0/w+1)*w)
}

// TestExtremeTiny checks C = 1 per nanosecond: every algorithm admits exactly
// one unit per nanosecond.
func TestExtremeTiny(t *testing.T) {
	for _, k := range allKinds {
		for _, start := range []int64{0, t0} {
			s := newState(k, 1, 1)
			for now := start; now < start+1000; now++ {
				eq(t, k.String()+" Ready(now)", s.Ready(now, 1), now)
				s.Take(now, 1)
				eq(t, k.String()+" Ready(next)", s.Ready(now, 1), now+1)
				eq(t, k.String()+" Available", s.Available(now), 0)
			}
		}
	}
}

// TestExtremeLongWindow checks one unit per 366 days, and debt past the int64
// range.
func TestExtremeLongWindow(t *testing.T) {
	const w = 366 * day
	for _, k := range allKinds {
		s := newState(k, w, 1)
		s.Take(t0, 1)
		want := t0 + w
		if k == algorithms.FixedWindow {
			want = (t0/w + 1) * w
		}
		eq(t, k.String()+" Ready", s.Ready(t0, 1), want)
		eq(t, k.String()+" Ready 1ns early", s.Ready(want-1, 1), want)
		eq(t, k.String()+" Available", s.Available(want), 1)
		s.Take(t0, 1000)
		switch k {
		case algorithms.TokenBucket, algorithms.GCRA, algorithms.LeakyBucket:
			eq(t, k.String()+" Ready in debt", s.Ready(t0, 1), algorithms.Never)
		case algorithms.SlidingWindow: // overage counts at its instant only
			eq(t, k.String()+" Ready in debt", s.Ready(t0, 1), t0+w)
		}
	}
}

// TestNearMaxInstant checks that instants near the end of the int64 range
// saturate to Never instead of wrapping.
func TestNearMaxInstant(t *testing.T) {
	const end = math.MaxInt64 - sec
	for _, k := range allKinds {
		s := newState(k, 10*sec, 1)
		s.Take(end, 1)
		eq(t, k.String()+" Ready", s.Ready(end, 1), algorithms.Never)
		eq(t, k.String()+" Available", s.Available(end), 0)
	}
}

// TestBackInTime replays random traces in which now sometimes steps back:
// nothing panics, and each state behaves exactly like one that is given the
// latest instant it was updated at instead of an earlier now.
func TestBackInTime(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := rapid.SampledFrom(allKinds).Draw(t, "kind")
		p := drawParams(t)
		raw, clamped := newState(k, p.window, p.capacity), newState(k, p.window, p.capacity)
		now, last := p.start, int64(math.MinInt64)
		for i, st := range drawTrace(t, p, []opKind{opTry, opForce, opRefund}, true) {
			now += st.dt
			eff := max(now, last)
			n := min(st.n, p.capacity)
			r, rc := raw.Ready(now, n), clamped.Ready(eff, n)
			if (r == now) != (rc == eff) || (r != now && r != rc) || r < now {
				t.Fatalf("step %d: Ready(%d, %d) = %d; at %d: %d", i, now, n, r, eff, rc)
			}
			if a, ac := raw.Available(now), clamped.Available(eff); a != ac || a < 0 || a > p.capacity {
				t.Fatalf("step %d: Available(%d) = %d; at %d: %d", i, now, a, eff, ac)
			}
			switch {
			case st.op == opRefund:
				if got, want := raw.Refund(now, st.n), clamped.Refund(eff, st.n); got != want {
					t.Fatalf("step %d: Refund(%d, %d) = %d; at %d: %d", i, now, st.n, got, eff, want)
				}
				if k.Refunds() {
					last = eff
				}
			case st.op == opForce || r == now:
				raw.Take(now, st.n)
				clamped.Take(eff, st.n)
				last = eff
			}
		}
	})
}

func TestCloneIsIndependent(t *testing.T) {
	const w, c = int64(1e9), int64(10)
	for _, k := range []algorithms.Kind{algorithms.TokenBucket, algorithms.LeakyBucket, algorithms.SlidingWindow, algorithms.FixedWindow, algorithms.GCRA} {
		s := algorithms.New(k, time.Duration(w), c)
		s.Take(0, 3)
		s.Take(100, 2)
		cl := s.Clone()
		for _, now := range []int64{100, 5e8, 2e9} {
			if a, b := s.Available(now), cl.Available(now); a != b {
				t.Fatalf("%v: clone has %d available at %d, original %d", k, b, now, a)
			}
		}
		before, readyBefore := s.Available(200), s.Ready(200, 1)
		cl.Take(200, 5)
		if s.Available(200) != before || s.Ready(200, 1) != readyBefore {
			t.Fatalf("%v: taking from the clone changed the original", k)
		}
		if cl.Ready(200, 1) == readyBefore {
			t.Fatalf("%v: the clone did not take", k)
		}
	}
}
