package backendtest

// Edge scenarios of the algorithms at exact instants, written once for every
// clock a test controls (see Clock): package concurry runs them in a
// testing/synctest bubble to the ns, backend/redis on its test clock to the
// µs. Each takes a set holding one limit on key "u" as its doc says.

import (
	"context"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// Up returns d/n rounded up to a whole step of c.
func (c Clock) Up(d time.Duration, n int64) time.Duration {
	per := time.Duration(n) * c.Q
	return (d + per - 1) / per * c.Q
}

// FractionalRefill: "TokenBucket: starts full; refills continuously at
// Capacity/Window" and RetryAfter "how long until the whole request would
// fit". ls holds 3 per second (TokenBucket or GCRA): with T = 1s/3 the first
// unit is back at the first whole step at or after T, not a step before,
// and the fraction left over is kept.
func FractionalRefill(t testing.TB, c Clock, ls *concurry.LimitSet) {
	t.Helper()
	Take(t, ls, concurry.Amounts{"u": 3}, concurry.Amounts{"u": 3})
	first := c.Up(time.Second, 3)
	Refused(t, Try(ls, concurry.Amounts{"u": 1}), "u", first)
	Refused(t, Try(ls, concurry.Amounts{"u": 2}), "u", c.Up(2*time.Second, 3))
	Refused(t, Try(ls, concurry.Amounts{"u": 3}), "u", time.Second)
	c.FitsIn(t, ls, first, "u", concurry.Amounts{"u": 1})
	// Level after the take: 3·first/1s − 1 units; the next unit needs
	// (2s − 3·first)/3 more, rounded up.
	Refused(t, Try(ls, concurry.Amounts{"u": 1}), "u", c.Up(2*time.Second-3*first, 3))
}

// RefundNeverBeforeNow: "Refunds move TAT back, never before now" (GCRA),
// TokenBucket's refund capped at a full bucket, and "Less than requested:
// the difference is refunded". ls holds 10 per second (TokenBucket or GCRA):
// a refund larger than what was spent since gives back only what fills the
// bucket, and Refunded says so; a partial refund is exact.
func RefundNeverBeforeNow(t testing.TB, c Clock, ls *concurry.LimitSet) {
	t.Helper()
	a := mustHold(t, ls, concurry.Amounts{"u": 5}) // TAT = 500ms
	c.Advance(400 * time.Millisecond)              // level 9: room for 1
	mustFinish(t, a, concurry.Amounts{"u": 0})
	if st := LimitStat(t, ls, "u"); st.Available != 10 || st.Refunded != 1 {
		t.Errorf("after refunding 5 with 1 missing: Available %d, Refunded %d; want 10 and 1", st.Available, st.Refunded)
	}
	// Full at 400ms, not more: a burst of exactly 10, then the 11th at +100ms.
	Take(t, ls, concurry.Amounts{"u": 10}, concurry.Amounts{"u": 10})
	Refused(t, Try(ls, concurry.Amounts{"u": 1}), "u", 100*time.Millisecond)

	// A partial refund: 10 taken, 7 used, settled 500ms later.
	c.Advance(time.Second)
	a = mustHold(t, ls, concurry.Amounts{"u": 10})
	c.Advance(500 * time.Millisecond) // level 5
	mustFinish(t, a, concurry.Amounts{"u": 7})
	if got := LimitStat(t, ls, "u").Available; got != 8 {
		t.Fatalf("Available %d after refunding 3 at level 5, want 8", got)
	}
	Refused(t, Try(ls, concurry.Amounts{"u": 9}), "u", 100*time.Millisecond)
}

// DebtPaidOff: "Debt is visible: stats show a negative balance (or a debt
// field) after overage" and RetryAfter "how long until the whole request
// would fit". ls holds 10 per 10 s (TokenBucket or GCRA): 15 units of
// overage at 1 unit/s are paid off at 15 s, and one unit fits at exactly 16 s.
func DebtPaidOff(t testing.TB, c Clock, ls *concurry.LimitSet) {
	t.Helper()
	Take(t, ls, concurry.Amounts{"u": 10}, concurry.Amounts{"u": 25})
	if st := LimitStat(t, ls, "u"); st.Available != 0 || st.Debt != 15 || st.Overage != 15 {
		t.Fatalf("after 15 of overage: %+v; want Available 0, Debt 15, Overage 15", st)
	}
	Refused(t, Try(ls, concurry.Amounts{"u": 1}), "u", 16*time.Second)
	Refused(t, Try(ls, concurry.Amounts{"u": 10}), "u", 25*time.Second)
	c.Advance(1500 * time.Millisecond)
	if st := LimitStat(t, ls, "u"); st.Debt != 14 { // level −13.5: 14 rounded up
		t.Fatalf("Debt %d at level −13.5, want 14", st.Debt)
	}
	c.Advance(13500 * time.Millisecond)
	if st := LimitStat(t, ls, "u"); st.Debt != 0 || st.Available != 0 {
		t.Fatalf("at level 0: %+v, want Debt 0, Available 0", st)
	}
	c.FitsIn(t, ls, time.Second, "u", concurry.Amounts{"u": 1})
}

// SlidingWindowEdges: "SlidingWindow: exact rolling window: the sum of
// amounts admitted in (now−Window, now] never exceeds Capacity", RetryAfter
// the instant enough of the oldest admissions leave. ls holds 10 per second
// (SlidingWindow): units taken at s leave at exactly s+W.
func SlidingWindowEdges(t testing.TB, c Clock, ls *concurry.LimitSet) {
	t.Helper()
	Take(t, ls, concurry.Amounts{"u": 4}, concurry.Amounts{"u": 4})
	c.Advance(300 * time.Millisecond)
	Take(t, ls, concurry.Amounts{"u": 6}, concurry.Amounts{"u": 6})
	Refused(t, Try(ls, concurry.Amounts{"u": 4}), "u", 700*time.Millisecond)
	Refused(t, Try(ls, concurry.Amounts{"u": 5}), "u", time.Second)
	c.Advance(700*time.Millisecond - c.Q) // the 4 taken at 0 are in (now−W, now] until now = W
	if got := LimitStat(t, ls, "u").Available; got != 0 {
		t.Fatalf("Available %d one step before the first admissions leave, want 0", got)
	}
	c.FitsIn(t, ls, c.Q, "u", concurry.Amounts{"u": 4})
	Refused(t, Try(ls, concurry.Amounts{"u": 1}), "u", 300*time.Millisecond)
	// Overage counts in the window of the settle: nothing fits until it leaves.
	c.Advance(300 * time.Millisecond)
	Take(t, ls, concurry.Amounts{"u": 1}, concurry.Amounts{"u": 30})
	if st := LimitStat(t, ls, "u"); st.Available != 0 {
		t.Fatalf("Available %d after overage, want 0", st.Available)
	}
	Refused(t, Try(ls, concurry.Amounts{"u": 1}), "u", time.Second)
}

// FixedWindowEpoch: "FixedWindow: a counter per window aligned to multiples
// of Window since the Unix epoch ...; up to 2× Capacity across a boundary".
// The clock must stand 2 s before a multiple of 7 s; open opens a limit set.
func FixedWindowEpoch(t testing.TB, c Clock, open func(...concurry.Limit) *concurry.LimitSet) {
	t.Helper()
	const w = 7 * time.Second
	ls := open(concurry.RateLimit{Key: "u", Window: w, Capacity: 10, Algorithm: concurry.FixedWindow})
	Take(t, ls, concurry.Amounts{"u": 10}, concurry.Amounts{"u": 10})
	Refused(t, Try(ls, concurry.Amounts{"u": 1}), "u", 2*time.Second)
	c.FitsIn(t, ls, 2*time.Second, "u", concurry.Amounts{"u": 10})
	Refused(t, Try(ls, concurry.Amounts{"u": 1}), "u", w)

	// 2× across a boundary: 10 one step before it, 10 at it.
	ls2 := open(concurry.RateLimit{Key: "v", Window: w, Capacity: 10, Algorithm: concurry.FixedWindow})
	c.Advance(w - c.Q)
	Take(t, ls2, concurry.Amounts{"v": 10}, concurry.Amounts{"v": 10})
	c.Advance(c.Q)
	Take(t, ls2, concurry.Amounts{"v": 10}, concurry.Amounts{"v": 10})
}

// SlowLimitLargeOverage: "the excess is charged too ... Debt is visible" on
// a slow limit. ls holds 10 per MaxWindow (T = 36.6 days) of alg: on
// TokenBucket and GCRA 1000 units of overage with 2 taken are a debt of 992,
// a refund of 1 leaves 991, and one unit fits after 992·T; a LeakyBucket
// with 1000 units of overage drains after 1001·T. retryAfter maps the exact
// RetryAfter to the one the backend reports (where it saturates).
func SlowLimitLargeOverage(t testing.TB, ls *concurry.LimitSet, alg concurry.Algorithm, retryAfter func(time.Duration) time.Duration) {
	t.Helper()
	const tee = concurry.MaxWindow / 10
	if alg == concurry.LeakyBucket {
		Take(t, ls, concurry.Amounts{"u": 1}, concurry.Amounts{"u": 1001})
		Refused(t, Try(ls, concurry.Amounts{"u": 1}), "u", retryAfter(1001*tee))
		return
	}
	as := []*concurry.Acquisition{mustHold(t, ls, concurry.Amounts{"u": 1}), mustHold(t, ls, concurry.Amounts{"u": 1})}
	mustFinish(t, as[0], concurry.Amounts{"u": 1001})
	if st := LimitStat(t, ls, "u"); st.Debt != 992 {
		t.Fatalf("Debt %d after 1000 of overage on 10 with 2 taken, want 992", st.Debt)
	}
	mustFinish(t, as[1], concurry.Amounts{"u": 0})
	if st := LimitStat(t, ls, "u"); st.Debt != 991 {
		t.Fatalf("Debt %d after refunding 1 of a debt of 992, want 991", st.Debt)
	}
	Refused(t, Try(ls, concurry.Amounts{"u": 1}), "u", retryAfter(992*tee))
}

// mustHold is TryAcquire that fails t unless it grants.
func mustHold(t testing.TB, ls *concurry.LimitSet, req concurry.Amounts) *concurry.Acquisition {
	t.Helper()
	a, err := ls.TryAcquire(context.Background(), req)
	if err != nil {
		t.Fatalf("TryAcquire(%v): %v", req, err)
	}
	return a
}

// mustFinish reports usage on a and releases it, failing t on an error.
func mustFinish(t testing.TB, a *concurry.Acquisition, usage concurry.Amounts) {
	t.Helper()
	if err := a.Update(usage); err != nil {
		t.Fatalf("Update(%v): %v", usage, err)
	}
	if err := a.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
}
