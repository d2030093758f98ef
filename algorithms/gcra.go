package algorithms

import "math"

// gcra is the [GCRA] state: the theoretical arrival time TAT, kept exactly as
// tat + rem/capacity nanoseconds after math.MinInt64. The emission interval is
// T = window/capacity and the tolerance τ = capacity·T = window. tat has 128
// bits because debt can put TAT past the int64 range of instants (a long
// window, or an instant near its end): a refund must still move it back.
//
// The backlog at instant t is (TAT − t)·C, in units of 1/W token: the
// deficit a token bucket would have, times W. That is why GCRA admits exactly
// what [TokenBucket] admits, refunds and the [MaxDebt] bound included. Ready
// and Available never change the state.
type gcra struct {
	window   int64  // W in nanoseconds, > 0
	capacity int64  // C, > 0
	tat      u128   // whole nanoseconds of TAT − math.MinInt64
	rem      uint64 // TAT's fraction in units of 1/capacity ns, < capacity
	last     int64  // the latest instant an update was made at
}

// newGCRA returns a GCRA state with TAT in the distant past: a full burst of
// capacity units is available.
func newGCRA(window, capacity int64) gcra {
	return gcra{window: window, capacity: capacity, last: math.MinInt64}
}

// offset returns t − math.MinInt64, the instant t on tat's scale.
func offset(t int64) u128 { return from64(span(math.MinInt64, t)) }

// backlog returns (TAT − t)·C and true when TAT is after t, or false when
// TAT ≤ t (the bucket is full). It requires t ≥ last, where the backlog is
// at most (C + MaxDebt)·W < 2^108, so the product fits.
func (g *gcra) backlog(t int64) (u128, bool) {
	o := offset(t)
	if g.tat.less(o) || (g.tat == o && g.rem == 0) {
		return u128{}, false
	}
	return g.tat.sub(o).mul(uint64(g.capacity)).add(from64(g.rem)), true
}

// set makes TAT = t + b/C, for the backlog b at t.
func (g *gcra) set(t int64, b u128) {
	q, r := b.divmod(uint64(g.capacity))
	g.tat, g.rem = offset(t).add(q), r
}

// Ready returns now when max(TAT, now) + n·T − now ≤ τ, otherwise the first
// whole nanosecond s with TAT + n·T − s ≤ τ, or Never when that is past the
// int64 range. It returns Never when n exceeds the capacity.
func (g *gcra) Ready(now, n int64) int64 {
	if n > g.capacity {
		return Never
	}
	if n <= 0 {
		return now
	}
	t := max(now, g.last)
	b, late := g.backlog(t)
	// Admit iff backlog + n·W ≤ C·W, i.e. backlog ≤ slack; the backlog falls
	// by C per nanosecond.
	slack := mul64(uint64(g.capacity-n), uint64(g.window))
	if !late || !slack.less(b) {
		return now
	}
	return addSat(t, b.sub(slack).ceilDiv(uint64(g.capacity)))
}

// Take sets TAT = max(TAT, now) + n·T. Debt stops at MaxDebt units, as a
// [TokenBucket]'s does: the backlog at most (C + MaxDebt)·W, less the
// fraction of a unit the bucket holds.
func (g *gcra) Take(now, n int64) {
	if n <= 0 {
		return
	}
	t := max(now, g.last)
	g.last = t
	b, _ := g.backlog(t)
	w := uint64(g.window)
	nb := b.add(mul64(uint64(n), w)) // < 2^108 + 2^118
	if limit := mul64(uint64(g.capacity+MaxDebt), w); limit.less(nb.add(from64(w))) {
		// At the bound, less the fraction of a unit the bucket holds.
		if _, m := b.divmod(w); m > 0 {
			limit = limit.sub(from64(w - m))
		}
		if limit.less(nb) {
			nb = limit
		}
	}
	g.set(t, nb)
}

// Refund moves TAT back by n·T, but never before now. It returns n when the
// whole move fits, otherwise ⌊(TAT − now)·C/W⌋: the whole units the move
// gave back, the same as [TokenBucket] returns.
func (g *gcra) Refund(now, n int64) int64 {
	if n <= 0 {
		return 0
	}
	t := max(now, g.last)
	g.last = t
	b, late := g.backlog(t)
	if !late {
		return 0
	}
	nw := mul64(uint64(n), uint64(g.window))
	if !nw.less(b) { // back to a full bucket: TAT = now
		g.set(t, u128{})
		q, _ := b.divmod(uint64(g.window)) // ≤ n
		return int64(q.lo)
	}
	g.set(t, b.sub(nw))
	return n
}

// Available returns C − ⌈(TAT − now)·C/W⌉, clamped to [0, capacity]: the
// whole units a token bucket would hold.
func (g *gcra) Available(now int64) int64 {
	return max(g.whole(max(now, g.last)), 0)
}

// whole returns C − ⌈(TAT − t)·C/W⌉: the level a token bucket would have at
// t, rounded down, negative in debt. It requires t ≥ last, where the
// deficit is at most C + MaxDebt.
func (g *gcra) whole(t int64) int64 {
	b, late := g.backlog(t)
	if !late {
		return g.capacity
	}
	return g.capacity - int64(b.ceilDiv(uint64(g.window)).lo)
}

// Debt returns ⌈(TAT − now)·C/W⌉ − C when that is positive, else 0: the
// debt a token bucket would have.
func (g *gcra) Debt(now int64) int64 {
	return max(-g.whole(max(now, g.last)), 0)
}

// Lower takes whole − remaining units at now when that is positive, moving
// TAT so that the level, rounded down, becomes remaining (at least
// −MaxDebt), as [TokenBucket] does.
func (g *gcra) Lower(now, remaining int64) {
	if k := g.whole(max(now, g.last)) - max(remaining, -MaxDebt); k > 0 {
		g.Take(now, k)
	}
}

// Clone returns a copy of the state.
func (g *gcra) Clone() State {
	c := *g
	return &c
}

// Last returns the latest instant an update was made at.
func (g *gcra) Last() int64 { return g.last }
