package algorithms

import "math"

// gcra is the [GCRA] state: the theoretical arrival time TAT, kept exactly as
// tat + rem/capacity nanoseconds. The emission interval is T = window/capacity
// and the tolerance τ = capacity·T = window.
//
// The backlog at instant t is (TAT − t)·C, in units of 1/W token: the
// deficit a token bucket would have, times W. That is why GCRA admits exactly
// what [TokenBucket] admits, refunds included. Ready and Available never
// change the state.
type gcra struct {
	window   int64  // W in nanoseconds, > 0
	capacity int64  // C, > 0
	tat      int64  // whole nanoseconds of TAT; math.MaxInt64 once saturated
	rem      uint64 // TAT's fraction in units of 1/capacity ns, < capacity
	last     int64  // the latest instant an update was made at
}

// newGCRA returns a GCRA state with TAT in the distant past: a full burst of
// capacity units is available.
func newGCRA(window, capacity int64) State {
	return &gcra{window: window, capacity: capacity, tat: math.MinInt64, last: math.MinInt64}
}

// saturated is the backlog of a TAT that overflowed: more than any real one.
var saturated = u128{hi: math.MaxUint64, lo: math.MaxUint64}

// backlog returns (TAT − t)·C and true when TAT is after t, or false when
// TAT ≤ t (the bucket is full). A saturated TAT is later than every instant.
func (g *gcra) backlog(t int64) (u128, bool) {
	if g.tat == math.MaxInt64 {
		return saturated, true
	}
	if g.tat < t || (g.tat == t && g.rem == 0) {
		return u128{}, false
	}
	return mul64(span(t, g.tat), uint64(g.capacity)).add(from64(g.rem)), true
}

// Ready returns now when max(TAT, now) + n·T − now ≤ τ, otherwise the first
// whole nanosecond s with TAT + n·T − s ≤ τ. It returns Never when n exceeds
// the capacity or TAT has saturated.
func (g *gcra) Ready(now, n int64) int64 {
	if n > g.capacity {
		return Never
	}
	if n <= 0 {
		return now
	}
	t := max(now, g.last)
	b, late := g.backlog(t)
	// Admit iff backlog + n·W ≤ C·W, i.e. backlog ≤ slack.
	slack := mul64(uint64(g.capacity-n), uint64(g.window))
	if !late || !slack.less(b) {
		return now
	}
	if g.tat == math.MaxInt64 {
		return Never
	}
	// s ≥ TAT − slack/C = tat − (slack − rem)/C.
	if slack.less(from64(g.rem)) { // only when n = C: s = ⌈tat + rem/C⌉
		return g.tat + 1
	}
	q, _ := slack.sub(from64(g.rem)).divmod(uint64(g.capacity))
	return g.tat - int64(q.lo) // q ≤ W, and tat − q > t
}

// Take sets TAT = max(TAT, now) + n·T, saturating at math.MaxInt64.
func (g *gcra) Take(now, n int64) {
	if n <= 0 {
		return
	}
	t := max(now, g.last)
	g.last = t
	if _, late := g.backlog(t); !late {
		g.tat, g.rem = t, 0
	}
	if g.tat == math.MaxInt64 {
		return
	}
	q, r := mul64(uint64(n), uint64(g.window)).divmod(uint64(g.capacity))
	rem := g.rem + r
	if rem >= uint64(g.capacity) {
		rem -= uint64(g.capacity)
		q = q.add(from64(1))
	}
	g.tat = addSat(g.tat, q)
	if g.tat == math.MaxInt64 {
		rem = 0
	}
	g.rem = rem
}

// Refund moves TAT back by n·T, but never before now. It returns n when the
// whole move fits, otherwise ⌊(TAT − now)·C/W⌋: the whole units the move
// gave back, the same as [TokenBucket] returns. A saturated TAT stays
// saturated.
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
	if g.tat == math.MaxInt64 { // debt past the int64 range stays there
		return n
	}
	nw := mul64(uint64(n), uint64(g.window))
	if !nw.less(b) { // back to a full bucket: TAT = now
		g.tat, g.rem = t, 0
		q, _ := b.divmod(uint64(g.window)) // ≤ n
		return int64(q.lo)
	}
	q, r := nw.divmod(uint64(g.capacity)) // n·T < TAT − t, so q fits
	if g.rem < r {
		g.rem += uint64(g.capacity) - r
		q = q.add(from64(1))
	} else {
		g.rem -= r
	}
	g.tat -= int64(q.lo)
	return n
}

// Available returns C − ⌈(TAT − now)·C/W⌉, clamped to [0, capacity]: the
// whole units a token bucket would hold.
func (g *gcra) Available(now int64) int64 {
	b, late := g.backlog(max(now, g.last))
	if !late {
		return g.capacity
	}
	deficit := b.ceilDiv(uint64(g.window))
	if !deficit.less(from64(uint64(g.capacity))) {
		return 0
	}
	return g.capacity - int64(deficit.lo)
}

// Clone returns a copy of the state.
func (b *gcra) Clone() State {
	c := *b
	return &c
}
