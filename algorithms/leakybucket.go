package algorithms

import "math"

// leakyBucket is the [LeakyBucket] state: a queue draining at T =
// window/capacity per unit. next is the instant the queue has drained, kept
// exactly as next + rem/capacity nanoseconds.
//
// A request of n units departs at d = max(now, ⌈next⌉), a whole nanosecond,
// and moves next to exactly d + n·T. So every departure is followed by a gap
// of at least its own n·T, exactly; when n·T is not a whole number of
// nanoseconds, back-to-back departures round up to the next nanosecond (at
// most 1 ns per departure), which can only slow the pace, never speed it up.
// Ready and Available never change the state.
type leakyBucket struct {
	window   int64  // W in nanoseconds, > 0
	capacity int64  // C, > 0
	next     int64  // whole nanoseconds of next; math.MaxInt64 once saturated
	rem      uint64 // next's fraction in units of 1/capacity ns, < capacity
	last     int64  // the latest instant an update was made at
}

// newLeakyBucket returns an empty queue: the first request departs at once.
func newLeakyBucket(window, capacity int64) leakyBucket {
	return leakyBucket{window: window, capacity: capacity, next: math.MinInt64, last: math.MinInt64}
}

// head returns ⌈next⌉, the first whole nanosecond a new request may depart at.
func (l *leakyBucket) head() int64 {
	if l.rem > 0 {
		return l.next + 1 // rem > 0 only below the saturated value
	}
	return l.next
}

// Ready returns the departure of a request of n ≤ capacity units made at now:
// now when the queue has drained, else ⌈next⌉. It returns Never when n
// exceeds the capacity or the queue reaches past the int64 range. Whether
// there is room in the queue is [leakyBucket.Available]'s question.
func (l *leakyBucket) Ready(now, n int64) int64 {
	if n > l.capacity {
		return Never
	}
	d := l.head()
	if n <= 0 || d <= max(now, l.last) {
		return now
	}
	return d
}

// Take queues n units at now: they depart at d = max(now, ⌈next⌉) and next
// becomes d + n·T exactly, saturating at math.MaxInt64.
func (l *leakyBucket) Take(now, n int64) {
	if n <= 0 {
		return
	}
	t := max(now, l.last)
	l.last = t
	d := max(t, l.head())
	q, r := mul64(uint64(n), uint64(l.window)).divmod(uint64(l.capacity))
	l.next, l.rem = addSat(d, q), r
	if l.next == math.MaxInt64 {
		l.rem = 0
	}
}

// Refund does nothing: a departed request cannot be undone. It returns 0.
func (l *leakyBucket) Refund(int64, int64) int64 { return 0 }

// queued returns the units in the queue at now, ⌈(next − now)/T⌉: 0 once
// it has drained.
func (l *leakyBucket) queued(now int64) u128 {
	t := max(now, l.last)
	if l.next < t || (l.next == t && l.rem == 0) {
		return u128{}
	}
	backlog := mul64(span(t, l.next), uint64(l.capacity)).add(from64(l.rem))
	return backlog.ceilDiv(uint64(l.window))
}

// Available returns the room left in the queue at now: C − ⌈(next − now)/T⌉,
// clamped to [0, capacity].
func (l *leakyBucket) Available(now int64) int64 {
	queued := l.queued(now)
	if !queued.less(from64(uint64(l.capacity))) {
		return 0
	}
	return l.capacity - int64(queued.lo)
}

// Debt returns the units queued beyond the capacity at now,
// ⌈(next − now)/T⌉ − C when positive: overage still to drain. The queue
// counts at most MaxDebt units, so the debt stops at MaxDebt − C.
func (l *leakyBucket) Debt(now int64) int64 {
	queued := l.queued(now)
	if !queued.less(from64(uint64(MaxDebt))) {
		return MaxDebt - l.capacity
	}
	return max(int64(queued.lo)-l.capacity, 0)
}

// Lower grows the queue by exactly the drain time of k = Available(now) −
// Debt(now) − remaining units, when k is positive: next becomes max(next,
// now) + k·T, so that the room left is exactly remaining, or −remaining
// units are queued beyond capacity (debt, at most MaxDebt). Unlike
// [leakyBucket.Take] it does not round next up to a whole nanosecond first:
// no request departs.
func (l *leakyBucket) Lower(now, remaining int64) {
	k := l.Available(now) - l.Debt(now) - max(remaining, -MaxDebt)
	if k <= 0 {
		return
	}
	t := max(now, l.last)
	l.last = t
	if l.next < t {
		l.next, l.rem = t, 0 // drained: the queue restarts at t
	}
	q, r := mul64(uint64(k), uint64(l.window)).add(from64(l.rem)).divmod(uint64(l.capacity))
	l.next, l.rem = addSat(l.next, q), r
	if l.next == math.MaxInt64 {
		l.rem = 0
	}
}

// Clone returns a copy of the state.
func (b *leakyBucket) Clone() State {
	c := *b
	return &c
}

// Last returns the latest instant an update was made at.
func (l *leakyBucket) Last() int64 { return l.last }
