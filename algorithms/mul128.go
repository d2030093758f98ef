package algorithms

import (
	"math"
	"math/bits"
)

// u128 is an unsigned 128-bit integer hi·2^64 + lo. The algorithms use it for
// products such as capacity×window, which overflow 64 bits for large limits
// (2^50 units per 366 days is about 2^105). The zero value is 0.
type u128 struct{ hi, lo uint64 }

// from64 returns x as a u128.
func from64(x uint64) u128 { return u128{lo: x} }

// mul64 returns the full 128-bit product a·b.
func mul64(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi: hi, lo: lo}
}

// add returns x+y modulo 2^128; callers only add values whose sum fits.
func (x u128) add(y u128) u128 {
	lo, carry := bits.Add64(x.lo, y.lo, 0)
	hi, _ := bits.Add64(x.hi, y.hi, carry)
	return u128{hi: hi, lo: lo}
}

// sub returns x−y modulo 2^128; callers only subtract y ≤ x.
func (x u128) sub(y u128) u128 {
	lo, borrow := bits.Sub64(x.lo, y.lo, 0)
	hi, _ := bits.Sub64(x.hi, y.hi, borrow)
	return u128{hi: hi, lo: lo}
}

// mul returns x·y modulo 2^128; callers only multiply values whose product
// fits.
func (x u128) mul(y uint64) u128 {
	p := mul64(x.lo, y)
	p.hi += x.hi * y
	return p
}

// less reports whether x < y.
func (x u128) less(y u128) bool {
	return x.hi < y.hi || (x.hi == y.hi && x.lo < y.lo)
}

// isZero reports whether x is 0.
func (x u128) isZero() bool { return x.hi == 0 && x.lo == 0 }

// divmod returns the quotient and remainder of x divided by d. It panics
// (division by zero) when d is 0; the algorithms only divide by a positive
// window or capacity.
func (x u128) divmod(d uint64) (u128, uint64) {
	qhi, r := x.hi/d, x.hi%d
	qlo, r := bits.Div64(r, x.lo, d)
	return u128{hi: qhi, lo: qlo}, r
}

// ceilDiv returns ⌈x/d⌉ for d > 0.
func (x u128) ceilDiv(d uint64) u128 {
	q, r := x.divmod(d)
	if r != 0 {
		q = q.add(from64(1))
	}
	return q
}

// addSat returns a+b, or math.MaxInt64 (that is, [Never]) when the sum does
// not fit an int64.
func addSat(a int64, b u128) int64 {
	room := uint64(math.MaxInt64) - uint64(a) // MaxInt64−a, exact for every a
	if b.hi != 0 || b.lo > room {
		return math.MaxInt64
	}
	return int64(uint64(a) + b.lo)
}

// addSat64 returns a+b for b ≥ 0, saturating at math.MaxInt64.
func addSat64(a, b int64) int64 { return addSat(a, from64(uint64(b))) }

// span returns b−a as an unsigned number for a ≤ b; the difference of any two
// int64 values that are in order fits a uint64.
func span(a, b int64) uint64 { return uint64(b) - uint64(a) }
