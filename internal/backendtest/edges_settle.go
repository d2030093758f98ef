package backendtest

import (
	"context"
	"errors"
	"testing"

	"github.com/concurry/concurry"
)

// settleCases returns the cases of a release that settles reported usage,
// one per algorithm. They read Debt, so they need Capabilities.Facts.
func settleCases() []Case {
	var cs []Case
	for _, alg := range allAlgorithms {
		cs = append(cs, Case{"Settle/" + alg.String(), func(t *testing.T, e *Env) { testSettle(e, alg) }})
	}
	return append(cs, Case{"Settle/AfterClose", testSettleAfterClose})
}

// testSettle checks DESIGN: "Less than requested: the difference is
// refunded where the algorithm refunds (TokenBucket, GCRA). More than
// requested: the excess is charged too (the budget may go into debt) ...;
// stats count such overage." — exactly, on a window of MaxWindow (no refill
// worth a unit during the test).
func testSettle(e *Env, alg concurry.Algorithm) {
	e.Need(e.Caps.Facts, "refusal facts")
	ls := e.Set(concurry.RateLimit{Key: "tokens", Window: concurry.MaxWindow, Capacity: 100, Algorithm: alg})
	e.Done(e.MustTry(ls, concurry.Amounts{"tokens": 40}), concurry.Amounts{"tokens": 10})
	tok := e.Stat(ls, "tokens")
	wantRefund := int64(0)
	if alg.Refunds() {
		wantRefund = 30
	}
	if tok.Refunded != wantRefund || tok.Available != 60+wantRefund {
		e.T.Errorf("after 10 used of 40: %+v, want %d refunded and %d available", tok, wantRefund, 60+wantRefund)
	}
	if alg == concurry.LeakyBucket {
		return // a queue: a second request must wait for the first's departure gap
	}
	avail := tok.Available
	e.Done(e.MustTry(ls, concurry.Amounts{"tokens": 10}), concurry.Amounts{"tokens": avail + 5})
	tok = e.Stat(ls, "tokens")
	wantDebt := int64(5) // every algorithm shows its overage as debt
	if tok.Overage != avail+5-10 || tok.Available != 0 || tok.Debt != wantDebt {
		e.T.Errorf("after %d used of 10 with %d available: %+v, want overage %d, 0 available, debt %d", avail+5, avail, tok, avail+5-10, wantDebt)
	}
	if _, err := ls.TryAcquire(context.Background(), concurry.Amounts{"tokens": 1}); !errors.Is(err, concurry.ErrWouldBlock) {
		e.T.Errorf("a set in debt granted: %v", err)
	}
}

// testSettleAfterClose checks DESIGN: "Close() ... acquisitions already
// granted can still be updated and released." — the release after Close
// settles exactly: the overage is charged and the resource comes back, as
// another set of the same name sees.
func testSettleAfterClose(t *testing.T, e *Env) {
	name := e.Name()
	limits := []concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: Long, Capacity: 1000},
		concurry.ResourceLimit{Key: "slot", Capacity: 1},
	}
	ls, other := e.Named(name, limits...), e.Named(name, limits...)
	a := e.MustAcquire(ls, concurry.Amounts{"tokens": 100})
	if err := ls.Close(); err != nil {
		t.Fatal(err)
	}
	e.Done(a, concurry.Amounts{"tokens": 130}) // updated and released after Close
	e.WantAvailable(other, "tokens", 870)
	e.WantInUse(other, "slot", 0)
}

// Held acquires req of ls for a test that then settles the holding by
// hand, failing t on an error.
func Held(t testing.TB, ls *concurry.LimitSet, req concurry.Amounts) *concurry.Acquisition {
	t.Helper()
	a, err := ls.Acquire(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ReleaseLost releases a, a holding that ended early (how it ends is the
// backend's: a lease that expired, a connection that dropped) and whose
// usage was never reported, and checks DESIGN: "Release() always releases
// everything it holds ... If a RateLimit was never updated, its usage
// counts as the full request and Release returns ErrUsageNotReported. Later
// calls of Release return nil." and "After release: ErrReleased.": Release
// says both that the holding was lost and that usage was not reported, the
// next Release is nil and Update returns ErrReleased.
func ReleaseLost(t testing.TB, a *concurry.Acquisition) {
	t.Helper()
	err := a.Release()
	if !errors.Is(err, concurry.ErrLeaseLost) || !errors.Is(err, concurry.ErrUsageNotReported) {
		t.Fatalf("Release of a lost, unreported holding: %v; want ErrLeaseLost and ErrUsageNotReported", err)
	}
	if err := a.Release(); err != nil {
		t.Errorf("second Release: %v, want nil", err)
	}
	if err := a.Update(concurry.Amounts{"tokens": 1}); !errors.Is(err, concurry.ErrReleased) {
		t.Errorf("Update after Release of a lost holding: %v, want ErrReleased", err)
	}
}
