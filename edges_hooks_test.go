package concurry_test

// Edge tests of the hooks: each event heard once with its facts, and a hook
// that panics or calls runtime.Goexit contained, on every path.

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/internal/backendtest"
)

// Hooks doc: "Settled is called when an acquisition is released, once per key
// of a rate limit whose settlement refunded units or charged overage (usage
// below the grant of a limit that does not refund changes nothing)." A key
// granted 50 and using 10: a SlidingWindow key alone is no call; the same
// key with a second window (TokenBucket) refunding 40 is one call.
func TestEdgeSettledOncePerRefundingKey(t *testing.T) {
	sliding := concurry.RateLimit{Key: "tok", Window: time.Second, Capacity: 100, Algorithm: concurry.SlidingWindow}
	for _, c := range []struct {
		name    string
		limits  []concurry.Limit
		refunds []int64 // Refunded of each Settled call
	}{
		{"NonRefundingUnderuse", []concurry.Limit{sliding}, nil},
		{"MultiWindowKey", []concurry.Limit{sliding, concurry.RateLimit{Key: "tok", Window: time.Hour, Capacity: 1000, Algorithm: concurry.TokenBucket}}, []int64{40}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls, rec := recordedSet(t, c.limits...)
				mustRelease(t, mustTry(t, ls, concurry.Amounts{"tok": 50}), concurry.Amounts{"tok": 10})
				st, err := ls.Stats(context.Background())
				require.NoError(t, err)
				var refunded, want int64
				for _, l := range st.Limits {
					refunded += l.Refunded
				}
				var heard []int64
				for _, i := range rec.settled {
					heard = append(heard, i.Refunded)
				}
				for _, r := range c.refunds {
					want += r
				}
				assert.Equal(t, want, refunded, "stats")
				assert.Equal(t, c.refunds, heard, "once per key whose usage differed")
			})
		})
	}
}

// "a hook that calls runtime.Goexit ends its goroutine with the limiter's
// state consistent": a Settled hook exiting on the first key must not lose
// the second key's refund from Stats.
func TestEdgeGoexitInSettledKeepsStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.RateLimit{Key: "a", Window: time.Second, Capacity: 100},
			concurry.RateLimit{Key: "b", Window: time.Second, Capacity: 100},
			concurry.ResourceLimit{Key: "conn", Capacity: 1},
		}, concurry.WithHooks(concurry.Hooks{Settled: func(concurry.SettleInfo) { runtime.Goexit() }}))
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			a, err := ls.TryAcquire(context.Background(), concurry.Amounts{"a": 50, "b": 50})
			if err != nil {
				return
			}
			_ = a.Update(concurry.Amounts{"a": 10, "b": 20})
			_ = a.Release()
		}()
		<-done
		st, err := ls.Stats(context.Background())
		require.NoError(t, err)
		la, _ := st.Limit("a")
		lb, _ := st.Limit("b")
		assert.Equal(t, int64(40), la.Refunded)
		assert.Equal(t, int64(30), lb.Refunded, "b's refund was made; Stats must count it")
		lc, _ := st.Limit("conn")
		assert.Equal(t, int64(0), lc.InUse)
		// refunds applied and resource back:
		mustRelease(t, mustTry(t, ls, concurry.Amounts{"a": 90, "b": 80}), concurry.Amounts{"a": 90, "b": 80})
	})
}

// Goexit in WaitDone of a failed wait: the refusal still counts in Stats.
func TestEdgeGoexitInWaitDoneOnRefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var refused int
		ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Hour, Capacity: 1}},
			concurry.WithHooks(concurry.Hooks{
				WaitDone: func(i concurry.WaitInfo) {
					if i.Err != nil {
						runtime.Goexit()
					}
				},
				Refused: func(concurry.RefusalInfo) { refused++ },
			}))
		require.NoError(t, err)
		a, err := ls.TryAcquire(context.Background(), nil)
		require.NoError(t, err)
		require.NoError(t, a.Release())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _, _ = ls.Acquire(ctx, nil) }()
		synctest.Wait()
		cancel()
		<-done
		st, err := ls.Stats(context.Background())
		require.NoError(t, err)
		assert.Equal(t, int64(1), st.Refusals.Canceled, "a cancelled wait is a refusal by cause")
		// the set is exactly as it was: a later TryAcquire after the window works
		time.Sleep(time.Hour)
		b, err := ls.TryAcquire(context.Background(), nil)
		require.NoError(t, err)
		require.NoError(t, b.Release())
	})
}

