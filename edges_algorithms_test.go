package concurry_test

// Edge tests of the five algorithms at exact instants, the facts a
// refusal carries, debt, and the ends of the contract's range — on the
// in-memory backend under testing/synctest (fake time starts at
// 2000-01-01T00:00:00Z = 946684800 s since the epoch), and on
// backend/unixsock with an in-process server in real time.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend/unixsock"
	"github.com/concurry/concurry/internal/backendtest"
	"github.com/concurry/concurry/internal/testutil"
)

// nsClock is the clock of a testing/synctest bubble, which resolves a ns.
var nsClock = backendtest.Clock{Advance: time.Sleep, Q: time.Nanosecond}

func paSet(t *testing.T, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	return paSetWith(t, nil, limits...)
}

// paSetWith returns a set of limits in memory made with opts, closed when
// the test ends.
func paSetWith(t *testing.T, opts []concurry.Option, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	ls, err := concurry.NewLimitSet(limits, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	return ls
}

// "TokenBucket: starts full; refills continuously at Capacity/Window" and
// "RetryAfter — how long until the whole request would fit": with a rate of
// 3 per second (T = 333,333,333⅓ ns) the first unit is back at the first whole
// ns at or after T, not a ns before, and the fraction left over is kept.
func TestEdgeAlgTokenBucketFractionalRefillAtTheExactNanosecond(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				backendtest.FractionalRefill(t, nsClock, paSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 3, Algorithm: alg}))
			})
		})
	}
}

// "GCRA: ... admit n at now iff max(TAT, now) + n·T − now ≤ τ ... A full burst
// is exactly Capacity (the same admissions as TokenBucket)": after a partial
// refill of 3.5 units, 3 fit and 4 fit 50ms later, exactly.
func TestEdgeAlgGCRAToleranceAfterPartialRefill(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := paSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10, Algorithm: alg})
				backendtest.Take(t, ls, concurry.Amounts{"u": 10}, concurry.Amounts{"u": 10})
				backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 10}), "u", time.Second)
				time.Sleep(350 * time.Millisecond)
				if got := backendtest.LimitStat(t, ls, "u").Available; got != 3 {
					t.Fatalf("Available = %d after 350ms, want 3", got)
				}
				backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 4}), "u", 50*time.Millisecond)
				time.Sleep(650 * time.Millisecond)
				backendtest.Take(t, ls, concurry.Amounts{"u": 10}, concurry.Amounts{"u": 10}) // a full burst again, exactly Capacity
				backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", 100*time.Millisecond)
			})
		})
	}
}

// "Refunds move TAT back, never before now" (GCRA) and TokenBucket's refund
// capped at a full bucket: a refund larger than what was spent since gives back
// only what fills the bucket, and Refunded says so.
func TestEdgeAlgRefundNeverBeforeNow(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var settled []int64 // Refunded, per Settled call
				ls := paSetWith(t, []concurry.Option{concurry.WithHooks(concurry.Hooks{Settled: func(i concurry.SettleInfo) {
					mu.Lock()
					settled = append(settled, i.Refunded)
					mu.Unlock()
				}})}, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10, Algorithm: alg})
				backendtest.RefundNeverBeforeNow(t, nsClock, ls)
				// The refund capped at a full bucket, then the partial refund (the
				// burst of 10 between them used what it took: no Settled call).
				if !slices.Equal(settled, []int64{1, 3}) {
					t.Errorf("Settled hook saw Refunded %v, want [1 3]", settled)
				}
			})
		})
	}
}

// "Debt is visible: stats show a negative balance (or a debt field) after
// overage" and RetryAfter "how long until the whole request would fit": 15
// units of overage at 1 unit/s are paid off at 15s, and one unit fits at
// exactly 16s.
func TestEdgeAlgDebtIsPaidOffAtTheExactInstant(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				backendtest.DebtPaidOff(t, nsClock, paSet(t, concurry.RateLimit{Key: "u", Window: 10 * time.Second, Capacity: 10, Algorithm: alg}))
			})
		})
	}
}

