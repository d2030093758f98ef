package backendtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// factsTolerance bounds how far a RetryAfter may be from the exact wait the
// test computes: time on a shared backend is real and read by another
// process (or host) than the test's.
const factsTolerance = time.Second

// factsCases returns the cases of refusals that carry their facts: the key
// that blocked and RetryAfter. They need Capabilities.Facts.
func factsCases() []Case {
	cs := []Case{
		{"Facts/Bottleneck", testFactsBottleneck},
		{"Facts/ReleaseOnly", testFactsReleaseOnly},
		{"Facts/Deadline", testFactsDeadline},
		{"Facts/Queued", testFactsQueued},
	}
	for _, alg := range allAlgorithms {
		cs = append(cs,
			Case{"Facts/RetryAfter/" + alg.String(), func(t *testing.T, e *Env) { testFactsRetryAfter(e, alg) }},
			Case{"Facts/SleepRetryAfter/" + alg.String(), func(t *testing.T, e *Env) { testFactsSleepRetryAfter(e, alg) }},
		)
	}
	for _, alg := range allAlgorithms {
		cs = append(cs, Case{"Facts/Debt/" + alg.String(), func(t *testing.T, e *Env) { testFactsDebt(e, alg) }})
	}
	return cs
}

// refusal is what a refusal should say: its key, whether it is a deadline
// refusal or queued behind earlier requests, and RetryAfter between lo and
// hi (widened by factsTolerance).
type refusal struct {
	key              string
	deadline, queued bool
	lo, hi           time.Duration
}

// wantRefusal checks that err is a refusal with the facts of want, and
// that it matches its sentinel.
func (e *Env) wantRefusal(err error, want refusal) *concurry.RefusalError {
	e.T.Helper()
	var r *concurry.RefusalError
	if !errors.As(err, &r) {
		e.T.Fatalf("error %v, want a *concurry.RefusalError", err)
	}
	sentinel := concurry.ErrWouldBlock
	if want.deadline {
		sentinel = context.DeadlineExceeded
	}
	e.WantErr(err, sentinel, "the refusal")
	lo, hi := want.lo-factsTolerance, want.hi+factsTolerance
	if want.lo == 0 && want.hi == 0 {
		lo, hi = 0, 0 // only a release can make room: exactly 0
	}
	if r.Key != want.key || r.Deadline != want.deadline || r.Queued != want.queued || r.RetryAfter < lo || r.RetryAfter > hi {
		e.T.Fatalf("refusal %+v, want key %q, deadline %v, queued %v, RetryAfter in [%v, %v]",
			*r, want.key, want.deadline, want.queued, lo, hi)
	}
	return r
}

// testFactsRetryAfter drains a limit of 10 and asks for 3 more: the refusal
// names the limit, with RetryAfter the wait its algorithm computes — less
// the time the test took since it drained it.
func testFactsRetryAfter(e *Env, alg concurry.Algorithm) {
	e.Need(e.Caps.Facts, "refusal facts")
	window := 100 * time.Second
	if alg == concurry.FixedWindow {
		window = Long // a window boundary between the drain and the refusal is then unlikely
	}
	ls := e.Set(concurry.RateLimit{Key: "r", Window: window, Capacity: 10, Algorithm: alg})
	start := time.Now()
	e.Done(e.MustTry(ls, concurry.Amounts{"r": 10}), concurry.Amounts{"r": 10})
	_, err := ls.TryAcquire(context.Background(), concurry.Amounts{"r": 3})
	elapsed := time.Since(start)
	want := map[concurry.Algorithm]time.Duration{
		concurry.TokenBucket:   30 * time.Second, // 3 units of refill at 1 per 10s
		concurry.GCRA:          30 * time.Second,
		concurry.LeakyBucket:   window, // 10 units queued ahead
		concurry.SlidingWindow: window, // the 10 expire
	}[alg]
	if alg == concurry.FixedWindow { // the next window, aligned to the Unix epoch
		w := int64(window)
		want = time.Duration((start.UnixNano()/w+1)*w - start.UnixNano())
	}
	e.wantRefusal(err, refusal{key: "r", lo: want - elapsed, hi: want})
}

// testFactsSleepRetryAfter drains a limit of 10 per second: a caller who
// sleeps the RetryAfter of its refusal then succeeds.
func testFactsSleepRetryAfter(e *Env, alg concurry.Algorithm) {
	e.Need(e.Caps.Facts, "refusal facts")
	req := concurry.Amounts{"r": 2}
	for range 3 { // a FixedWindow boundary may come between the drain and the refusal
		ls := e.Set(concurry.RateLimit{Key: "r", Window: time.Second, Capacity: 10, Algorithm: alg})
		e.Done(e.MustTry(ls, concurry.Amounts{"r": 10}), concurry.Amounts{"r": 10})
		a, err := ls.TryAcquire(context.Background(), req)
		if err == nil {
			e.Done(a, req)
			continue
		}
		r := e.wantRefusal(err, refusal{key: "r", lo: 0, hi: time.Second})
		time.Sleep(r.RetryAfter) // the behaviour under test, not a synchronisation
		e.Done(e.MustTry(ls, req), req)
		return
	}
	e.T.Fatal("never refused after a drain")
}