// "Every decision can be observed at no cost when nobody listens."
func TestEdgeNilHooksAllocNothing(t *testing.T) {
	limits := []concurry.Limit{
		concurry.CallLimit{Window: time.Second, Capacity: 1 << 40},
		concurry.RateLimit{Key: "tok", Window: time.Second, Capacity: 1 << 40},
		concurry.ResourceLimit{Key: "c", Capacity: 10},
	}
	plain, err := concurry.NewLimitSet(limits)
	require.NoError(t, err)
	hooked, err := concurry.NewLimitSet(limits, concurry.WithHooks(concurry.Hooks{}))
	require.NoError(t, err)
	h := sameAllocsWithNilHooks(t, plain, hooked, concurry.Amounts{"tok": 5}, concurry.Amounts{"tok": 3})
	assert.LessOrEqual(t, h, 1.0)
}

// recordedSet returns a set of limits in memory whose hooks record into
// the recorder it returns.
func recordedSet(t *testing.T, limits ...concurry.Limit) (*concurry.LimitSet, *recorder) {
	t.Helper()
	rec := &recorder{}
	return paSetWith(t, []concurry.Option{concurry.WithHooks(rec.hooks())}, limits...), rec
}

// sameAllocsWithNilHooks checks that a TryAcquire, Update(use) and Release
// allocates as much through hooked (empty Hooks) as through plain (none),
// and returns what hooked allocates per round.
func sameAllocsWithNilHooks(t *testing.T, plain, hooked concurry.Limiter, req, use concurry.Amounts) float64 {
	t.Helper()
	run := func(l concurry.Limiter) float64 {
		return testing.AllocsPerRun(200, func() {
			a, err := l.TryAcquire(context.Background(), req)
			if err != nil {
				panic(err)
			}
			_ = a.Update(use)
			_ = a.Release()
		})
	}
	p, h := run(plain), run(hooked)
	t.Logf("allocs: plain %v, nil hooks %v", p, h)
	assert.Equal(t, p, h)
	return h
}

// Limits of the contract: "Capacities up to 2^50 and windows up to 366 days;
// anything larger is ErrInvalidLimit at definition".
func TestEdgeLimitsEdgesMemory(t *testing.T) {
	for alg := concurry.TokenBucket; alg <= concurry.GCRA; alg++ {
		_, err := concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "k", Window: 366 * 24 * time.Hour, Capacity: 1 << 50, Algorithm: alg}})
		assert.NoError(t, err, alg.String())
		_, err = concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "k", Window: 366*24*time.Hour + 1, Capacity: 1, Algorithm: alg}})
		assert.ErrorIs(t, err, concurry.ErrInvalidLimit, alg.String())
		_, err = concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "k", Window: time.Second, Capacity: 1<<50 + 1, Algorithm: alg}})
		assert.ErrorIs(t, err, concurry.ErrInvalidLimit, alg.String())
		_, err = concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Nanosecond, Capacity: 1 << 50, Algorithm: alg}})
		assert.NoError(t, err, alg.String())
	}
	_, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "r", Capacity: 1 << 50}})
	assert.NoError(t, err)
	_, err = concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "r", Capacity: 1<<50 + 1}})
	assert.ErrorIs(t, err, concurry.ErrInvalidLimit)
}

// "no sum of amounts can overflow": 9000 concurrent acquisitions of one unit
// each report 2^50 used; the debt (9000·2^50 > 2^63) must not wrap.
func TestEdgeDebtSumDoesNotOverflow(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA, concurry.SlidingWindow, concurry.FixedWindow, concurry.LeakyBucket} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				ls, err := concurry.NewLimitSet([]concurry.Limit{
					concurry.RateLimit{Key: "k", Window: 366 * 24 * time.Hour, Capacity: 1 << 50, Algorithm: alg},
				})
				require.NoError(t, err)
				const n = 9000
				acqs := make([]*concurry.Acquisition, 0, n)
				for range n {
					a, err := ls.Acquire(ctx, concurry.Amounts{"k": 1})
					require.NoError(t, err)
					acqs = append(acqs, a)
				}
				for _, a := range acqs {
					require.NoError(t, a.Update(concurry.Amounts{"k": 1 << 50}))
					require.NoError(t, a.Release())
				}
				st, err := ls.Stats(ctx)
				require.NoError(t, err)
				l, _ := st.Limit("k")
				t.Logf("%+v", l)
				assert.GreaterOrEqual(t, l.Debt, int64(0))
				assert.Greater(t, l.Debt, int64(1)<<50, "debt is visible")
				assert.Zero(t, l.Available)
				_, err = ls.TryAcquire(ctx, concurry.Amounts{"k": 1})
				assert.ErrorIs(t, err, concurry.ErrWouldBlock, "in debt: nothing granted")
			})
		})
	}
}