// "LeakyBucket: ... A request of n units departs at max(now, next) and moves
// next to its departure + n·T ... a blocking Acquire waits for room and
// returns at the request's departure; TryAcquire succeeds only when it can
// depart now."
func TestEdgeAlgLeakyBucketDepartures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := paSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 4, Algorithm: concurry.LeakyBucket}) // T = 250ms
		start := time.Now()
		for _, s := range []struct {
			n    int64
			want time.Duration
		}{{1, 0}, {2, 250 * time.Millisecond}, {1, 750 * time.Millisecond}, {4, time.Second}, {1, 2 * time.Second}} {
			a, err := ls.Acquire(context.Background(), concurry.Amounts{"u": s.n})
			if err != nil {
				t.Fatal(err)
			}
			if got := time.Since(start); got != s.want {
				t.Fatalf("Acquire(%d) returned at %v, want its departure %v", s.n, got, s.want)
			}
			a.Update(concurry.Amounts{"u": s.n})
			a.Release()
		}
		// next = 2.25s: one unit of room is missing until then, and only then
		// can a request depart now.
		backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", 250*time.Millisecond)
		if got := backendtest.LimitStat(t, ls, "u").Available; got != 3 {
			t.Fatalf("Available %d with one unit queued ahead, want 3", got)
		}
		nsClock.FitsIn(t, ls, 250*time.Millisecond, "u", concurry.Amounts{"u": 4})
	})
}

// LeakyBucket with T = 1/3 s: "each request is followed by a gap of its own
// n·T", departures on whole nanoseconds never earlier than exact.
func TestEdgeAlgLeakyBucketFractionalPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := paSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 3, Algorithm: concurry.LeakyBucket})
		start := time.Now()
		var prev time.Duration
		for i := range 6 {
			a, err := ls.Acquire(context.Background(), concurry.Amounts{"u": 1})
			if err != nil {
				t.Fatal(err)
			}
			got := time.Since(start)
			if exact := time.Duration((int64(i)*int64(time.Second) + 2) / 3); got < exact || got > exact+time.Duration(i) {
				t.Fatalf("departure %d at %v, want in [%v, %v]", i, got, exact, exact+time.Duration(i))
			}
			if i > 0 && got-prev < 333_333_334 {
				t.Fatalf("departure %d only %v after the one before, less than T", i, got-prev)
			}
			prev = got
			a.Update(concurry.Amounts{"u": 1})
			a.Release()
		}
	})
}

// "At most Capacity units may be queued ahead": three blocking requests of 2
// on a queue of 4 depart at 0, 500ms and 1s; a fourth departs at 1.5s, and a
// deadline one ns before that fails at once with the facts.
func TestEdgeAlgLeakyBucketQueuedAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := paSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 4, Algorithm: concurry.LeakyBucket})
		start := time.Now()
		var wg sync.WaitGroup
		got := make([]time.Duration, 4)
		for i := range 3 {
			wg.Go(func() {
				a, err := ls.Acquire(context.Background(), concurry.Amounts{"u": 2})
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = time.Since(start)
				a.Update(concurry.Amounts{"u": 2})
				a.Release()
			})
			synctest.Wait()
		}
		paQueued(t, backendtest.Try(ls, concurry.Amounts{"u": 2}), "u", 1500*time.Millisecond) // behind two waiters
		r := &concurry.RefusalError{}
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond-1)
		_, err := ls.Acquire(ctx, concurry.Amounts{"u": 2})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &r) || r.RetryAfter != 1500*time.Millisecond || time.Since(start) != 0 {
			t.Fatalf("deadline 1ns before the departure: %v (%+v) at %v, want an immediate deadline refusal, RetryAfter 1.5s", err, r, time.Since(start))
		}
		ctx, cancel = context.WithTimeout(context.Background(), 1500*time.Millisecond)
		a, err := ls.Acquire(ctx, concurry.Amounts{"u": 2})
		cancel()
		if err != nil {
			t.Fatalf("deadline exactly at the departure: %v", err)
		}
		got[3] = time.Since(start)
		a.Update(concurry.Amounts{"u": 2})
		a.Release()
		wg.Wait()
		want := []time.Duration{0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("departures %v, want %v", got, want)
			}
		}
	})
}

// LeakyBucket overage: "More than requested: the excess is charged too": the
// queue grows by the excess's drain time, room comes back unit by unit as it
// drains, and a request departs only once it has drained.
func TestEdgeAlgLeakyBucketOverageDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := paSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 4, Algorithm: concurry.LeakyBucket})
		backendtest.Take(t, ls, concurry.Amounts{"u": 1}, concurry.Amounts{"u": 9}) // next = 2.25s
		if st := backendtest.LimitStat(t, ls, "u"); st.Available != 0 || st.Overage != 8 {
			t.Fatalf("after 8 of overage: %+v, want Available 0, Overage 8", st)
		}
		backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", 2250*time.Millisecond)
		time.Sleep(1500 * time.Millisecond) // 750ms = 3 units queued ahead
		if got := backendtest.LimitStat(t, ls, "u").Available; got != 1 {
			t.Fatalf("Available %d with 3 units queued ahead, want 1", got)
		}
		start := time.Now()
		a, err := ls.Acquire(context.Background(), concurry.Amounts{"u": 1})
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 750*time.Millisecond {
			t.Fatalf("Acquire departed after %v, want 750ms", d)
		}
		a.Update(concurry.Amounts{"u": 1})
		a.Release()
	})
}

