package algorithms_test

import (
	"math"
	"testing"

	"github.com/concurry/concurry/algorithms"
	"pgregory.net/rapid"
)

// TestFixedWindowTable checks FixedWindow at exact instants.
func TestFixedWindowTable(t *testing.T) {
	t.Run("boundary burst", func(t *testing.T) {
		s := newState(algorithms.FixedWindow, sec, 10) // t0 is on a window start
		s.Take(t0+999*ms, 10)
		eq(t, "Available", s.Available(t0+999*ms), 0)
		eq(t, "Ready(t0+999ms,1)", s.Ready(t0+999*ms, 1), t0+sec)
		eq(t, "Ready(t0+1s−1,1)", s.Ready(t0+sec-1, 1), t0+sec)
		eq(t, "Ready(t0+1s,10)", s.Ready(t0+sec, 10), t0+sec)
		s.Take(t0+sec, 10) // 2×C within 1ms, by design
		eq(t, "Ready(t0+1s,1)", s.Ready(t0+sec, 1), t0+2*sec)
		eq(t, "Available(t0+2s)", s.Available(t0+2*sec), 10)
		eq(t, "Ready(t0,11)", s.Ready(t0, 11), algorithms.Never)
		eq(t, "Refund", s.Refund(t0+sec, 5), 0)
	})
	t.Run("partial", func(t *testing.T) {
		s := newState(algorithms.FixedWindow, 3*sec, 5) // t0 is a multiple of 3s too
		s.Take(t0+sec, 3)
		eq(t, "Ready(t0+1s,2)", s.Ready(t0+sec, 2), t0+sec)
		eq(t, "Ready(t0+1s,3)", s.Ready(t0+sec, 3), t0+3*sec)
		eq(t, "Available", s.Available(t0+2*sec), 2)
	})
	t.Run("overage", func(t *testing.T) {
		s := newState(algorithms.FixedWindow, sec, 10)
		s.Take(t0+500*ms, 100)
		eq(t, "Ready", s.Ready(t0+500*ms, 1), t0+sec)
		eq(t, "Available(t0+1s)", s.Available(t0+sec), 10)
	})
	t.Run("never", func(t *testing.T) {
		s := newState(algorithms.FixedWindow, 366*day, 1)
		last := math.MaxInt64 - 10
		s.Take(int64(last), 1)
		eq(t, "Ready", s.Ready(int64(last), 1), algorithms.Never)
	})
}

// fixedOracle is a brute-force fixed window: a counter per window index.
type fixedOracle struct {
	w, c   int64
	counts map[int64]int64
}

// index returns ⌊t/W⌋.
func (o *fixedOracle) index(t int64) int64 {
	q := t / o.w
	if t%o.w < 0 {
		q--
	}
	return q
}

// TestFixedWindowNeverOverAdmits checks, over traces of conditional takes,
// that no aligned window holds more than C units.
func TestFixedWindowNeverOverAdmits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawParams(t)
		s := newState(algorithms.FixedWindow, p.window, p.capacity)
		o := &fixedOracle{w: p.window, c: p.capacity, counts: map[int64]int64{}}
		now := p.start
		for _, st := range drawTrace(t, p, []opKind{opTry}, false) {
			now += st.dt
			if s.Ready(now, st.n) == now {
				s.Take(now, st.n)
				o.counts[o.index(now)] += st.n
			}
		}
		for idx, n := range o.counts {
			if n > p.capacity {
				t.Fatalf("%d units in window %d", n, idx)
			}
		}
	})
}

// TestFixedWindowMatchesBruteForce replays random traces of conditional and
// overage takes and of lowering, with steps back in time, through
// FixedWindow and the brute-force counters: Ready and Available must agree
// at every step, and Debt is the count beyond the capacity in now's window.
func TestFixedWindowMatchesBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawParams(t)
		s := newState(algorithms.FixedWindow, p.window, p.capacity)
		o := &fixedOracle{w: p.window, c: p.capacity, counts: map[int64]int64{}}
		now, last := p.start, int64(math.MinInt64) // last: the last take's instant
		for _, st := range drawTrace(t, p, []opKind{opTry, opForce, opLower}, true) {
			now += st.dt
			n := min(max(st.n, 1), p.capacity)
			fits := func(at int64) bool { return o.counts[o.index(max(at, last))]+n <= p.capacity }
			checkReady(t, s, now, n, fits)
			if r := s.Ready(now, n); r != now && r != (o.index(max(now, last))+1)*p.window {
				t.Fatalf("Ready(%d, %d) = %d, not the next window's start", now, n, r)
			}
			avail := max(p.capacity-o.counts[o.index(max(now, last))], 0)
			if got := s.Available(now); got != avail {
				t.Fatalf("Available(%d) = %d, want %d", now, got, avail)
			}
			debt := windowDebt(o.counts[o.index(max(now, last))], p.capacity)
			if got := s.Debt(now); got != debt {
				t.Fatalf("Debt(%d) = %d, want %d", now, got, debt)
			}
			if st.op == opLower {
				s.Lower(now, st.n)
				if k := avail - debt - max(st.n, -algorithms.MaxDebt); k > 0 { // counted in now's window
					last = max(last, now)
					o.counts[o.index(last)] += k
				}
				continue
			}
			if st.op == opForce || s.Ready(now, n) == now {
				last = max(last, now)
				s.Take(now, st.n)
				o.counts[o.index(last)] += st.n
			}
		}
	})
}
