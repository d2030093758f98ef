package algorithms

import "math"

// fixedWindow is the [FixedWindow] state: a counter for the window
// [index·W, (index+1)·W), aligned to the Unix epoch. A counter of an older
// window counts as 0. Ready and Available never change the state.
type fixedWindow struct {
	window   int64 // W in nanoseconds, > 0
	capacity int64 // C, > 0
	index    int64 // the window count belongs to
	count    int64 // units taken in window index; saturates at MaxDebt
	last     int64 // the latest instant an update was made at
}

// newFixedWindow returns a state with nothing taken in any window.
func newFixedWindow(window, capacity int64) fixedWindow {
	return fixedWindow{window: window, capacity: capacity, index: math.MinInt64, last: math.MinInt64}
}

// floorDiv returns ⌊a/b⌋ for b > 0, rounding towards −∞ for negative a.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// countAt returns the window index of instant t and the units taken in it.
func (f *fixedWindow) countAt(t int64) (int64, int64) {
	idx := floorDiv(t, f.window)
	if idx != f.index {
		return idx, 0
	}
	return idx, f.count
}

// Ready returns now when count + n ≤ C in now's window, otherwise the start
// of the next window, (index+1)·W, or Never when that overflows or n exceeds
// the capacity.
func (f *fixedWindow) Ready(now, n int64) int64 {
	if n > f.capacity {
		return Never
	}
	if n <= 0 {
		return now
	}
	idx, count := f.countAt(max(now, f.last))
	if count <= f.capacity-n {
		return now
	}
	if idx >= math.MaxInt64/f.window {
		return Never
	}
	return (idx + 1) * f.window
}

// Take adds n to the counter of now's window, resetting it first when the
// window changed. The counter stops at MaxDebt: beyond the capacity it
// blocks every request all the same, and the Redis backend counts as far.
func (f *fixedWindow) Take(now, n int64) {
	if n <= 0 {
		return
	}
	t := max(now, f.last)
	f.last = t
	idx, count := f.countAt(t)
	f.index, f.count = idx, min(addSat64(count, n), MaxDebt)
}

// Refund does nothing: fixed windows do not refund. It returns 0.
func (f *fixedWindow) Refund(int64, int64) int64 { return 0 }

// Available returns C − count for now's window, at least 0.
func (f *fixedWindow) Available(now int64) int64 {
	_, count := f.countAt(max(now, f.last))
	return max(f.capacity-count, 0)
}

// Debt returns the units counted beyond the capacity in now's window,
// count − C when positive: overage that expires with the window. It stops
// at MaxDebt − C, as the counter stops at MaxDebt.
func (f *fixedWindow) Debt(now int64) int64 {
	_, count := f.countAt(max(now, f.last))
	return max(count-f.capacity, 0)
}

// Lower takes Available(now) − Debt(now) − remaining units at now when
// that is positive, counting them in its window's counter, so that exactly
// remaining are available, or −remaining are debt (at most MaxDebt).
func (f *fixedWindow) Lower(now, remaining int64) {
	if k := f.Available(now) - f.Debt(now) - max(remaining, -MaxDebt); k > 0 {
		f.Take(now, k)
	}
}

// Clone returns a copy of the state.
func (b *fixedWindow) Clone() State {
	c := *b
	return &c
}

// Last returns the latest instant an update was made at.
func (f *fixedWindow) Last() int64 { return f.last }