// "SlidingWindow: exact rolling window: the sum of amounts admitted in
// (now−Window, now] never exceeds Capacity", RetryAfter the instant enough of
// the oldest admissions leave.
func TestEdgeAlgSlidingWindowExactEdges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		backendtest.SlidingWindowEdges(t, nsClock, paSet(t, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10, Algorithm: concurry.SlidingWindow}))
	})
}

// "FixedWindow: a counter per window aligned to multiples of Window since the
// Unix epoch ...; up to 2× Capacity across a boundary". 946684800 s (the
// bubble's start) is 5 s past a multiple of 7 s, so the next window starts 2 s
// later.
func TestEdgeAlgFixedWindowEpochAlignment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if r := time.Now().Unix() % 7; r != 5 {
			t.Skipf("the bubble starts %d s past a multiple of 7", r)
		}
		backendtest.FixedWindowEpoch(t, nsClock, func(l ...concurry.Limit) *concurry.LimitSet { return paSet(t, l...) })
	})
}

// "Capacities up to 2^50 and windows up to 366 days ... no sum of amounts
// can overflow": at 2^50 per 366 days (T ≈ 28.09 ns) every algorithm answers
// to the ns: one unit after 29 ns (TokenBucket, GCRA), the whole capacity
// after exactly 366 days; the next FixedWindow starts 23 days after the
// bubble's start (946684800 s is 29635200 s into a 366-day window).
func TestEdgeAlgExtremeRangeExactInstants(t *testing.T) {
	const c = concurry.MaxCapacity
	const w = concurry.MaxWindow
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA, concurry.LeakyBucket, concurry.SlidingWindow, concurry.FixedWindow} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := paSet(t, concurry.RateLimit{Key: "u", Window: w, Capacity: c, Algorithm: alg})
				if alg == concurry.LeakyBucket { // departs only from an empty queue
					backendtest.Take(t, ls, concurry.Amounts{"u": c}, concurry.Amounts{"u": c})
				} else { // amounts near capacity, summed
					backendtest.Take(t, ls, concurry.Amounts{"u": c - 1}, concurry.Amounts{"u": c - 1})
					backendtest.Take(t, ls, concurry.Amounts{"u": 1}, concurry.Amounts{"u": 1})
				}
				wantAll := map[concurry.Algorithm]time.Duration{
					concurry.TokenBucket: w, concurry.GCRA: w, concurry.LeakyBucket: w, concurry.SlidingWindow: w,
					concurry.FixedWindow: 1987200 * time.Second,
				}[alg]
				want1 := wantAll
				if alg == concurry.TokenBucket || alg == concurry.GCRA {
					want1 = 29
				}
				backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", want1)
				backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": c}), "u", wantAll)
				nsClock.FitsIn(t, ls, want1, "u", concurry.Amounts{"u": 1})
			})
		})
	}
}

// "the budget may go into debt ... Debt is visible" at the top of the range:
// 2^50 of overage on a limit of 2^50 per 366 days is a debt of exactly 2^50,
// paid off after exactly 366 days; one unit fits 29 ns later.
func TestEdgeAlgExtremeDebtExact(t *testing.T) {
	const c = concurry.MaxCapacity
	const w = concurry.MaxWindow
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := paSet(t, concurry.RateLimit{Key: "u", Window: w, Capacity: c, Algorithm: alg})
				backendtest.DebtOf(t, ls, c, 0)
				st := backendtest.LimitStat(t, ls, "u")
				if st.Available != 0 || st.Debt != c || st.Overage != 2*c-2 {
					t.Fatalf("after 2^50 of overage: %+v; want Available 0, Debt 2^50, Overage 2^50", st)
				}
				backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", w+29)
				backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": c}), "u", 2*w)
				time.Sleep(w)
				if st := backendtest.LimitStat(t, ls, "u"); st.Debt != 0 || st.Available != 0 {
					t.Fatalf("after 366 days: %+v, want Debt 0, Available 0", st)
				}
				time.Sleep(28 * time.Nanosecond)
				backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", 1)
				time.Sleep(time.Nanosecond)
				backendtest.Take(t, ls, concurry.Amounts{"u": 1}, concurry.Amounts{"u": 1})
			})
		})
	}
}