// testFactsBottleneck drains two limits of different pace: a request for
// both names the one whose instant is later.
func testFactsBottleneck(t *testing.T, e *Env) {
	e.Need(e.Caps.Facts, "refusal facts")
	ls := e.Set(
		concurry.RateLimit{Key: "fast", Window: 10 * time.Second, Capacity: 10},
		concurry.RateLimit{Key: "slow", Window: 1000 * time.Second, Capacity: 10, Algorithm: concurry.GCRA},
	)
	start := time.Now()
	both := concurry.Amounts{"fast": 10, "slow": 10}
	e.Done(e.MustTry(ls, both), both)
	_, err := ls.TryAcquire(context.Background(), concurry.Amounts{"fast": 1, "slow": 1})
	e.wantRefusal(err, refusal{key: "slow", lo: 100*time.Second - time.Since(start), hi: 100 * time.Second})
	_, err = ls.TryAcquire(context.Background(), concurry.Amounts{"fast": 5})
	e.wantRefusal(err, refusal{key: "fast", lo: 5*time.Second - time.Since(start), hi: 5 * time.Second})
}

// testFactsReleaseOnly holds the only unit of a resource and drains a rate
// limit: a refusal names the resource, with RetryAfter 0, since only a
// release can make room.
func testFactsReleaseOnly(t *testing.T, e *Env) {
	e.Need(e.Caps.Facts, "refusal facts")
	ls := e.Set(
		concurry.RateLimit{Key: "r", Window: 100 * time.Second, Capacity: 10},
		concurry.ResourceLimit{Key: "conn", Capacity: 1},
	)
	held := e.MustTry(ls, concurry.Amounts{"r": 10})
	_, err := ls.TryAcquire(context.Background(), concurry.Amounts{"r": 1})
	e.wantRefusal(err, refusal{key: "conn"})
	e.Done(held, concurry.Amounts{"r": 10})
	_, err = ls.TryAcquire(context.Background(), concurry.Amounts{"r": 1})
	e.wantRefusal(err, refusal{key: "r", lo: 0, hi: 10 * time.Second})
}

// testFactsDeadline: a wait whose deadline comes before the grant fails at
// once with a deadline refusal that says when the grant would come.
func testFactsDeadline(t *testing.T, e *Env) {
	e.Need(e.Caps.Facts, "refusal facts")
	ls := e.Set(concurry.RateLimit{Key: "r", Window: 100 * time.Second, Capacity: 10})
	start := time.Now()
	e.Done(e.MustTry(ls, concurry.Amounts{"r": 10}), concurry.Amounts{"r": 10})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := ls.Acquire(ctx, concurry.Amounts{"r": 1})
	elapsed := time.Since(start)
	e.wantRefusal(err, refusal{key: "r", deadline: true, lo: 10*time.Second - elapsed, hi: 10 * time.Second})
	if elapsed > 500*time.Millisecond {
		t.Fatalf("the unmeetable deadline failed after %v, not at once", elapsed)
	}
}

// testFactsQueued: a refusal while an earlier request waits is Queued, and
// its RetryAfter is projected through that request, served first.
func testFactsQueued(t *testing.T, e *Env) {
	e.Need(e.Caps.Facts, "refusal facts")
	ls := e.Set(
		concurry.RateLimit{Key: "r", Window: 20 * time.Second, Capacity: 2},
		concurry.RateLimit{Key: "probe", Window: Long, Capacity: 1000},
	)
	start := time.Now()
	e.Done(e.MustTry(ls, concurry.Amounts{"r": 2}), concurry.Amounts{"r": 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w1 := e.Go(ctx, ls, concurry.Amounts{"r": 1}) // due in 10s
	e.WaitQueued(ls, concurry.Amounts{"probe": 1})
	_, err := ls.TryAcquire(context.Background(), concurry.Amounts{"r": 1})
	e.wantRefusal(err, refusal{key: "r", queued: true, lo: 20*time.Second - time.Since(start), hi: 20 * time.Second})
	cancel()
	if _, err := e.Wait(w1); !errors.Is(err, context.Canceled) {
		t.Fatalf("the waiter ahead: %v, want context.Canceled", err)
	}
}

// testFactsDebt: overage shows as Debt in Stats, Available staying at 0.
func testFactsDebt(e *Env, alg concurry.Algorithm) {
	e.Need(e.Caps.Facts, "refusal facts")
	ls := e.Set(concurry.RateLimit{Key: "r", Window: Long, Capacity: 10, Algorithm: alg})
	e.Done(e.MustTry(ls, concurry.Amounts{"r": 10}), concurry.Amounts{"r": 13})
	if st := e.Stat(ls, "r"); st.Available != 0 || st.Debt != 3 {
		e.T.Fatalf("after 3 units of overage: %d available, debt %d; want 0 and 3", st.Available, st.Debt)
	}
}
