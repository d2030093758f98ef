package backendtest

// Helpers for edge tests that drive a LimitSet at exact instants of a clock
// they control: a testing/synctest bubble (package concurry's tests) or a
// backend's test clock (backend/redis). Unlike Env's, they take the test
// and the set as arguments, so they need no backend factory.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// Try returns the error of ls.TryAcquire(req), releasing what it granted
// with usage equal to the grant.
func Try(ls *concurry.LimitSet, req concurry.Amounts) error {
	a, err := ls.TryAcquire(context.Background(), req)
	if err == nil {
		a.Update(req)
		a.Release()
	}
	return err
}

// Take grants req at once and releases it having used usage, failing t
// otherwise.
func Take(t testing.TB, ls *concurry.LimitSet, req, usage concurry.Amounts) {
	t.Helper()
	a, err := ls.TryAcquire(context.Background(), req)
	if err != nil {
		t.Fatalf("TryAcquire(%v): %v", req, err)
	}
	if err := a.Update(usage); err != nil {
		t.Fatalf("Update(%v): %v", usage, err)
	}
	if err := a.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

// Refused fails t unless err is a *RefusalError matching ErrWouldBlock with
// the given key and RetryAfter exactly, and returns it.
func Refused(t testing.TB, err error, key string, retryAfter time.Duration) *concurry.RefusalError {
	t.Helper()
	var r *concurry.RefusalError
	if !errors.As(err, &r) {
		t.Fatalf("error %v, want a *RefusalError", err)
	}
	if !errors.Is(err, concurry.ErrWouldBlock) {
		t.Fatalf("refusal %v does not match ErrWouldBlock", err)
	}
	if r.Key != key || r.RetryAfter != retryAfter {
		t.Fatalf("refusal %+v, want key %q, RetryAfter %v", *r, key, retryAfter)
	}
	return r
}

// LimitStat returns the stats of key's (shortest-window) limit.
func LimitStat(t testing.TB, ls *concurry.LimitSet, key string) concurry.LimitStats {
	t.Helper()
	st, err := ls.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l, ok := st.Limit(key)
	if !ok {
		t.Fatalf("no stats for %q", key)
	}
	return l
}

// Clock is a clock a test moves by hand: Advance moves it on by d, and Q is
// the smallest step the backend resolves (1ns in a testing/synctest bubble,
// 1µs on Redis's test clock).
type Clock struct {
	Advance func(d time.Duration)
	Q       time.Duration
}

// FitsIn checks that one unit of key is refused one step before d from now
// with RetryAfter one step, then advances to d exactly and takes req there.
func (c Clock) FitsIn(t testing.TB, ls *concurry.LimitSet, d time.Duration, key string, req concurry.Amounts) {
	t.Helper()
	c.Advance(d - c.Q)
	Refused(t, Try(ls, concurry.Amounts{key: 1}), key, c.Q)
	c.Advance(c.Q)
	Take(t, ls, req, req)
}

// Saturate charges 5·2^50 of overage on key "u" of ls (capacity 1), far past
// any debt bound, then checks that nothing wrapped: nothing available, a
// debt within [0, 2^52], a refusal with a RetryAfter of at least atLeast,
// and an Acquire with a deadline after timeout that fails within a while
// with a deadline refusal carrying such a RetryAfter.
func Saturate(t testing.TB, ls *concurry.LimitSet, atLeast, timeout, within time.Duration) {
	t.Helper()
	for range 5 {
		a, err := ls.TryAcquire(context.Background(), concurry.Amounts{"u": 1})
		if err != nil {
			if errors.Is(err, concurry.ErrWouldBlock) {
				break
			}
			t.Fatal(err)
		}
		a.Update(concurry.Amounts{"u": concurry.MaxCapacity})
		if err := a.Release(); err != nil {
			t.Fatal(err)
		}
	}
	st := LimitStat(t, ls, "u")
	if st.Available != 0 || st.Debt < 0 || st.Debt > 1<<52 {
		t.Fatalf("after 5·2^50 of overage: %+v", st)
	}
	var r *concurry.RefusalError
	err := Try(ls, concurry.Amounts{"u": 1})
	if !errors.As(err, &r) || r.RetryAfter < atLeast {
		t.Fatalf("refusal %v (%+v), want a RetryAfter of at least %v", err, r, atLeast)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	_, err = ls.Acquire(ctx, concurry.Amounts{"u": 1})
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &r) || r.RetryAfter < atLeast || took > within {
		t.Fatalf("Acquire with a deadline in %v: %v (%+v) after %v, want a deadline refusal within %v", timeout, err, r, took, within)
	}
}

// DebtOf puts key "u" of ls (capacity c, full) into a debt of c: two grants
// of one unit, each reporting c used (Update accepts at most MaxCapacity).
// It takes hold more grants of one unit before reporting, and returns them
// held.
func DebtOf(t testing.TB, ls *concurry.LimitSet, c int64, hold int) []*concurry.Acquisition {
	t.Helper()
	var as []*concurry.Acquisition
	for range 2 + hold {
		a, err := ls.TryAcquire(context.Background(), concurry.Amounts{"u": 1})
		if err != nil {
			t.Fatal(err)
		}
		as = append(as, a)
	}
	for _, a := range as[:2] {
		if err := a.Update(concurry.Amounts{"u": c}); err != nil {
			t.Fatal(err)
		}
		if err := a.Release(); err != nil {
			t.Fatal(err)
		}
	}
	return as[2:]
}