// "RetryAfter ... 0 when only a release can make room": a TryAcquire queued
// behind a waiter that waits for a held resource can only be helped by a
// release, whatever its rate limits say.
func TestEdgeAlgRetryAfterZeroBehindAResourceWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := paSet(t,
			concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10},
			concurry.ResourceLimit{Key: "conn", Capacity: 1})
		held, err := ls.TryAcquire(context.Background(), concurry.Amounts{"u": 1})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := paWaiter(ctx, ls, concurry.Amounts{"u": 1})
		synctest.Wait()
		paQueued(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "conn", 0) // behind a resource waiter
		held.Update(concurry.Amounts{"u": 1})
		held.Release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// Several windows per key: "a request for that key takes from every one of
// them, atomically", and the refusal names the key with RetryAfter for the
// window that fits last.
func TestEdgeAlgSharedKeyRetryAfterIsTheLatestWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := paSet(t,
			concurry.RateLimit{Key: "t", Window: time.Second, Capacity: 10},
			concurry.RateLimit{Key: "t", Window: 10 * time.Second, Capacity: 15, Algorithm: concurry.GCRA})
		backendtest.Take(t, ls, concurry.Amounts{"t": 10}, concurry.Amounts{"t": 10})
		time.Sleep(time.Second)                                                     // short: 10; long: 5 + 1.5
		backendtest.Take(t, ls, concurry.Amounts{"t": 5}, concurry.Amounts{"t": 5}) // short: 5; long: 1.5
		backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"t": 3}), "t", time.Second)
		time.Sleep(time.Second - 1)
		backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"t": 3}), "t", 1)
		time.Sleep(time.Nanosecond)
		backendtest.Take(t, ls, concurry.Amounts{"t": 3}, concurry.Amounts{"t": 3})
	})
}

// Overage on the algorithms without refunds: "Debt is visible: stats show a
// negative balance (or a debt field) after overage; nothing clamps it to 0
// silently." Read literally, 15 units charged beyond a FixedWindow's or a
// LeakyBucket's capacity are debt until the window ends / the queue drains.
func TestEdgeAlgDebtVisibleOnNonRefundingAlgorithms(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.LeakyBucket, concurry.SlidingWindow, concurry.FixedWindow} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := paSet(t, concurry.RateLimit{Key: "u", Window: 1000 * time.Hour, Capacity: 10, Algorithm: alg})
				backendtest.Take(t, ls, concurry.Amounts{"u": 10}, concurry.Amounts{"u": 25})
				st := backendtest.LimitStat(t, ls, "u")
				if st.Available != 0 || st.Overage != 15 {
					t.Fatalf("%+v, want Available 0 and Overage 15", st)
				}
				if st.Debt != 15 {
					t.Errorf("Debt = %d after 15 units of overage beyond the capacity, want 15 (a debt field, not clamped to 0)", st.Debt)
				}
			})
		})
	}
}

// paWaiter starts ls.Acquire(ctx, req) in a goroutine that, once granted,
// uses req in full and releases; the channel receives Acquire's error.
func paWaiter(ctx context.Context, ls *concurry.LimitSet, req concurry.Amounts) <-chan error {
	done := make(chan error, 1)
	go func() {
		a, err := ls.Acquire(ctx, req)
		if err == nil {
			a.Update(req)
			a.Release()
		}
		done <- err
	}()
	return done
}

// paQueued fails unless err is an ErrWouldBlock refusal by key with
// RetryAfter exactly, queued behind a waiter.
func paQueued(t *testing.T, err error, key string, retryAfter time.Duration) {
	t.Helper()
	if r := backendtest.Refused(t, err, key, retryAfter); !r.Queued {
		t.Fatalf("refusal %+v, want Queued (behind a waiter)", *r)
	}
}

// paUnixSet returns a set of limits shared through an in-process unixsock
// server (real time).
func paUnixSet(t *testing.T, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	return paUnixSetWith(t, nil, limits...)
}

