package algorithms_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"pgregory.net/rapid"

	"github.com/concurry/concurry/algorithms"
)

// packedKinds lists the kinds with a packed form.
var packedKinds = []algorithms.Kind{algorithms.TokenBucket, algorithms.LeakyBucket, algorithms.FixedWindow, algorithms.GCRA}

// TestPackedMatchesState replays random traces (TryTake among them), in the ordinary range and
// at its ends, going back in time now and then, through a State and
// through the packed form of the same limit: every answer of every method
// must be the same, and so must Last.
func TestPackedMatchesState(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		kind := rapid.SampledFrom(packedKinds).Draw(t, "kind")
		p := rapid.OneOf(rapid.Custom(drawParams), rapid.Custom(drawRangeParams)).Draw(t, "limit")
		ops := []opKind{opTry, opForce, opRefund, opQueue, opLower}
		s := newState(kind, p.window, p.capacity)
		l := algorithms.Limit{Kind: kind, Window: p.window, Capacity: p.capacity}
		w := make([]int64, l.Words())
		l.Start(w)
		now := p.start
		for i, st := range drawTrace(t, p, ops, true) {
			switch {
			case st.dt > 0 && now > math.MaxInt64-1-st.dt:
				now = math.MaxInt64 - 1
			case st.dt < 0 && now < math.MinInt64-st.dt:
				now = math.MinInt64
			default:
				now += st.dt
			}
			same(t, i, "Ready", l.Ready(w, now, st.n), s.Ready(now, st.n))
			switch st.op {
			case opTry: // TryTake: Ready then Take, or nothing at all
				ready := s.Ready(now, st.n) <= now
				before := slices.Clone(w)
				if got := l.TryTake(w, now, st.n); got != ready {
					t.Fatalf("step %d: TryTake(%d) = %v, State ready: %v", i, st.n, got, ready)
				}
				if ready {
					s.Take(now, st.n)
				} else if !slices.Equal(w, before) {
					t.Fatalf("step %d: TryTake(%d) refused but changed the state: %v -> %v", i, st.n, before, w)
				}
			case opQueue, opForce:
				s.Take(now, st.n)
				l.Take(w, now, st.n)
			case opRefund:
				same(t, i, "Refund", l.Refund(w, now, st.n), s.Refund(now, st.n))
			case opLower:
				s.Lower(now, st.n)
				l.Lower(w, now, st.n)
			}
			same(t, i, "Available", l.Available(w, now), s.Available(now))
			same(t, i, "Debt", l.Debt(w, now), s.Debt(now))
			same(t, i, "Last", l.Last(w), s.Last())
		}
	})
}

// same fails the trace when the packed form answered got at step i where
// the State answered want.
func same(t *rapid.T, i int, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Fatalf("step %d: packed %s = %d, State %d", i, what, got, want)
	}
}

// TestPackedWords checks the size of every kind's packed form, and that the
// kinds without one, and invalid limits, panic.
func TestPackedWords(t *testing.T) {
	want := map[algorithms.Kind]int{algorithms.TokenBucket: 3, algorithms.LeakyBucket: 3, algorithms.FixedWindow: 3, algorithms.GCRA: 4, algorithms.SlidingWindow: 0}
	for k, n := range want {
		assert.Equal(t, n, algorithms.Limit{Kind: k, Window: sec, Capacity: 1}.Words(), k.String())
	}
	w := make([]int64, 4)
	sliding := algorithms.Limit{Kind: algorithms.SlidingWindow, Window: sec, Capacity: 1}
	assert.Panics(t, func() { sliding.Start(w) })
	assert.Panics(t, func() { sliding.Ready(w, 0, 1) })
	assert.Equal(t, 0, algorithms.Limit{Kind: 99, Window: sec, Capacity: 1}.Words(), "an unknown kind")
	assert.Panics(t, func() { algorithms.Limit{Kind: 99, Window: sec, Capacity: 1}.Start(w) })
	assert.Panics(t, func() { algorithms.Limit{Window: 0, Capacity: 1}.Start(w) })
	assert.Panics(t, func() { algorithms.Limit{Window: int64(time.Second), Capacity: 0}.Start(w) })
	assert.Panics(t, func() { algorithms.Limit{Kind: algorithms.GCRA, Window: sec, Capacity: 1}.Start(w[:3]) })
}

// TestLast checks State.Last: math.MinInt64 for a new state; the instant of
// the latest Take, Refund or Lower that changed the state; never moved back
// by an earlier instant, nor by a Ready or Available.
func TestLast(t *testing.T) {
	for _, k := range allKinds {
		s := newState(k, sec, 10)
		eq(t, k.String()+" new", s.Last(), int64(math.MinInt64))
		s.Take(t0, 1)
		eq(t, k.String()+" after Take", s.Last(), t0)
		s.Take(t0-sec, 1)
		_ = s.Ready(t0+sec, 1)
		_ = s.Available(t0 + sec)
		eq(t, k.String()+" after an earlier Take and reads", s.Last(), t0)
		s.Lower(t0+2*sec, 0)
		eq(t, k.String()+" after Lower", s.Last(), t0+2*sec)
		s.Refund(t0+3*sec, 1)
		want := t0 + 2*sec // a refund that does not refund changes nothing
		if k.Refunds() {
			want = t0 + 3*sec
		}
		eq(t, k.String()+" after Refund", s.Last(), want)
	}
}