// "an unmeetable deadline come[s] as a typed error that still matches the
// sentinel and carries the key that blocked and RetryAfter"; the Refused hook
// gets the same facts, and a deadline exactly at the instant is met.
func TestEdgeDeadlineRefusalFactsEveryAlgorithm(t *testing.T) {
	for alg := concurry.TokenBucket; alg <= concurry.GCRA; alg++ {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				ls, rec := recordedSet(t,
					concurry.CallLimit{Window: time.Second, Capacity: 1000},
					concurry.RateLimit{Key: "tok", Window: time.Second, Capacity: 10, Algorithm: alg},
				)
				_, a := acquireAt(t, ls, concurry.Amounts{"tok": 10})
				mustRelease(t, a, concurry.Amounts{"tok": 10})
				_, err := ls.TryAcquire(ctx, concurry.Amounts{"tok": 5})
				var re *concurry.RefusalError
				require.ErrorAs(t, err, &re)
				ra := re.RetryAfter
				require.Greater(t, ra, time.Duration(0))
				dctx, cancel := context.WithTimeout(ctx, ra-1)
				_, err = ls.Acquire(dctx, concurry.Amounts{"tok": 5})
				cancel()
				require.ErrorIs(t, err, context.DeadlineExceeded)
				var de *concurry.RefusalError
				require.ErrorAs(t, err, &de)
				assert.Equal(t, "tok", de.Key)
				assert.Equal(t, ra, de.RetryAfter, "nothing changed in between")
				rec.mu.Lock()
				last := rec.refused[len(rec.refused)-1]
				rec.mu.Unlock()
				assert.Equal(t, concurry.CauseDeadline, last.Cause)
				assert.Equal(t, "tok", last.Key)
				assert.Equal(t, ra, last.RetryAfter)
				assert.NotContains(t, rec.events, "waited", "failed at once: no wait")
				start := time.Now()
				dctx, cancel = context.WithTimeout(ctx, ra)
				b, err := ls.Acquire(dctx, concurry.Amounts{"tok": 5})
				cancel()
				require.NoError(t, err, "a deadline exactly at the instant is met")
				assert.Equal(t, ra, time.Since(start))
				rec.mu.Lock()
				g := rec.granted[len(rec.granted)-1]
				w := rec.waits[len(rec.waits)-1]
				rec.mu.Unlock()
				assert.Equal(t, ra, g.Waited)
				assert.Equal(t, "tok", g.Key)
				assert.Equal(t, ra, w.Waited)
				require.NoError(t, b.Update(concurry.Amounts{"tok": 5}))
				require.NoError(t, b.Release())
			})
		})
	}
}

// Keyed: hooks receive the identity's set, and a Goexit in Granted leaves
// the identity as if the call returned (its unit given back).
func TestEdgeKeyedGoexitInGranted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exit := true
		h := concurry.Hooks{Granted: func(concurry.GrantInfo) {
			if exit {
				runtime.Goexit()
			}
		}}
		k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: []concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}}, Hooks: &h})
		require.NoError(t, err)
		done := make(chan struct{})
		go func() { defer close(done); _, _ = k.Acquire(context.Background(), "alice", nil) }()
		<-done
		exit = false
		a, err := k.TryAcquire(context.Background(), "alice", nil)
		require.NoError(t, err, "the exited goroutine's unit came back")
		require.NoError(t, a.Release())
	})
}