// paUnixSetWith is paUnixSet with more options for the set.
func paUnixSetWith(t *testing.T, opts []concurry.Option, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	path := testutil.SocketPath(t)
	srv, err := unixsock.Listen(path, unixsock.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c, err := unixsock.Dial(path, unixsock.Options{DisableAutoHost: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return paSetWith(t, append([]concurry.Option{concurry.WithName(t.Name()), concurry.WithBackend(c)}, opts...), limits...)
}

// paNear fails unless err is a ErrWouldBlock refusal by key with RetryAfter
// in [lo, hi].
func paNear(t *testing.T, err error, key string, lo, hi time.Duration) {
	t.Helper()
	var r *concurry.RefusalError
	if !errors.As(err, &r) || !errors.Is(err, concurry.ErrWouldBlock) || r.Key != key || r.RetryAfter < lo || r.RetryAfter > hi {
		t.Fatalf("refusal %v (%+v), want key %q, RetryAfter in [%v, %v]", err, r, key, lo, hi)
	}
}

// The same facts over a Unix socket: debt at the top of the range, FixedWindow
// epoch alignment at 366 days, LeakyBucket overage, SlidingWindow.
func TestEdgeAlgUnixsockFacts(t *testing.T) {
	const c = concurry.MaxCapacity
	const w = concurry.MaxWindow
	t.Run("ExtremeDebt", func(t *testing.T) {
		for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA} {
			ls := paUnixSet(t, concurry.RateLimit{Key: "u", Window: w, Capacity: c, Algorithm: alg})
			backendtest.DebtOf(t, ls, c, 0)
			st := backendtest.LimitStat(t, ls, "u")
			if st.Available != 0 || st.Debt < c-1<<36 || st.Debt > c || st.Overage != 2*c-2 {
				t.Fatalf("%v after 2^50 of overage: %+v; want Available 0, Debt ≈ 2^50, Overage 2^50", alg, st)
			}
			paNear(t, backendtest.Try(ls, concurry.Amounts{"u": c}), "u", 2*w-time.Second, 2*w)
			ls.Close()
		}
	})
	t.Run("FixedWindowEpoch", func(t *testing.T) {
		ls := paUnixSet(t, concurry.RateLimit{Key: "u", Window: w, Capacity: 10, Algorithm: concurry.FixedWindow})
		before := time.Now().UnixNano()
		backendtest.Take(t, ls, concurry.Amounts{"u": 10}, concurry.Amounts{"u": 10})
		next := (before/int64(w) + 1) * int64(w)
		after := time.Now().UnixNano()
		paNear(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", time.Duration(next-after)-time.Second, time.Duration(next-before))
	})
	t.Run("LeakyBucketOverage", func(t *testing.T) {
		ls := paUnixSet(t, concurry.RateLimit{Key: "u", Window: 1000 * time.Hour, Capacity: 4, Algorithm: concurry.LeakyBucket})
		backendtest.Take(t, ls, concurry.Amounts{"u": 1}, concurry.Amounts{"u": 9})
		if st := backendtest.LimitStat(t, ls, "u"); st.Available != 0 {
			t.Fatalf("%+v, want Available 0", st)
		}
		paNear(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", 2250*time.Hour-time.Second, 2250*time.Hour)
	})
	t.Run("SlidingWindow", func(t *testing.T) {
		ls := paUnixSet(t, concurry.RateLimit{Key: "u", Window: 1000 * time.Hour, Capacity: 10, Algorithm: concurry.SlidingWindow})
		backendtest.Take(t, ls, concurry.Amounts{"u": 4}, concurry.Amounts{"u": 4})
		backendtest.Take(t, ls, concurry.Amounts{"u": 6}, concurry.Amounts{"u": 6})
		paNear(t, backendtest.Try(ls, concurry.Amounts{"u": 4}), "u", 1000*time.Hour-time.Second, 1000*time.Hour)
	})
}

// The in-memory reference for the Redis probe of the same name: on 10 per 366
// days (T = 36.6 days), 1000 units of overage with 2 taken are a debt of 992,
// a refund of 1 leaves 991, and one unit fits after 992·T; a LeakyBucket
// with 1000 units of overage drains after 1001·T.
func TestEdgeAlgSlowLimitLargeOverage(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA, concurry.LeakyBucket} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := paSet(t, concurry.RateLimit{Key: "u", Window: concurry.MaxWindow, Capacity: 10, Algorithm: alg})
				backendtest.SlowLimitLargeOverage(t, ls, alg, func(d time.Duration) time.Duration { return d })
			})
		})
	}
}

