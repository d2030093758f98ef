package algorithms

import (
	"fmt"
	"math"
	"time"
)

// Kind names an algorithm. The zero value is TokenBucket. The numbering is part
// of the wire format of the shared backends: never reorder it.
type Kind uint8

const (
	// TokenBucket starts full, refills continuously at Capacity/Window and
	// bursts up to Capacity. It refunds.
	TokenBucket Kind = iota
	// LeakyBucket paces departures at T = Window/Capacity per unit: a request
	// of n units departs at max(now, next) and moves next to its departure
	// plus n·T. It never bursts and does not refund.
	LeakyBucket
	// SlidingWindow admits while the sum of amounts admitted in
	// (now−Window, now] stays within Capacity. It does not refund.
	SlidingWindow
	// FixedWindow counts per window aligned to multiples of Window since the
	// Unix epoch; up to 2×Capacity may pass across a boundary. It does not refund.
	FixedWindow
	// GCRA tracks a theoretical arrival time TAT with emission interval
	// T = Window/Capacity and tolerance Capacity·T. It admits exactly what
	// TokenBucket admits and refunds by moving TAT back, never before now.
	GCRA
)

// MaxDebt is the most debt, in units, a [TokenBucket] or [GCRA] keeps:
// overage (a [State.Take] beyond what is available) is charged until the
// level reaches −MaxDebt, and stops there. A [LeakyBucket] queue, a
// [SlidingWindow] or a [FixedWindow] counts at most MaxDebt units, so its
// debt stops at MaxDebt − capacity. It is 2^52, where the Redis backend's
// exact arithmetic ends, so that every backend agrees; with capacities up
// to 2^50 it is at least three full windows of debt.
const MaxDebt int64 = 1 << 52

// Never is the instant returned by [State.Ready] for a request that can never
// be granted (more than the capacity) or whose instant does not fit an int64.
const Never int64 = math.MaxInt64

// State is the mutable state of one rate limit. The zero instant is the Unix
// epoch; instants are nanoseconds. A State is not safe for concurrent use.
type State interface {
	// Ready returns the earliest instant t ≥ now at which n units could be
	// taken if nothing else changed: now itself when they can be taken now,
	// Never when n exceeds the capacity or the instant overflows.
	Ready(now, n int64) int64
	// Take records n units used at now, unconditionally. When Ready(now, n)
	// is later than now this puts the limit into debt: that is how usage
	// beyond a request (overage) is charged. Debt stops at MaxDebt units
	// (TokenBucket, GCRA); a FixedWindow count and a SlidingWindow's amount
	// per instant stop at MaxDebt, and a LeakyBucket queue that would pass
	// the int64 range saturates (Never).
	Take(now, n int64)
	// Refund gives back up to n units taken earlier and returns how many it
	// gave back: 0 for algorithms that do not refund; for TokenBucket and
	// GCRA no more than keeps the limit at or below a full bucket.
	Refund(now, n int64) int64
	// Available returns how many units could be taken at now, between 0 and
	// the capacity.
	Available(now int64) int64
	// Debt returns the units taken beyond the limit (overage) that still
	// count at now, so that stats show overage instead of a silent 0. For
	// TokenBucket and GCRA it is how far the level is below zero, in whole
	// units rounded up, so that Available(now) − Debt(now) is the level
	// rounded down, between 0 and MaxDebt. For the others it is what they
	// count beyond the capacity, at most MaxDebt − capacity: a LeakyBucket
	// the units queued beyond it, ⌈(next − now)/T⌉ − C, until they drain;
	// a SlidingWindow the units admitted in (now−Window, now] beyond it,
	// until they leave the window; a FixedWindow the units counted in now's
	// window beyond it, 0 once that window ends. Debt is 0 while anything
	// is available.
	Debt(now int64) int64
	// Lower takes units at now so that at most remaining are available
	// then, as after a report from upstream that only remaining are left.
	// It never gives units back: when no more than remaining are available
	// it does nothing. Every algorithm takes its level (Available less
	// Debt; TokenBucket and GCRA: ⌊level⌋) less remaining, so a negative
	// remaining leaves that much debt (remaining below −MaxDebt counts as
	// −MaxDebt): a SlidingWindow or FixedWindow counts the units as taken
	// at now, and a LeakyBucket queue grows by exactly their drain time.
	Lower(now, remaining int64)
	// Clone returns an independent copy of the state, for projecting what
	// a queue of requests would do without changing the original.
	Clone() State
	// Last returns the latest instant the state was changed at by Take,
	// Refund or Lower: math.MinInt64 for a new state. Ready at an earlier
	// instant answers as at Last, but may return the earlier instant; a
	// caller that dates a grant asks no earlier than Last, so that the grant
	// is not dated before the change that made it possible.
	Last() int64
}

// New returns the initial state of a limit of the given kind, window and
// capacity. It panics when window or capacity is not positive or the kind is
// unknown: callers validate limits first.
func New(kind Kind, window time.Duration, capacity int64) State {
	checkLimit(int64(window), capacity)
	switch kind {
	case TokenBucket:
		b := newTokenBucket(int64(window), capacity)
		return &b
	case LeakyBucket:
		q := newLeakyBucket(int64(window), capacity)
		return &q
	case SlidingWindow:
		return newSlidingWindow(int64(window), capacity)
	case FixedWindow:
		f := newFixedWindow(int64(window), capacity)
		return &f
	case GCRA:
		g := newGCRA(int64(window), capacity)
		return &g
	}
	panic(fmt.Sprintf("algorithms: unknown kind %d", kind))
}

// checkLimit panics when window or capacity is not positive.
func checkLimit(window, capacity int64) {
	if window <= 0 || capacity <= 0 {
		panic(fmt.Sprintf("algorithms: invalid limit: window %v, capacity %d", time.Duration(window), capacity))
	}
}

// Refunds reports whether the kind gives back unused units.
func (k Kind) Refunds() bool { return k == TokenBucket || k == GCRA }

// String returns the kind's name, such as "TokenBucket".
func (k Kind) String() string {
	switch k {
	case TokenBucket:
		return "TokenBucket"
	case LeakyBucket:
		return "LeakyBucket"
	case SlidingWindow:
		return "SlidingWindow"
	case FixedWindow:
		return "FixedWindow"
	case GCRA:
		return "GCRA"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}
