package algorithms

import "math"

// tokenBucket is the [TokenBucket] state. The level at instant last is the
// exact rational tokens + frac/window; it refills at capacity/window per
// nanosecond up to capacity. A negative level is debt left by overage.
//
// Invariants: 0 ≤ frac < window; −MaxDebt ≤ tokens ≤ capacity; frac = 0
// when tokens = capacity. Ready and Available never change the state, so asking
// about a future instant cannot grant refill early.
type tokenBucket struct {
	window   int64  // W in nanoseconds, > 0
	capacity int64  // C, > 0
	tokens   int64  // whole tokens at last; at least −MaxDebt
	frac     uint64 // fractional token at last, in units of 1/window token
	last     int64  // the latest instant the state was advanced to
}

// newTokenBucket returns a full bucket of capacity tokens refilling over window.
func newTokenBucket(window, capacity int64) tokenBucket {
	return tokenBucket{window: window, capacity: capacity, tokens: capacity, last: math.MinInt64}
}

// at returns the level (whole tokens and fraction) at instant t ≥ b.last,
// without changing the state.
func (b *tokenBucket) at(t int64) (int64, uint64) {
	if b.tokens >= b.capacity || t <= b.last {
		return b.tokens, b.frac
	}
	w := uint64(b.window)
	// Everything in units of 1/W token: the refill gained since last plus the
	// fraction already held, against what is missing to a full bucket.
	gained := mul64(span(b.last, t), uint64(b.capacity)).add(from64(b.frac))
	missing := mul64(span(b.tokens, b.capacity), w)
	if !gained.less(missing) {
		return b.capacity, 0
	}
	q, r := gained.divmod(w) // q < capacity − tokens, so the sum fits
	return int64(uint64(b.tokens) + q.lo), r
}

// advance moves the state to max(now, last), the instant every update uses.
func (b *tokenBucket) advance(now int64) {
	t := max(now, b.last)
	b.tokens, b.frac = b.at(t)
	b.last = t
}

// Ready returns now when n tokens are available at now, otherwise the first
// whole nanosecond at which the refill reaches n: now plus
// ⌈((n − level)·W)/C⌉. It returns Never when n exceeds the capacity or the
// instant overflows.
func (b *tokenBucket) Ready(now, n int64) int64 {
	if n > b.capacity {
		return Never
	}
	if n <= 0 {
		return now
	}
	t := max(now, b.last)
	tokens, frac := b.at(t)
	if tokens >= n {
		return now
	}
	need := mul64(span(tokens, n), uint64(b.window)).sub(from64(frac))
	return addSat(t, need.ceilDiv(uint64(b.capacity)))
}

// Take removes n tokens at now, going into debt when fewer are available.
// The whole tokens stop at −MaxDebt; the fraction is kept.
func (b *tokenBucket) Take(now, n int64) {
	if n <= 0 {
		return
	}
	b.advance(now)
	if n > b.tokens+MaxDebt {
		b.tokens = -MaxDebt
		return
	}
	b.tokens -= n
}

// Refund adds back n tokens at now, capped at a full bucket. It returns n when
// all of them fit, otherwise the whole tokens the bucket was missing: ⌊C −
// level⌋, which discards a fraction of a token that did fit.
func (b *tokenBucket) Refund(now, n int64) int64 {
	if n <= 0 {
		return 0
	}
	b.advance(now)
	room := span(b.tokens, b.capacity) // whole tokens up to C; the real room is room − frac/W
	if uint64(n) < room || (uint64(n) == room && b.frac == 0) {
		b.tokens += n
		return n
	}
	given := room
	if b.frac > 0 {
		given--
	}
	b.tokens, b.frac = b.capacity, 0
	return int64(given)
}

// Available returns ⌊level⌋ at now, clamped to [0, capacity].
func (b *tokenBucket) Available(now int64) int64 {
	tokens, _ := b.at(max(now, b.last))
	return max(tokens, 0)
}

// Debt returns −⌊level⌋ at now when the level is below zero, else 0.
func (b *tokenBucket) Debt(now int64) int64 {
	tokens, _ := b.at(max(now, b.last))
	return max(-tokens, 0)
}

// Lower takes ⌊level⌋ − remaining tokens at now when that is positive, so
// that ⌊level⌋ becomes remaining (at least −MaxDebt) and the fraction of a
// token is kept.
func (b *tokenBucket) Lower(now, remaining int64) {
	tokens, _ := b.at(max(now, b.last))
	if k := tokens - max(remaining, -MaxDebt); k > 0 { // tokens ≥ −MaxDebt: no overflow
		b.Take(now, k)
	}
}

// Clone returns a copy of the state.
func (b *tokenBucket) Clone() State {
	c := *b
	return &c
}

// Last returns the latest instant an update was made at.
func (b *tokenBucket) Last() int64 { return b.last }
