package algorithms

import "fmt"

// Limit is the definition of one rate limit, and the functions of its state
// in packed form: [Limit.Words] int64 words that the caller owns, so that a
// backend can keep the states of all its limits in one allocation of its own
// instead of one object per limit (the in-memory backend keeps a set's whole
// state in one slice). The packed form computes exactly what the [State] of
// [New] computes: each method loads the words into the algorithm's state, runs
// the State method of the same name, and stores the words back.
//
// A [SlidingWindow] has no packed form (Words returns 0, and the other
// methods panic): it keeps a varying number of takes; keep it as a State.
// Neither has an unknown kind.
//
// The words are made by [Limit.Start] and changed only by the methods of
// the same Limit; like a State they are not safe for concurrent use.
type Limit struct {
	Kind     Kind
	Window   int64 // nanoseconds, > 0
	Capacity int64 // > 0
}

// packedWords is the number of words of each kind's packed state, indexed
// by any Kind: 0 for SlidingWindow and for the kinds that do not exist.
var packedWords = [256]uint8{TokenBucket: 3, LeakyBucket: 3, SlidingWindow: 0, FixedWindow: 3, GCRA: 4}

// Words returns the number of words of l's packed state: 3, or 4 for GCRA,
// or 0 for SlidingWindow (which has none) and for an unknown kind.
func (l Limit) Words() int { return int(packedWords[l.Kind]) }

// Start writes the initial state of l into w[:l.Words()], as [New] makes it:
// a full bucket, an empty queue, nothing taken. It panics when the window or
// the capacity is not positive, when the kind is unknown or has no packed
// form, and when w is too short.
func (l Limit) Start(w []int64) {
	checkLimit(l.Window, l.Capacity)
	switch l.Kind {
	case TokenBucket:
		b := newTokenBucket(l.Window, l.Capacity)
		b.store(w)
	case LeakyBucket:
		q := newLeakyBucket(l.Window, l.Capacity)
		q.store(w)
	case FixedWindow:
		f := newFixedWindow(l.Window, l.Capacity)
		f.store(w)
	case GCRA:
		g := newGCRA(l.Window, l.Capacity)
		g.store(w)
	default:
		panic(l.unpacked())
	}
}

// Ready is [State.Ready] on the packed state w.
func (l Limit) Ready(w []int64, now, n int64) int64 {
	return packedOps[l.Kind](l, opReady, w, now, n)
}

// Take is [State.Take] on the packed state w.
func (l Limit) Take(w []int64, now, n int64) { packedOps[l.Kind](l, opTake, w, now, n) }

// TryTake takes n at now when n is ready at now (Ready(w, now, n) ≤ now),
// as Take does, and reports whether it did; otherwise it leaves w as it is.
// It is Ready then Take in one pass, for a request granted at once.
func (l Limit) TryTake(w []int64, now, n int64) bool {
	return packedOps[l.Kind](l, opTryTake, w, now, n) != 0
}

// Refund is [State.Refund] on the packed state w. Only TokenBucket and GCRA
// refund; the others return 0 and leave w as it is.
func (l Limit) Refund(w []int64, now, n int64) int64 {
	return packedOps[l.Kind](l, opRefund, w, now, n)
}

// Available is [State.Available] on the packed state w.
func (l Limit) Available(w []int64, now int64) int64 {
	return packedOps[l.Kind](l, opAvailable, w, now, 0)
}

// Debt is [State.Debt] on the packed state w.
func (l Limit) Debt(w []int64, now int64) int64 {
	return packedOps[l.Kind](l, opDebt, w, now, 0)
}

// Lower is [State.Lower] on the packed state w.
func (l Limit) Lower(w []int64, now, remaining int64) {
	packedOps[l.Kind](l, opLower, w, now, remaining)
}

// Last is [State.Last] on the packed state w. Every packed kind keeps it in
// w[0].
func (l Limit) Last(w []int64) int64 { return w[0] }

// unpacked returns the panic value of a method called on a kind without a
// packed form: SlidingWindow, or an unknown kind.
func (l Limit) unpacked() string {
	return fmt.Sprintf("algorithms: %v has no packed state", l.Kind)
}

// packedOp names a State method, for the functions of packedOps.
type packedOp uint8

const (
	opReady packedOp = iota
	opTake
	opRefund
	opAvailable
	opDebt
	opLower
	opTryTake // returns 1 when it took, 0 (w unchanged) when not ready
)

// packedOps runs a State method on a packed state, per kind: it loads the
// words, runs the method with now and n (remaining, for Lower), stores the
// words back, and returns the method's result (0 when it has none). One
// function per kind keeps each one's frame small, and the Limit methods
// small enough to be inlined into their callers.
var packedOps = [...]func(l Limit, op packedOp, w []int64, now, n int64) int64{
	TokenBucket:   tokenBucketOp,
	LeakyBucket:   leakyBucketOp,
	SlidingWindow: unpackedOp,
	FixedWindow:   fixedWindowOp,
	GCRA:          gcraOp,
}

