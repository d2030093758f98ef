package algorithms

import (
	"math"
	"math/big"
	"testing"

	"pgregory.net/rapid"
)

// toBig returns x as a *big.Int.
func (x u128) toBig() *big.Int {
	b := new(big.Int).SetUint64(x.hi)
	return b.Lsh(b, 64).Or(b, new(big.Int).SetUint64(x.lo))
}

// genU128 draws u128 values, often with a zero high word.
func genU128() *rapid.Generator[u128] {
	return rapid.Custom(func(t *rapid.T) u128 {
		return u128{
			hi: rapid.OneOf(rapid.Just(uint64(0)), rapid.Uint64()).Draw(t, "hi"),
			lo: rapid.Uint64().Draw(t, "lo"),
		}
	})
}

// TestMul128MatchesBig checks every 128-bit helper against math/big.
func TestMul128MatchesBig(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := rapid.Uint64().Draw(t, "a"), rapid.Uint64().Draw(t, "b")
		want := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
		if got := mul64(a, b).toBig(); got.Cmp(want) != 0 {
			t.Fatalf("mul64(%d, %d) = %v, want %v", a, b, got, want)
		}
		x, y := genU128().Draw(t, "x"), genU128().Draw(t, "y")
		if x.less(y) {
			x, y = y, x
		}
		bx, by := x.toBig(), y.toBig()
		if x.less(y) != (bx.Cmp(by) < 0) || y.less(x) != (by.Cmp(bx) < 0) {
			t.Fatalf("less(%v, %v) wrong", bx, by)
		}
		if got := x.sub(y).toBig(); got.Cmp(new(big.Int).Sub(bx, by)) != 0 {
			t.Fatalf("%v − %v = %v", bx, by, got)
		}
		if got := x.sub(y).add(y); got != x {
			t.Fatalf("(%v − %v) + %v = %v", bx, by, by, got.toBig())
		}
		eqZero := x.isZero() == (bx.Sign() == 0)
		if !eqZero {
			t.Fatalf("isZero(%v) wrong", bx)
		}
		d := rapid.OneOf(rapid.Uint64Range(1, 1000), rapid.Uint64Range(1, math.MaxUint64)).Draw(t, "d")
		q, r := x.divmod(d)
		wq, wr := new(big.Int).QuoRem(bx, new(big.Int).SetUint64(d), new(big.Int))
		if q.toBig().Cmp(wq) != 0 || wr.Uint64() != r {
			t.Fatalf("%v / %d = %v r %d, want %v r %v", bx, d, q.toBig(), r, wq, wr)
		}
		c := x.ceilDiv(d).toBig()
		if wr.Sign() != 0 {
			wq.Add(wq, big.NewInt(1))
		}
		if c.Cmp(wq) != 0 {
			t.Fatalf("⌈%v / %d⌉ = %v, want %v", bx, d, c, wq)
		}
		// mul: modulo 2^128, exact when the product fits.
		wm := new(big.Int).Mul(bx, new(big.Int).SetUint64(d))
		wm.And(wm, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1)))
		if got := x.mul(d).toBig(); got.Cmp(wm) != 0 {
			t.Fatalf("%v · %d = %v, want %v (mod 2^128)", bx, d, got, wm)
		}
	})
}

// TestSaturatingMatchesBig checks addSat, addSat64 and span against
// math/big, including the saturation edges.
func TestSaturatingMatchesBig(t *testing.T) {
	maxI := big.NewInt(math.MaxInt64)
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.OneOf(rapid.Int64(), rapid.Int64Range(math.MaxInt64-10, math.MaxInt64),
			rapid.Int64Range(math.MinInt64, math.MinInt64+10)).Draw(t, "a")
		b := genU128().Draw(t, "b")
		want := new(big.Int).Add(big.NewInt(a), b.toBig())
		if want.Cmp(maxI) > 0 {
			want.Set(maxI)
		}
		if got := addSat(a, b); got != want.Int64() {
			t.Fatalf("addSat(%d, %v) = %d, want %v", a, b.toBig(), got, want)
		}
		n := rapid.Int64Range(0, math.MaxInt64).Draw(t, "n")
		want.Add(big.NewInt(a), big.NewInt(n))
		if want.Cmp(maxI) > 0 {
			want.Set(maxI)
		}
		if got := addSat64(a, n); got != want.Int64() {
			t.Fatalf("addSat64(%d, %d) = %d, want %v", a, n, got, want)
		}
		z := rapid.Int64Range(a, math.MaxInt64).Draw(t, "z")
		if got, want := span(a, z), new(big.Int).Sub(big.NewInt(z), big.NewInt(a)); want.Uint64() != got {
			t.Fatalf("span(%d, %d) = %d, want %v", a, z, got, want)
		}
	})
}

// TestMul128Edges checks the helpers at the limits of their ranges.
func TestMul128Edges(t *testing.T) {
	m := mul64(math.MaxUint64, math.MaxUint64) // 2^128 − 2^65 + 1
	if m.hi != math.MaxUint64-1 || m.lo != 1 {
		t.Fatalf("MaxUint64² = %x:%x", m.hi, m.lo)
	}
	if q, r := m.divmod(math.MaxUint64); q != from64(math.MaxUint64) || r != 0 {
		t.Fatalf("MaxUint64²/MaxUint64 = %v r %d", q.toBig(), r)
	}
	if got := addSat(math.MinInt64, from64(math.MaxUint64)); got != math.MaxInt64 {
		t.Fatalf("addSat(MinInt64, MaxUint64) = %d", got)
	}
	if got := addSat(math.MinInt64, from64(1<<63)); got != 0 {
		t.Fatalf("addSat(MinInt64, 2^63) = %d", got)
	}
	if got := span(math.MinInt64, math.MaxInt64); got != math.MaxUint64 {
		t.Fatalf("span(MinInt64, MaxInt64) = %d", got)
	}
}

// TestSlidingWindowMemory checks that the sliding window keeps only the
// entries of its window, and gives memory back after a burst.
func TestSlidingWindowMemory(t *testing.T) {
	s := newSlidingWindow(1000, 1<<40).(*slidingWindow)
	now := int64(1_800_000_000_000_000_000)
	for i := 0; i < 100_000; i++ { // 1000 distinct instants per window
		now++
		s.Take(now, 1)
		if live := len(s.entries) - s.head; live > 1000 {
			t.Fatalf("step %d: %d entries held for a window of 1000 instants", i, live)
		}
		if cap(s.entries) > 4*1000 {
			t.Fatalf("step %d: buffer of %d for 1000 live entries", i, cap(s.entries))
		}
	}
	now += 10_000 // everything expires; one take later the buffer is small again
	s.Take(now, 1)
	s.Take(now+1, 1)
	if cap(s.entries) > 2*minShrink {
		t.Fatalf("buffer of %d after the window emptied", cap(s.entries))
	}
}
