package backendtest

import (
	"context"
	"errors"
	"testing"

	"github.com/concurry/concurry"
)

func acquireCases() []Case {
	return []Case{
		{"AllOrNothing", testAllOrNothing},
		{"AutoUnits", testAutoUnits},
		{"EmptyRequest", testEmptyRequest},
		{"InvalidRequests", testInvalidRequests},
		{"UpdateErrors", testUpdateErrors},
		{"ReleaseUnreported", testReleaseUnreported},
		{"NestedAcquisitions", testNested},
		{"Stats", testStats},
		{"NamesAreIndependent", testNamesIndependent},
		{"Do", testDo},
	}
}

func callTokensConn(e *Env, conns int64) *concurry.LimitSet {
	return e.Set(
		concurry.CallLimit{Window: Long, Capacity: 10},
		concurry.RateLimit{Key: "tokens", Window: Long, Capacity: 100},
		concurry.ResourceLimit{Key: "conn", Capacity: conns},
	)
}

func testAllOrNothing(t *testing.T, e *Env) {
	ls := callTokensConn(e, 1)
	held := e.MustAcquire(ls, concurry.Amounts{"tokens": 1})
	e.Blocked(ls, concurry.Amounts{"tokens": 5}) // tokens and a call are free; the connection is not
	e.WantAvailable(ls, "tokens", 99)
	e.WantAvailable(ls, concurry.CallKey, 9)
	e.WantInUse(ls, "conn", 1)
	e.Done(held, concurry.Amounts{"tokens": 1})
	e.Done(e.MustTry(ls, concurry.Amounts{"tokens": 5}), concurry.Amounts{"tokens": 5})
	e.WantAvailable(ls, "tokens", 94)
}

func testAutoUnits(t *testing.T, e *Env) {
	ls := e.Set(
		concurry.CallLimit{Window: Long, Capacity: 10},
		concurry.RateLimit{Key: "tokens", Window: Long, Capacity: 100},
		concurry.RateLimit{Key: "images", Window: Long, Capacity: 100},
		concurry.ResourceLimit{Key: "conn", Capacity: 3},
	)
	a := e.MustAcquire(ls, concurry.Amounts{"tokens": 7})
	e.WantAvailable(ls, concurry.CallKey, 9)
	e.WantAvailable(ls, "tokens", 93)
	e.WantAvailable(ls, "images", 100) // a rate limit is taken only when named
	e.WantInUse(ls, "conn", 1)
	b := e.MustAcquire(ls, concurry.Amounts{"images": 5, "conn": 2})
	if b.Granted("conn") != 2 || b.Granted(concurry.CallKey) != 1 || b.Granted("tokens") != 0 {
		t.Fatalf("granted conn %d, call %d, tokens %d; want 2, 1, 0",
			b.Granted("conn"), b.Granted(concurry.CallKey), b.Granted("tokens"))
	}
	e.WantAvailable(ls, concurry.CallKey, 8)
	e.WantInUse(ls, "conn", 3)
	e.Done(a, concurry.Amounts{"tokens": 7})
	e.Done(b, concurry.Amounts{"images": 5})
	e.WantInUse(ls, "conn", 0)
}

func testEmptyRequest(t *testing.T, e *Env) {
	plain := e.Set(concurry.CallLimit{Window: Long, Capacity: 10}, concurry.ResourceLimit{Key: "conn", Capacity: 2})
	a := e.MustTry(plain, nil)
	e.WantAvailable(plain, concurry.CallKey, 9)
	e.WantInUse(plain, "conn", 1)
	e.Done(a, nil)
	rated := callTokensConn(e, 2)
	_, err := rated.TryAcquire(context.Background(), nil)
	e.WantErr(err, concurry.ErrInvalidRequest, "empty request on a set with a rate limit")
	_, err = rated.Acquire(e.Ctx(), concurry.Amounts{})
	e.WantErr(err, concurry.ErrInvalidRequest, "empty request on a set with a rate limit")
}

func testInvalidRequests(t *testing.T, e *Env) {
	ls := callTokensConn(e, 2)
	cases := []struct {
		req  concurry.Amounts
		want error
	}{
		{concurry.Amounts{"nope": 1}, concurry.ErrUnknownKey},
		{concurry.Amounts{"tokens": 0}, concurry.ErrInvalidRequest},
		{concurry.Amounts{"tokens": -3}, concurry.ErrInvalidRequest},
		{concurry.Amounts{"tokens": 101}, concurry.ErrExceedsCapacity},
		{concurry.Amounts{"tokens": 1, "conn": 3}, concurry.ErrExceedsCapacity},
	}
	for _, c := range cases {
		_, err := ls.Acquire(e.Ctx(), c.req)
		e.WantErr(err, c.want, "Acquire")
		_, err = ls.TryAcquire(context.Background(), c.req)
		e.WantErr(err, c.want, "TryAcquire")
	}
	e.WantAvailable(ls, "tokens", 100)
	e.WantAvailable(ls, concurry.CallKey, 10)
	e.WantInUse(ls, "conn", 0)
}