// "at no cost when nobody listens": a pool with nil hooks allocates no more
// than one without hooks.
func TestEdgePoolNilHooksAllocNothing(t *testing.T) {
	mk := func() *concurry.LimitSet {
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.CallLimit{Window: time.Second, Capacity: 1 << 40},
			concurry.RateLimit{Key: "tok", Window: time.Second, Capacity: 1 << 40},
		})
		require.NoError(t, err)
		return ls
	}
	plain, err := concurry.NewLimitPool([]*concurry.LimitSet{mk(), mk()})
	require.NoError(t, err)
	hooked, err := concurry.NewLimitPool([]*concurry.LimitSet{mk(), mk()}, concurry.WithHooks(concurry.Hooks{}))
	require.NoError(t, err)
	req := concurry.Amounts{"tok": 5}
	sameAllocsWithNilHooks(t, plain, hooked, req, req)
}

// Limits of the contract: at most MaxSpecs (64) limits per set, on every
// backend; the 64th limit works (its usage, refund and Settled hook), the
// 65th is ErrInvalidLimit.
func TestEdgeSixtyFourLimitsMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var limits []concurry.Limit
		for i := range 64 {
			limits = append(limits, concurry.RateLimit{Key: "k" + string(rune('A'+i%26)) + string(rune('a'+i/26)), Window: time.Second, Capacity: 100})
		}
		ls, rec := recordedSet(t, limits...)
		last := limits[63].(concurry.RateLimit).Key
		mustRelease(t, mustTry(t, ls, concurry.Amounts{last: 50}), concurry.Amounts{last: 10})
		require.Len(t, rec.settled, 1)
		assert.Equal(t, concurry.SettleInfo{Set: ls, Key: last, Refunded: 40}, rec.settled[0])
		st, err := ls.Stats(context.Background())
		require.NoError(t, err)
		l, _ := st.Limit(last)
		assert.Equal(t, int64(90), l.Available)
		_, err = concurry.NewLimitSet(append(limits, concurry.ResourceLimit{Key: "one-more", Capacity: 1}))
		assert.ErrorIs(t, err, concurry.ErrInvalidLimit)
	})
}

// LeakyBucket: "a blocking Acquire waits for room and returns at the
// request's departure" — the wait hooks report that wait, with the key and
// the exact duration; RetryAfter of the TryAcquire refused one nanosecond
// before the departure is that nanosecond.
func TestEdgeLeakyBucketWaitHooksExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		ls, rec := recordedSet(t, concurry.RateLimit{Key: "q", Window: 10 * time.Second, Capacity: 10, Algorithm: concurry.LeakyBucket})
		_, a := acquireAt(t, ls, concurry.Amounts{"q": 1})
		mustRelease(t, a, concurry.Amounts{"q": 1})
		waited, b := acquireAt(t, ls, concurry.Amounts{"q": 2}) // departs at +1s
		assert.Equal(t, time.Second, waited)
		mustRelease(t, b, concurry.Amounts{"q": 2})
		time.Sleep(2*time.Second - 1) // next departure at +3s: one ns before
		_, err := ls.TryAcquire(ctx, concurry.Amounts{"q": 1})
		var re *concurry.RefusalError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, time.Duration(1), re.RetryAfter)
		time.Sleep(time.Nanosecond)
		mustRelease(t, mustTry(t, ls, concurry.Amounts{"q": 1}), concurry.Amounts{"q": 1}) // at the instant
		rec.mu.Lock()
		defer rec.mu.Unlock()
		assert.Equal(t, []string{"granted", "wait:q", "waited", "granted", "refused:would_block", "granted"}, rec.events)
		if len(rec.waits) == 1 {
			assert.Equal(t, time.Second, rec.waits[0].Waited)
			assert.Equal(t, "q", rec.waits[0].Key)
		}
		assert.Equal(t, time.Second, rec.granted[1].Waited)
		assert.Equal(t, time.Duration(1), rec.refused[0].RetryAfter)
		st, _ := ls.Stats(ctx)
		q, _ := st.Limit("q")
		assert.Equal(t, time.Second, q.Waited)
		assert.Equal(t, int64(2), q.Blocked)
	})
}

// FeedbackInfo.Remaining: "a lowering: what was left, as the upstream
// reported it, within ±MaxCapacity (the range Lower takes)". An upstream
// reporting more than 2^50 left.
func TestEdgeFeedbackRemainingAsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls, rec := recordedSet(t, concurry.RateLimit{Key: "tok", Window: time.Minute, Capacity: 1000})
		require.NoError(t, ls.Lower(context.Background(), "tok", 1<<60, time.Now()))
		require.NoError(t, ls.Lower(context.Background(), "tok", 300, time.Now()))
		rec.mu.Lock()
		defer rec.mu.Unlock()
		require.Len(t, rec.feedback, 2)
		assert.Equal(t, int64(concurry.MaxCapacity), rec.feedback[0].Remaining)
		assert.Equal(t, int64(300), rec.feedback[1].Remaining)
	})
}