// "a blocked Acquire sleeps until the earliest instant its request can
// succeed, or until a release makes it possible" with "the difference is
// refunded": a refund that makes room grants the waiter at that instant.
func TestEdgeAlgRefundGrantsAWaiterAtTheInstant(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := paSet(t, concurry.RateLimit{Key: "u", Window: 10 * time.Second, Capacity: 10, Algorithm: alg})
				a, err := ls.TryAcquire(context.Background(), concurry.Amounts{"u": 10})
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				done := paWaiter(context.Background(), ls, concurry.Amounts{"u": 5}) // due at 5s
				time.Sleep(time.Second)                                              // level 1
				a.Update(concurry.Amounts{"u": 6})
				a.Release() // refund 4: level 5
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d != time.Second {
					t.Fatalf("the waiter was granted at %v, want 1s (the refund)", d)
				}
				if got := backendtest.LimitStat(t, ls, "u").Available; got != 0 {
					t.Fatalf("Available %d, want 0", got)
				}
			})
		})
	}
}

// A TryAcquire on a key nobody waits for still queues behind the waiter
// ("TryAcquire never jumps that queue") and its RetryAfter counts it: the
// waiter is granted at 500ms, then this request fits at once.
func TestEdgeAlgQueuedRefusalOnAnotherKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := paSet(t,
			concurry.RateLimit{Key: "a", Window: time.Second, Capacity: 10},
			concurry.RateLimit{Key: "b", Window: time.Second, Capacity: 10, Algorithm: concurry.LeakyBucket})
		backendtest.Take(t, ls, concurry.Amounts{"a": 10}, concurry.Amounts{"a": 10})
		done := paWaiter(context.Background(), ls, concurry.Amounts{"a": 5})
		synctest.Wait()
		paQueued(t, backendtest.Try(ls, concurry.Amounts{"b": 1}), "a", 500*time.Millisecond)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		backendtest.Take(t, ls, concurry.Amounts{"b": 1}, concurry.Amounts{"b": 1})
	})
}

// CallLimits (a request that names no key takes one call) carry the same
// facts: the key CallKey and RetryAfter to the ns, for every algorithm.
func TestEdgeAlgCallLimitRefusalFacts(t *testing.T) {
	want := map[concurry.Algorithm]struct {
		calls int
		after time.Duration
	}{
		concurry.TokenBucket:   {4, 250 * time.Millisecond},
		concurry.GCRA:          {4, 250 * time.Millisecond},
		concurry.LeakyBucket:   {1, 250 * time.Millisecond},
		concurry.SlidingWindow: {4, time.Second},
		concurry.FixedWindow:   {4, time.Second}, // the bubble starts on a whole second
	}
	for alg, w := range want {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := paSet(t, concurry.CallLimit{Window: time.Second, Capacity: 4, Algorithm: alg})
				for range w.calls {
					backendtest.Take(t, ls, nil, nil)
				}
				backendtest.Refused(t, backendtest.Try(ls, nil), concurry.CallKey, w.after)
				time.Sleep(w.after - 1)
				backendtest.Refused(t, backendtest.Try(ls, nil), concurry.CallKey, 1)
				time.Sleep(time.Nanosecond)
				backendtest.Take(t, ls, nil, nil)
			})
		})
	}
}

// paSaturated is the RetryAfter a saturated limit of alg must at least
// report: more than a year, or, for a FixedWindow, whose overage is
// forgotten at the next window wherever it falls, 2 hours.
func paSaturated(alg concurry.Algorithm) time.Duration {
	if alg == concurry.FixedWindow {
		return 2 * time.Hour
	}
	return 365 * 24 * time.Hour
}

// "no sum of amounts can overflow" (Limits of the contract), for every
// algorithm, in memory and over a Unix socket.
func TestEdgeAlgSaturatedLimitsNeverWrap(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA, concurry.LeakyBucket, concurry.SlidingWindow, concurry.FixedWindow} {
		t.Run("memory/"+alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := paSet(t, concurry.RateLimit{Key: "u", Window: concurry.MaxWindow, Capacity: 1, Algorithm: alg})
				backendtest.Saturate(t, ls, paSaturated(alg), time.Hour, time.Second)
			})
		})
		t.Run("unixsock/"+alg.String(), func(t *testing.T) {
			ls := paUnixSet(t, concurry.RateLimit{Key: "u", Window: concurry.MaxWindow, Capacity: 1, Algorithm: alg})
			backendtest.Saturate(t, ls, paSaturated(alg), time.Hour, time.Second)
		})
	}
}