func testUpdateErrors(t *testing.T, e *Env) {
	ls := callTokensConn(e, 2)
	a := e.MustAcquire(ls, concurry.Amounts{"tokens": 10})
	e.WantErr(a.Update(concurry.Amounts{"nope": 1}), concurry.ErrUnknownKey, "Update of an unknown key")
	e.WantErr(a.Update(concurry.Amounts{"tokens": -1}), concurry.ErrInvalidRequest, "negative usage")
	e.WantAvailable(ls, "tokens", 90) // failed updates change nothing
	e.Done(a, concurry.Amounts{"tokens": 10})
	e.WantErr(a.Update(concurry.Amounts{"tokens": 1}), concurry.ErrReleased, "Update after Release")
	if err := a.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
}

func testReleaseUnreported(t *testing.T, e *Env) {
	ls := callTokensConn(e, 2)
	a := e.MustAcquire(ls, concurry.Amounts{"tokens": 5})
	e.WantErr(a.Release(), concurry.ErrUsageNotReported, "Release without Update")
	e.WantInUse(ls, "conn", 0) // resources are returned all the same
	e.WantAvailable(ls, "tokens", 95)
	if err := a.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
}

func testNested(t *testing.T, e *Env) {
	ls := e.Set(concurry.CallLimit{Window: Long, Capacity: 10}, concurry.ResourceLimit{Key: "conn", Capacity: 5})
	outer := e.MustAcquire(ls, nil)
	inner := e.MustAcquire(ls, nil)
	e.WantAvailable(ls, concurry.CallKey, 8)
	e.WantInUse(ls, "conn", 2)
	e.Done(inner, nil)
	e.Done(outer, nil)
	e.WantInUse(ls, "conn", 0)
}

func testStats(t *testing.T, e *Env) {
	ls := callTokensConn(e, 4)
	a := e.MustAcquire(ls, concurry.Amounts{"tokens": 30, "conn": 3})
	conn := e.Stat(ls, "conn")
	if conn.Available != 1 || conn.InUse != 3 || conn.Capacity != 4 || conn.Kind != concurry.KindResource {
		t.Fatalf("conn stats %+v", conn)
	}
	tok := e.Stat(ls, "tokens")
	if tok.Available != 70 || tok.InUse != 0 || tok.Utilization < 0.29 || tok.Utilization > 0.31 || tok.Granted != 30 {
		t.Fatalf("tokens stats %+v", tok)
	}
	e.Done(a, concurry.Amounts{"tokens": 30})
	if conn := e.Stat(ls, "conn"); conn.Available != 4 || conn.InUse != 0 {
		t.Fatalf("conn stats after release %+v", conn)
	}
}

func testNamesIndependent(t *testing.T, e *Env) {
	a := e.Set(concurry.ResourceLimit{Key: "conn", Capacity: 1})
	b := e.Set(concurry.ResourceLimit{Key: "conn", Capacity: 1})
	held := e.MustAcquire(a, nil)
	e.Blocked(a, nil)
	e.Done(e.MustTry(b, nil), nil)
	e.Done(held, nil)
}

func testDo(t *testing.T, e *Env) {
	ls := callTokensConn(e, 1)
	boom := errors.New("boom")
	err := ls.Do(e.Ctx(), concurry.Amounts{"tokens": 5}, func(context.Context, *concurry.Acquisition) error { return boom })
	if !errors.Is(err, boom) || errors.Is(err, concurry.ErrUsageNotReported) {
		t.Fatalf("Do with a failing fn: %v", err)
	}
	err = ls.Do(e.Ctx(), concurry.Amounts{"tokens": 5}, func(context.Context, *concurry.Acquisition) error { return nil })
	e.WantErr(err, concurry.ErrUsageNotReported, "Do without Update")
	err = ls.Do(e.Ctx(), concurry.Amounts{"tokens": 5}, func(_ context.Context, a *concurry.Acquisition) error {
		return a.Update(concurry.Amounts{"tokens": 2})
	})
	if err != nil {
		t.Fatal(err)
	}
	e.WantInUse(ls, "conn", 0)
	e.WantAvailable(ls, "tokens", 88)
}
