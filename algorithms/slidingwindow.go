package algorithms

import "math"

// minShrink is the capacity below which the sliding window's entry buffer is
// never reallocated smaller.
const minShrink = 64

// entry is the amount taken at one instant of a sliding window.
type entry struct {
	at     int64 // the instant of the take
	amount int64 // units taken at that instant, capped at MaxDebt
}

// slidingWindow is the [SlidingWindow] state: the takes of the last window,
// one entry per distinct instant in increasing order, in entries[head:].
// An entry taken at s counts while t < s+W.
//
// An entry's amount is capped at MaxDebt ≥ C: a request of n ≥ 1 units never
// fits beside an entry of C or more, so the cap changes no decision, and
// overage up to it stays counted, as debt. sum is the total of
// entries[head:] in 128 bits. Take prunes expired entries; Ready, Available
// and Debt only skip them, so none of them changes the state.
type slidingWindow struct {
	window   int64   // W in nanoseconds, > 0
	capacity int64   // C, > 0
	entries  []entry // entries[head:] are live or not yet pruned
	head     int     // index of the oldest unpruned entry
	sum      u128    // total amount of entries[head:]
	last     int64   // the latest instant an update was made at
}

// newSlidingWindow returns a state with nothing taken.
func newSlidingWindow(window, capacity int64) State {
	return &slidingWindow{window: window, capacity: capacity, last: math.MinInt64}
}

// expired reports whether e no longer counts at t (e.at ≤ t always holds).
func (s *slidingWindow) expired(e entry, t int64) bool {
	return span(e.at, t) >= uint64(s.window)
}

// live returns the index of the first entry that counts at t and the sum of
// the entries from there on.
func (s *slidingWindow) live(t int64) (int, u128) {
	i, sum := s.head, s.sum
	for ; i < len(s.entries) && s.expired(s.entries[i], t); i++ {
		sum = sum.sub(from64(uint64(s.entries[i].amount)))
	}
	return i, sum
}

// Ready returns now when the sum in (now−W, now] plus n is within C,
// otherwise the instant s+W at which enough of the oldest entries have
// expired. It returns Never when n exceeds the capacity or s+W overflows.
func (s *slidingWindow) Ready(now, n int64) int64 {
	if n > s.capacity {
		return Never
	}
	if n <= 0 {
		return now
	}
	i, sum := s.live(max(now, s.last))
	limit := from64(uint64(s.capacity - n))
	if !limit.less(sum) {
		return now
	}
	for ; i < len(s.entries); i++ {
		e := s.entries[i]
		sum = sum.sub(from64(uint64(e.amount)))
		if !limit.less(sum) {
			return addSat64(e.at, s.window)
		}
	}
	return Never // unreachable: an empty window always fits n ≤ C
}

// Take records n units at now, merging them into the entry of the same
// instant if there is one.
func (s *slidingWindow) Take(now, n int64) {
	if n <= 0 {
		return
	}
	t := max(now, s.last)
	s.last = t
	s.prune(t)
	n = min(n, MaxDebt)
	if k := len(s.entries) - 1; k >= s.head && s.entries[k].at == t {
		old := s.entries[k].amount
		s.entries[k].amount = old + min(n, MaxDebt-old)
		s.sum = s.sum.add(from64(uint64(s.entries[k].amount - old)))
		return
	}
	s.entries = append(s.entries, entry{at: t, amount: n})
	s.sum = s.sum.add(from64(uint64(n)))
}

// prune drops the entries expired at t and compacts the buffer: live entries
// move to the front once at least half of it is dead, and the buffer shrinks
// when it is mostly empty. Both are amortised O(1) per entry.
func (s *slidingWindow) prune(t int64) {
	i, sum := s.live(t)
	s.head, s.sum = i, sum
	n := len(s.entries) - s.head
	switch {
	case cap(s.entries) > minShrink && 4*n < cap(s.entries):
		s.entries, s.head = append(make([]entry, 0, max(2*n, minShrink)), s.entries[s.head:]...), 0
	case n == 0:
		s.entries, s.head = s.entries[:0], 0
	case s.head >= n:
		s.entries, s.head = append(s.entries[:0], s.entries[s.head:]...), 0
	}
}

// Refund does nothing: sliding windows do not refund. It returns 0.
func (s *slidingWindow) Refund(int64, int64) int64 { return 0 }

// Available returns C minus the sum in (now−W, now], at least 0.
func (s *slidingWindow) Available(now int64) int64 {
	_, sum := s.live(max(now, s.last))
	c := from64(uint64(s.capacity))
	if !sum.less(c) {
		return 0
	}
	return s.capacity - int64(sum.lo)
}

// Debt returns the units counted beyond the capacity in (now−W, now], the
// sum there minus C when positive: overage that expires as its takes leave
// the window. It counts at most MaxDebt units in the window, so the debt
// stops at MaxDebt − C.
func (s *slidingWindow) Debt(now int64) int64 {
	_, sum := s.live(max(now, s.last))
	if !sum.less(from64(uint64(MaxDebt))) {
		return MaxDebt - s.capacity
	}
	return max(int64(sum.lo)-s.capacity, 0)
}

// Lower takes Available(now) − Debt(now) − remaining units at now when
// that is positive, counting them in its window, so that exactly remaining
// are available, or −remaining are debt (at most MaxDebt).
func (s *slidingWindow) Lower(now, remaining int64) {
	if k := s.Available(now) - s.Debt(now) - max(remaining, -MaxDebt); k > 0 {
		s.Take(now, k)
	}
}

// Clone returns a copy of the state with its own live entries.
func (s *slidingWindow) Clone() State {
	c := *s
	c.entries = append([]entry(nil), s.entries[s.head:]...)
	c.head = 0
	return &c
}

// Last returns the latest instant an update was made at.
func (s *slidingWindow) Last() int64 { return s.last }
