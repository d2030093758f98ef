package algorithms_test

import (
	"math"
	"testing"

	"github.com/concurry/concurry/algorithms"
	"pgregory.net/rapid"
)

// TestSlidingWindowTable checks SlidingWindow at exact instants.
func TestSlidingWindowTable(t *testing.T) {
	t.Run("rolling", func(t *testing.T) {
		s := newState(algorithms.SlidingWindow, sec, 3)
		for _, at := range []int64{t0, t0 + 200*ms, t0 + 400*ms} {
			eq(t, "Ready", s.Ready(at, 1), at)
			s.Take(at, 1)
		}
		eq(t, "Ready(t0+500ms,1)", s.Ready(t0+500*ms, 1), t0+sec)
		eq(t, "Ready(t0+500ms,2)", s.Ready(t0+500*ms, 2), t0+1200*ms)
		eq(t, "Ready(t0+500ms,3)", s.Ready(t0+500*ms, 3), t0+1400*ms)
		eq(t, "Ready(t0+500ms,4)", s.Ready(t0+500*ms, 4), algorithms.Never)
		eq(t, "Ready(t0+1s−1,1)", s.Ready(t0+sec-1, 1), t0+sec)
		eq(t, "Ready(t0+1s,1)", s.Ready(t0+sec, 1), t0+sec)
		eq(t, "Available(t0+500ms)", s.Available(t0+500*ms), 0)
		eq(t, "Available(t0+1s)", s.Available(t0+sec), 1)
		eq(t, "Available(t0+1.4s)", s.Available(t0+1400*ms), 3)
		eq(t, "Refund", s.Refund(t0+500*ms, 1), 0)
	})
	t.Run("same instant coalesces", func(t *testing.T) {
		s := newState(algorithms.SlidingWindow, sec, 3)
		s.Take(t0, 1)
		s.Take(t0, 1)
		eq(t, "Ready(t0,1)", s.Ready(t0, 1), t0)
		eq(t, "Ready(t0,2)", s.Ready(t0, 2), t0+sec)
		s.Take(t0+sec, 3) // both expired: the window holds only the new 3
		eq(t, "Available", s.Available(t0+sec), 0)
		eq(t, "Ready", s.Ready(t0+sec, 1), t0+2*sec)
	})
	t.Run("overage", func(t *testing.T) {
		s := newState(algorithms.SlidingWindow, sec, 10)
		s.Take(t0, 5)
		s.Take(t0+100*ms, 100) // counts at t0+100ms
		eq(t, "Available", s.Available(t0+999*ms), 0)
		eq(t, "Ready(t0+999ms,1)", s.Ready(t0+999*ms, 1), t0+1100*ms)
		eq(t, "Available(t0+1.1s)", s.Available(t0+1100*ms), 10)
	})
}

// slidingOracle is a brute-force sliding window: the list of every take.
type slidingOracle struct {
	w, c  int64
	takes [][2]int64 // instant, amount
}

// sum returns the units taken in (t−W, t].
func (o *slidingOracle) sum(t int64) (s int64) {
	for _, e := range o.takes {
		if e[0] > t-o.w && e[0] <= t {
			s += e[1]
		}
	}
	return s
}

// TestSlidingWindowNeverOverAdmits checks, over traces of conditional takes,
// that every (t−W, t] holds at most C units.
func TestSlidingWindowNeverOverAdmits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawParams(t)
		s := newState(algorithms.SlidingWindow, p.window, p.capacity)
		o := &slidingOracle{w: p.window, c: p.capacity}
		now := p.start
		for _, st := range drawTrace(t, p, []opKind{opTry}, false) {
			now += st.dt
			if s.Ready(now, st.n) == now {
				s.Take(now, st.n)
				o.takes = append(o.takes, [2]int64{now, st.n})
			}
		}
		for _, e := range o.takes { // the sum peaks at an admission
			if sum := o.sum(e[0]); sum > p.capacity {
				t.Fatalf("%d units in (%d, %d]", sum, e[0]-p.window, e[0])
			}
		}
	})
}

// TestSlidingWindowMatchesBruteForce replays random traces of conditional and
// overage takes and of lowering, with steps back in time, through
// SlidingWindow and the brute-force window: Ready and Available must agree
// at every step, and Debt is the sum beyond the capacity in (now−W, now].
func TestSlidingWindowMatchesBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawParams(t)
		s := newState(algorithms.SlidingWindow, p.window, p.capacity)
		o := &slidingOracle{w: p.window, c: p.capacity}
		// An instant before the last take counts as that take's instant.
		now, last := p.start, int64(math.MinInt64)
		for _, st := range drawTrace(t, p, []opKind{opTry, opForce, opLower}, true) {
			now += st.dt
			n := min(max(st.n, 1), p.capacity)
			checkReady(t, s, now, n, func(at int64) bool { return o.sum(max(at, last))+n <= p.capacity })
			avail := max(p.capacity-o.sum(max(now, last)), 0)
			if got := s.Available(now); got != avail {
				t.Fatalf("Available(%d) = %d, want %d", now, got, avail)
			}
			debt := windowDebt(o.sum(max(now, last)), p.capacity)
			if got := s.Debt(now); got != debt {
				t.Fatalf("Debt(%d) = %d, want %d", now, got, debt)
			}
			if st.op == opLower {
				s.Lower(now, st.n)
				if k := avail - debt - max(st.n, -algorithms.MaxDebt); k > 0 { // counted as taken at now
					last = max(last, now)
					o.takes = append(o.takes, [2]int64{last, k})
				}
				continue
			}
			if st.op == opForce || s.Ready(now, n) == now {
				last = max(last, now)
				s.Take(now, st.n)
				o.takes = append(o.takes, [2]int64{last, st.n})
			}
		}
	})
}

// TestSlidingWindowLongRun takes greedily for a million polls, 7ms apart:
// one unit whenever it fits. With C=3 and W=1s the takes repeat every 143
// polls (1001ms, the window rounded up to the grid), at its first three polls.
func TestSlidingWindowLongRun(t *testing.T) {
	const c, w = 3, sec
	s := newState(algorithms.SlidingWindow, w, c)
	for k := int64(1); k <= 1_000_000; k++ {
		now := t0 + 7*ms*k
		took := s.Ready(now, 1) == now
		if want := k%143 >= 1 && k%143 <= 3; took != want {
			t.Fatalf("poll %d: took %v, want %v", k, took, want)
		}
		if took {
			s.Take(now, 1)
		}
	}
}