// Refused "is called when an Acquire or TryAcquire fails: ... or the request
// was invalid"; KeyedOptions.Hooks are called as WithHooks does. An identity
// too long for a set name is refused with an error for that request alone,
// and the Refused hook hears of it; the caller's other holdings stay.
func TestEdgeKeyedTooLongIdentityRefusedHook(t *testing.T) {
	rec := &recorder{}
	h := rec.hooks()
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Name: "api", Limits: []concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}}, Hooks: &h})
	require.NoError(t, err)
	ctx := context.Background()
	held, err := k.TryAcquire(ctx, "alice", nil)
	require.NoError(t, err)
	id := strings.Repeat("x", concurry.MaxNameLen-len("api/")+1)
	_, err = k.TryAcquire(ctx, id, nil)
	require.ErrorIs(t, err, concurry.ErrInvalidRequest)
	ok, err := k.TryAcquire(ctx, id[1:], nil)
	require.NoError(t, err, "at the limit")
	require.NoError(t, ok.Release())
	_, err = k.TryAcquire(ctx, "alice", nil)
	require.ErrorIs(t, err, concurry.ErrWouldBlock, "alice's holding kept")
	require.NoError(t, held.Release())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, []string{"granted", "refused:invalid", "granted", "refused:would_block"}, rec.events)
}

// A pool's own Granted / WaitDone hook that calls runtime.Goexit: the
// acquisition (made by one of its sets) is released, nothing leaks.
func TestEdgePoolGoexitInOwnHooks(t *testing.T) {
	for _, hook := range []string{"Granted", "WaitDone"} {
		t.Run(hook, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				exit := false
				h := backendtest.HookCalling(hook, func() {
					if exit {
						runtime.Goexit()
					}
				})
				mk := func() *concurry.LimitSet {
					ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}})
					require.NoError(t, err)
					return ls
				}
				s1, s2 := mk(), mk()
				pool, err := concurry.NewLimitPool([]*concurry.LimitSet{s1, s2}, concurry.WithHooks(h))
				require.NoError(t, err)
				ctx := context.Background()
				a1, err := pool.TryAcquire(ctx, nil)
				require.NoError(t, err)
				a2, err := pool.TryAcquire(ctx, nil)
				require.NoError(t, err)
				exit = true
				done := make(chan struct{})
				go func() { defer close(done); _, _ = pool.Acquire(ctx, nil); t.Error("returned after Goexit") }()
				synctest.Wait()
				require.NoError(t, a1.Release())
				<-done
				exit = false
				synctest.Wait()
				for _, s := range []*concurry.LimitSet{s1, s2} {
					st, err := s.Stats(ctx)
					require.NoError(t, err)
					want := int64(0) // only a2 holds
					if s == a2.Set() {
						want = 1
					}
					assert.Equal(t, want, st.Limits[0].InUse, "set %p", s)
				}
				require.NoError(t, a2.Release())
				b, err := pool.TryAcquire(ctx, nil)
				require.NoError(t, err)
				require.NoError(t, b.Release())
			})
		})
	}
}

// Hooks doc: "For an acquisition through a LimitPool, the pool's Granted,
// Refused, WaitStart and WaitDone hooks are called as well as the granting
// set's; Settled, Feedback and LeaseLost come from the sets' hooks only."
// The settle of a pool's acquisition reaches the set's Settled hook, not the
// pool's.
func TestEdgePoolSettledHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		mk := func() *concurry.LimitSet {
			ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "tok", Window: time.Minute, Capacity: 100}})
			require.NoError(t, err)
			return ls
		}
		pool, err := concurry.NewLimitPool([]*concurry.LimitSet{mk(), mk()}, concurry.WithHooks(rec.hooks()))
		// the sets have no hooks: only the pool's Granted is heard
		require.NoError(t, err)
		mustRelease(t, mustTry(t, pool, concurry.Amounts{"tok": 50}), concurry.Amounts{"tok": 10})
		rec.mu.Lock()
		defer rec.mu.Unlock()
		assert.Equal(t, []string{"granted"}, rec.events)
	})
}