func tokenBucketOp(l Limit, op packedOp, w []int64, now, n int64) int64 {
	var b tokenBucket
	b.load(l, w)
	switch op {
	case opReady:
		return b.Ready(now, n)
	case opAvailable:
		return b.Available(now)
	case opDebt:
		return b.Debt(now)
	case opTake:
		b.Take(now, n)
		n = 0
	case opRefund:
		n = b.Refund(now, n)
	case opLower:
		b.Lower(now, n)
		n = 0
	case opTryTake:
		if n <= 0 {
			return 1
		}
		t := max(now, b.last)
		tokens, frac := b.at(t)
		if n > b.capacity || tokens < n {
			return 0
		}
		b.last, b.tokens, b.frac, n = t, tokens-n, frac, 1
	}
	b.store(w)
	return n
}

func leakyBucketOp(l Limit, op packedOp, w []int64, now, n int64) int64 {
	var q leakyBucket
	q.load(l, w)
	switch op {
	case opReady:
		return q.Ready(now, n)
	case opAvailable:
		return q.Available(now)
	case opDebt:
		return q.Debt(now)
	case opTake:
		q.Take(now, n)
		n = 0
	case opRefund:
		n = q.Refund(now, n)
	case opLower:
		q.Lower(now, n)
		n = 0
	case opTryTake:
		if q.Ready(now, n) > now {
			return 0
		}
		q.Take(now, n)
		n = 1
	}
	q.store(w)
	return n
}

func fixedWindowOp(l Limit, op packedOp, w []int64, now, n int64) int64 {
	var f fixedWindow
	f.load(l, w)
	switch op {
	case opReady:
		return f.Ready(now, n)
	case opAvailable:
		return f.Available(now)
	case opDebt:
		return f.Debt(now)
	case opTake:
		f.Take(now, n)
		n = 0
	case opRefund:
		n = f.Refund(now, n)
	case opLower:
		f.Lower(now, n)
		n = 0
	case opTryTake:
		if f.Ready(now, n) > now {
			return 0
		}
		f.Take(now, n)
		n = 1
	}
	f.store(w)
	return n
}

func gcraOp(l Limit, op packedOp, w []int64, now, n int64) int64 {
	var g gcra
	g.load(l, w)
	switch op {
	case opReady:
		return g.Ready(now, n)
	case opAvailable:
		return g.Available(now)
	case opDebt:
		return g.Debt(now)
	case opTake:
		g.Take(now, n)
		n = 0
	case opRefund:
		n = g.Refund(now, n)
	case opLower:
		g.Lower(now, n)
		n = 0
	case opTryTake:
		if g.Ready(now, n) > now {
			return 0
		}
		g.Take(now, n)
		n = 1
	}
	g.store(w)
	return n
}

// unpackedOp stands for the kinds without a packed form: it panics.
func unpackedOp(l Limit, _ packedOp, _ []int64, _, _ int64) int64 { panic(l.unpacked()) }

// The packed layout of each kind: last first, then the kind's own fields.
// load fills the state from the words; store writes it back.

func (b *tokenBucket) load(l Limit, w []int64) {
	_ = w[2]
	b.window, b.capacity, b.last, b.tokens, b.frac = l.Window, l.Capacity, w[0], w[1], uint64(w[2])
}

func (b *tokenBucket) store(w []int64) { w[0], w[1], w[2] = b.last, b.tokens, int64(b.frac) }

func (q *leakyBucket) load(l Limit, w []int64) {
	_ = w[2]
	q.window, q.capacity, q.last, q.next, q.rem = l.Window, l.Capacity, w[0], w[1], uint64(w[2])
}

func (q *leakyBucket) store(w []int64) { w[0], w[1], w[2] = q.last, q.next, int64(q.rem) }

func (f *fixedWindow) load(l Limit, w []int64) {
	_ = w[2]
	f.window, f.capacity, f.last, f.index, f.count = l.Window, l.Capacity, w[0], w[1], w[2]
}

func (f *fixedWindow) store(w []int64) { w[0], w[1], w[2] = f.last, f.index, f.count }

func (g *gcra) load(l Limit, w []int64) {
	_ = w[3]
	g.window, g.capacity, g.last = l.Window, l.Capacity, w[0]
	g.tat, g.rem = u128{hi: uint64(w[1]), lo: uint64(w[2])}, uint64(w[3])
}

func (g *gcra) store(w []int64) {
	w[0], w[1], w[2], w[3] = g.last, int64(g.tat.hi), int64(g.tat.lo), int64(g.rem)
}
