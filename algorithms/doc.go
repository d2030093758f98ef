// Package algorithms holds the five rate-limiting algorithms of concurry as pure
// state and arithmetic: no locks, no goroutines and no clock reads. Every method
// takes the current instant as a parameter, in nanoseconds since the Unix epoch,
// so the math can be checked at exact instants and replayed from traces.
//
// Amounts are exact integers. Rates are the rational Capacity/Window; products
// such as Capacity×Window (up to 2^50 × 366 days in nanoseconds) are computed in
// 128 bits, so no state drifts or overflows over a long run. Nothing wraps at
// the ends of the range either: debt from overage stops at [MaxDebt] units,
// and an instant past the int64 range is [Never].
//
// A [State] is one limit's state as an object. [Limit] runs the same math on
// a packed state, a few int64 words the caller keeps, so that a backend can
// hold the states of a whole set of limits in one allocation. Neither is safe
// for concurrent use; callers (the backends) guard them.
package algorithms
