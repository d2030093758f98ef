package concurry_test

// Edge cases of keyed limits, upstream feedback and hooks (panics, runtime.Goexit), in memory and on unixsock.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
	"github.com/concurry/concurry/backend/unixsock"
	"github.com/concurry/concurry/internal/testutil"
)

// edgeServer starts a unixsock server in this process and returns its path.
func edgeServer(t *testing.T) string {
	t.Helper()
	srv, err := unixsock.Listen(testutil.SocketPath(t), unixsock.ServerOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv.Path()
}

func edgeClient(t *testing.T, path string) *unixsock.Client {
	t.Helper()
	c, err := unixsock.Dial(path, unixsock.Options{DisableAutoHost: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// goexitSwitch is a hook body that ends its goroutine with runtime.Goexit
// while the switch is on.
type goexitSwitch struct{ on atomic.Bool }

func (s *goexitSwitch) exit() {
	if s.on.Load() {
		runtime.Goexit()
	}
}

// inGoroutine runs f in a goroutine of its own; the channel is closed when
// that goroutine ends, by returning or by runtime.Goexit.
func inGoroutine(f func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	return done
}

// spend takes n calls of id from k, one at a time, and releases each.
func spend(t *testing.T, k *concurry.Keyed, id string, n int) {
	t.Helper()
	for range n {
		a, err := k.TryAcquire(bg, id, nil)
		require.NoError(t, err)
		require.NoError(t, a.Release())
	}
}

// identitySet returns the set of id in k, made by a call taken and released.
func identitySet(t *testing.T, k *concurry.Keyed, id string) *concurry.LimitSet {
	t.Helper()
	a, err := k.TryAcquire(bg, id, nil)
	require.NoError(t, err)
	require.NoError(t, a.Release())
	return a.Set()
}

// --- Keyed: forgotten only when idle AND full ---------------------------------

// DESIGN "Keyed limits": "forgotten when idle and full again"; Keyed doc:
// "forgetting never resets a budget early". For every algorithm, an identity
// that spent its whole budget at t0 is kept until the exact instant it is full
// again (t0+Window here: the synctest epoch is aligned to every window), and
// forgotten at that instant.
func TestEdgeKeyedForgottenExactlyWhenFullEveryAlgorithm(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.LeakyBucket, concurry.SlidingWindow, concurry.FixedWindow, concurry.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: []concurry.Limit{
					concurry.RateLimit{Key: "r", Window: time.Second, Capacity: 2, Algorithm: alg},
				}})
				require.NoError(t, err)
				defer k.Close()
				a, err := k.TryAcquire(ctx, "alice", concurry.Amounts{"r": 2})
				require.NoError(t, err)
				mustRelease(t, a, concurry.Amounts{"r": 2})
				time.Sleep(time.Second - time.Nanosecond)
				assert.Equal(t, 0, k.Sweep(ctx), "1ns before full again")
				_, err = k.TryAcquire(ctx, "alice", concurry.Amounts{"r": 2})
				require.ErrorIs(t, err, concurry.ErrWouldBlock, "still spent 1ns before the refill")
				time.Sleep(time.Nanosecond)
				assert.Equal(t, 1, k.Sweep(ctx), "full again: forgotten")
				a, err = k.TryAcquire(ctx, "alice", concurry.Amounts{"r": 2})
				require.NoError(t, err, "comes back with exactly its refilled budget")
				mustRelease(t, a, concurry.Amounts{"r": 2})
			})
		})
	}
}

// Keyed doc: "only sets ... whose every limit is full again are forgotten, so
// forgetting never resets a budget early". A pause in force is state a fresh
// set lacks: a paused but full identity must not be forgotten before the
// pause ends.
func TestEdgeKeyedPausedIdentityNotForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: perSecond(5)})
		require.NoError(t, err)
		defer k.Close()
		set := identitySet(t, k, "alice")
		until := time.Now().Add(10 * time.Second)
		require.NoError(t, set.Pause(ctx, "", until))
		time.Sleep(2 * time.Second) // the call limit is full again
		assert.Equal(t, 0, k.Sweep(ctx), "paused: not as a fresh set would be")
		_, err = k.TryAcquire(ctx, "alice", nil)
		var r *concurry.RefusalError
		require.ErrorAs(t, err, &r)
		assert.Equal(t, 8*time.Second, r.RetryAfter)
	})
}

// An identity that comes back after a partial refill has exactly the budget
// it refilled, not more, however many identities pass meanwhile (TokenBucket
// refills continuously: 10 per 10s).
func TestEdgeKeyedPartialRefillSurvivesChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: []concurry.Limit{
			concurry.RateLimit{Key: "r", Window: 10 * time.Second, Capacity: 10},
		}})
		require.NoError(t, err)
		defer k.Close()
		a, err := k.TryAcquire(ctx, "alice", concurry.Amounts{"r": 10})
		require.NoError(t, err)
		mustRelease(t, a, concurry.Amounts{"r": 10})
		for i := range 3000 {
			if i%1000 == 0 {
				time.Sleep(2 * time.Second)
			}
			b, err := k.TryAcquire(ctx, fmt.Sprint("x", i), concurry.Amounts{"r": 1})
			require.NoError(t, err)
			mustRelease(t, b, concurry.Amounts{"r": 1})
		}
		k.Sweep(ctx)
		// 6s later: exactly 6 refilled.
		st, err := k.Stats(ctx, "alice")
		require.NoError(t, err)
		assert.Equal(t, int64(6), st.Limits[0].Available)
		_, err = k.TryAcquire(ctx, "alice", concurry.Amounts{"r": 7})
		require.ErrorIs(t, err, concurry.ErrWouldBlock)
		a, err = k.TryAcquire(ctx, "alice", concurry.Amounts{"r": 6})
		require.NoError(t, err)
		mustRelease(t, a, concurry.Amounts{"r": 6})
	})
}

// Tiers: LimitsFor is called once per identity while its set lives; Stats and
// Limits of each identity follow its own tier.
func TestEdgeKeyedTiersCalledOncePerLife(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var mu sync.Mutex
		calls := map[string]int{}
		k, err := concurry.NewKeyed(concurry.KeyedOptions{LimitsFor: func(id string) ([]concurry.Limit, error) {
			mu.Lock()
			calls[id]++
			mu.Unlock()
			if id == "paid" {
				return perSecond(3), nil
			}
			return perSecond(1), nil
		}})
		require.NoError(t, err)
		defer k.Close()
		spend(t, k, "paid", 3)
		_, err = k.TryAcquire(ctx, "paid", nil)
		require.ErrorIs(t, err, concurry.ErrWouldBlock)
		mu.Lock()
		assert.Equal(t, 1, calls["paid"], "once while the set lives")
		mu.Unlock()
		st, err := k.Stats(ctx, "paid")
		require.NoError(t, err)
		assert.Equal(t, int64(3), st.Limits[0].Capacity)
		assert.Equal(t, int64(0), st.Limits[0].Available)
		st, err = k.Stats(ctx, "free")
		require.NoError(t, err)
		assert.Equal(t, int64(1), st.Limits[0].Capacity)
		time.Sleep(time.Second)
		assert.Equal(t, 1, k.Sweep(ctx))
		a, err := k.TryAcquire(ctx, "paid", nil)
		require.NoError(t, err)
		require.NoError(t, a.Release())
		mu.Lock()
		assert.Equal(t, 2, calls["paid"], "again after it was forgotten")
		mu.Unlock()
	})
}

// --- Keyed on a shared backend ------------------------------------------------

// DESIGN "Keyed limits": "the set of an identity is made on first use, shared
// across processes/hosts on the shared backends"; Keyed.Stats: "Available,
// InUse and Debt are the identity's own". Two Keyeds (two clients, as two
// processes would be) on one server: what one spent, the other sees, in
// grants and in Stats.
func TestEdgeKeyedSharedStatsOfIdentityUsedElsewhere(t *testing.T) {
	path := edgeServer(t)
	ctx := context.Background()
	mk := func() *concurry.Keyed {
		k, err := concurry.NewKeyed(concurry.KeyedOptions{Backend: edgeClient(t, path), Name: "tenants",
			Limits: []concurry.Limit{concurry.CallLimit{Window: 1000 * time.Hour, Capacity: 3}}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = k.Close() })
		return k
	}
	k1, k2 := mk(), mk()
	spend(t, k1, "alice", 3)
	_, err := k2.TryAcquire(ctx, "alice", nil)
	require.ErrorIs(t, err, concurry.ErrWouldBlock, "the budget is shared")
	st, err := k2.Stats(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, int64(0), st.Limits[0].Available, "k2 uses alice: Stats must show the shared state")

	k3 := mk()
	st, err = k3.Stats(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, int64(0), st.Limits[0].Available, "a process that has not used alice yet must not report a full budget the server says is spent")
}

// The same after the local handle was forgotten by a Sweep: the server keeps
// the spent budget, and Stats of the identity must say so.
func TestEdgeKeyedSharedStatsAfterSweep(t *testing.T) {
	path := edgeServer(t)
	ctx := context.Background()
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Backend: edgeClient(t, path), Name: "tenants",
		Limits: []concurry.Limit{concurry.CallLimit{Window: 1000 * time.Hour, Capacity: 2}}})
	require.NoError(t, err)
	defer k.Close()
	spend(t, k, "bob", 2)
	k.Sweep(ctx)
	_, err = k.TryAcquire(ctx, "bob", nil)
	require.ErrorIs(t, err, concurry.ErrWouldBlock, "no reset by eviction")
	k.Sweep(ctx)
	st, err := k.Stats(ctx, "bob")
	require.NoError(t, err)
	assert.Equal(t, int64(0), st.Limits[0].Available, "Stats after the handle was forgotten")
}

// Tiers shared across processes: two processes giving one identity two
// different tiers get ErrLimitMismatch, never a silent merge.
func TestEdgeKeyedSharedTierMismatch(t *testing.T) {
	path := edgeServer(t)
	ctx := context.Background()
	mk := func(n int64) *concurry.Keyed {
		k, err := concurry.NewKeyed(concurry.KeyedOptions{Backend: edgeClient(t, path), Name: "tiers",
			LimitsFor: func(string) ([]concurry.Limit, error) {
				return []concurry.Limit{concurry.CallLimit{Window: time.Hour, Capacity: n}}, nil
			}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = k.Close() })
		return k
	}
	k1, k2 := mk(1), mk(2)
	a, err := k1.TryAcquire(ctx, "carol", nil)
	require.NoError(t, err)
	require.NoError(t, a.Release())
	_, err = k2.TryAcquire(ctx, "carol", nil)
	require.ErrorIs(t, err, concurry.ErrLimitMismatch)
}

// --- Feedback -------------------------------------------------------------------

// DESIGN "Feedback from upstream" (1): "the set (or one key of it) grants
// nothing until T, and waiters wake at T". Exact instants, LimitSet API.
func TestEdgePauseExactInstants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		ls := newSet(t, concurry.CallLimit{Window: time.Second, Capacity: 10}, concurry.ResourceLimit{Key: "c", Capacity: 5})
		start := time.Now()
		T := start.Add(3 * time.Second)
		require.NoError(t, ls.Pause(ctx, "", T))
		got := make(chan time.Duration, 1)
		go func() {
			a, err := ls.Acquire(ctx, nil)
			if err != nil {
				got <- -1
				return
			}
			got <- time.Since(start)
			_ = a.Release()
		}()
		synctest.Wait()
		time.Sleep(3*time.Second - time.Nanosecond)
		_, err := ls.TryAcquire(ctx, nil)
		var r *concurry.RefusalError
		require.ErrorAs(t, err, &r, "1ns before T")
		select {
		case d := <-got:
			t.Fatalf("waiter returned at %v, before T", d)
		default:
		}
		time.Sleep(time.Nanosecond)
		assert.Equal(t, 3*time.Second, <-got, "the waiter wakes at T")
		require.NoError(t, mustTry(t, ls, nil).Release(), "granted at T")
	})
}

// Pause of one key holds only that key; a shorter later pause does not
// shorten it; a pause already over does nothing; unknown key ErrUnknownKey.
func TestEdgePauseOneKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		ls := newSet(t, concurry.RateLimit{Key: "a", Window: time.Second, Capacity: 10}, concurry.RateLimit{Key: "b", Window: time.Second, Capacity: 10})
		now := time.Now()
		require.NoError(t, ls.Pause(ctx, "a", now.Add(2*time.Second)))
		require.NoError(t, ls.Pause(ctx, "a", now.Add(time.Second)))
		require.NoError(t, ls.Pause(ctx, "b", now.Add(-time.Second)))
		require.ErrorIs(t, ls.Pause(ctx, "zzz", now.Add(time.Second)), concurry.ErrUnknownKey)
		b := mustTry(t, ls, concurry.Amounts{"b": 1})
		mustRelease(t, b, concurry.Amounts{"b": 1})
		_, err := ls.TryAcquire(ctx, concurry.Amounts{"a": 1})
		var r *concurry.RefusalError
		require.ErrorAs(t, err, &r)
		assert.Equal(t, "a", r.Key)
		assert.Equal(t, 2*time.Second, r.RetryAfter, "the shorter pause did not shorten it")
		st, err := ls.Stats(ctx)
		require.NoError(t, err)
		la, _ := st.Limit("a")
		assert.Equal(t, int64(0), la.Available, "nothing available while paused")
	})
}

// DESIGN (2): "the key's available amount is lowered to R (the difference is
// taken now, as debt if needed). Feedback only ever lowers; it never raises a
// key above what its own algorithm allows, and a stale report ... lowers
// nothing wrongly." Every algorithm; out-of-order reports.
func TestEdgeLowerNeverRaisesAndStaleIgnored(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.LeakyBucket, concurry.SlidingWindow, concurry.FixedWindow, concurry.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				ls := newSet(t, concurry.RateLimit{Key: "r", Window: time.Second, Capacity: 10, Algorithm: alg})
				now := time.Now()
				a := mustTry(t, ls, concurry.Amounts{"r": 3})
				mustRelease(t, a, concurry.Amounts{"r": 3})
				require.NoError(t, ls.Lower(ctx, "r", 9, now)) // 7 left: raises nothing
				assert.Equal(t, int64(7), available(t, ls, "r"))
				require.NoError(t, ls.Lower(ctx, "r", 5, now.Add(time.Nanosecond)))
				assert.Equal(t, int64(5), available(t, ls, "r"))
				require.NoError(t, ls.Lower(ctx, "r", 1, now)) // older than the one applied: stale
				assert.Equal(t, int64(5), available(t, ls, "r"), "a stale report lowers nothing")
				require.NoError(t, ls.Lower(ctx, "r", 10, now.Add(2*time.Nanosecond)))
				assert.Equal(t, int64(5), available(t, ls, "r"), "never raises")
				_, err := ls.TryAcquire(ctx, concurry.Amounts{"r": 6})
				require.ErrorIs(t, err, concurry.ErrWouldBlock)
				st, err := ls.Stats(ctx)
				require.NoError(t, err)
				t.Logf("Feedback counter after 4 Lower calls (1 stale): %d", st.Limits[0].Feedback)
			})
		})
	}
}

// Lower below zero goes into debt (TokenBucket), visible in Stats; a waiter
// wakes exactly when the debt and its request are refilled.
func TestEdgeLowerIntoDebtWakesWaiterExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		ls := newSet(t, concurry.RateLimit{Key: "r", Window: time.Second, Capacity: 10})
		start := time.Now()
		require.NoError(t, ls.Lower(ctx, "r", -5, start))
		st, err := ls.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(5), st.Limits[0].Debt)
		assert.Equal(t, int64(0), st.Limits[0].Available)
		got := make(chan time.Duration, 1)
		go func() {
			a, err := ls.Acquire(ctx, concurry.Amounts{"r": 2})
			if err != nil {
				got <- -1
				return
			}
			got <- time.Since(start)
			_ = a.Update(concurry.Amounts{"r": 2})
			_ = a.Release()
		}()
		synctest.Wait()
		time.Sleep(700*time.Millisecond - time.Nanosecond)
		select {
		case d := <-got:
			t.Fatalf("returned at %v", d)
		default:
		}
		time.Sleep(time.Nanosecond)
		assert.Equal(t, 700*time.Millisecond, <-got)
	})
}

// Lower on a key of several windows lowers the shortest one only.
func TestEdgeLowerShortestWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		ls := newSet(t,
			concurry.RateLimit{Key: "tok", Window: 24 * time.Hour, Capacity: 1000},
			concurry.RateLimit{Key: "tok", Window: time.Minute, Capacity: 100})
		require.NoError(t, ls.Lower(ctx, "tok", 40, time.Now()))
		st, err := ls.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(1000), st.Limits[0].Available, "the day window is untouched")
		assert.Equal(t, int64(40), st.Limits[1].Available, "the minute window lowered")
	})
}

// Feedback on a shared set holds for every process sharing it (two clients).
func TestEdgeFeedbackSharedUnixsock(t *testing.T) {
	path := edgeServer(t)
	ctx := context.Background()
	limits := []concurry.Limit{concurry.RateLimit{Key: "r", Window: time.Hour, Capacity: 100}}
	mk := func() *concurry.LimitSet {
		ls, err := concurry.NewLimitSet(limits, concurry.WithName("fb"), concurry.WithBackend(edgeClient(t, path)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = ls.Close() })
		return ls
	}
	s1, s2 := mk(), mk()
	now := time.Now()
	require.NoError(t, s1.Lower(ctx, "r", 30, now))
	assert.Equal(t, int64(30), available(t, s2, "r"))
	require.NoError(t, s2.Lower(ctx, "r", 10, now.Add(-time.Millisecond)), "stale from another process")
	assert.Equal(t, int64(30), available(t, s1, "r"), "a stale report lowers nothing")
	require.NoError(t, s2.Lower(ctx, "r", 50, now.Add(time.Millisecond)))
	assert.Equal(t, int64(30), available(t, s1, "r"), "never raises")
	require.NoError(t, s2.Pause(ctx, "", time.Now().Add(time.Hour)))
	_, err := s1.TryAcquire(ctx, concurry.Amounts{"r": 1})
	var r *concurry.RefusalError
	require.ErrorAs(t, err, &r)
	assert.Greater(t, r.RetryAfter, 59*time.Minute)
}

// --- Hooks: panics and Goexit contained ---------------------------------------

// README/Hooks doc: "a panicking hook is recovered and ignored — the decision
// stands". Every hook panics; the set keeps working and leaks nothing.
func TestEdgeEveryHookPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		boom := func() { panic("boom") }
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.RateLimit{Key: "r", Window: time.Second, Capacity: 2},
			concurry.ResourceLimit{Key: "c", Capacity: 1},
		}, concurry.WithHooks(concurry.Hooks{
			Granted: func(concurry.GrantInfo) { boom() }, Refused: func(concurry.RefusalInfo) { boom() },
			WaitStart: func(concurry.WaitInfo) { boom() }, WaitDone: func(concurry.WaitInfo) { boom() },
			Settled: func(concurry.SettleInfo) { boom() }, Feedback: func(concurry.FeedbackInfo) { boom() },
			LeaseLost: func(concurry.LeaseLostInfo) { boom() },
		}))
		require.NoError(t, err)
		defer ls.Close()
		a, err := ls.Acquire(ctx, concurry.Amounts{"r": 2})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			b, err := ls.Acquire(ctx, concurry.Amounts{"r": 1})
			if err == nil {
				_ = b.Update(concurry.Amounts{"r": 0})
				err = b.Release()
			}
			done <- err
		}()
		synctest.Wait()
		require.NoError(t, a.Update(concurry.Amounts{"r": 1}))
		require.NoError(t, a.Release()) // refund 1: the waiter is granted
		require.NoError(t, <-done)
		require.NoError(t, ls.Lower(ctx, "r", 0, time.Now()))
		require.NoError(t, ls.Pause(ctx, "", time.Now().Add(time.Second)))
		time.Sleep(2 * time.Second)
		c := mustTry(t, ls, concurry.Amounts{"r": 2})
		mustRelease(t, c, concurry.Amounts{"r": 2})
	})
}

// Hooks doc: "a hook that calls runtime.Goexit ends its goroutine with the
// limiter's state consistent". WaitDone runs after a waiting Acquire was
// granted: a goroutine that exits there never sees its acquisition, so the
// resource must come back (as it does for Granted) — through a LimitSet's
// WaitDone hook, and through a LimitPool's own.
func TestEdgeGoexitInWaitDoneReleasesTheGrant(t *testing.T) {
	limiters := map[string]func(t *testing.T, hooks concurry.Hooks) concurry.Limiter{
		"LimitSet": func(t *testing.T, hooks concurry.Hooks) concurry.Limiter {
			ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}}, concurry.WithHooks(hooks))
			require.NoError(t, err)
			t.Cleanup(func() { ls.Close() })
			return ls
		},
		"LimitPool": func(t *testing.T, hooks concurry.Hooks) concurry.Limiter {
			return newPool(t, []*concurry.LimitSet{newSet(t, concurry.ResourceLimit{Key: "c", Capacity: 1})}, concurry.WithHooks(hooks))
		},
	}
	for name, mk := range limiters {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var sw goexitSwitch
				l := mk(t, concurry.Hooks{WaitDone: func(concurry.WaitInfo) { sw.exit() }})
				a := mustTry(t, l, nil)
				sw.on.Store(true)
				done := inGoroutine(func() {
					_, _ = l.Acquire(bg, nil)
					t.Error("Goexit did not end the goroutine")
				})
				synctest.Wait()
				require.NoError(t, a.Release())
				<-done
				sw.on.Store(false)
				b, err := l.TryAcquire(bg, nil)
				require.NoError(t, err, "the exited goroutine's unit must come back")
				require.NoError(t, b.Release())
			})
		})
	}
}

// Keyed: a goroutine that exits in any hook must leave its identity
// forgettable (idle and full), or memory is no longer bounded by the active
// identities. (TestKeyedGoexitInGrantedForgets covers Granted only.)
func TestEdgeKeyedGoexitInOtherHooksForgets(t *testing.T) {
	type hookCase struct {
		hooks   func(exit func()) concurry.Hooks
		run     func(ctx context.Context, k *concurry.Keyed)
		backend backend.Backend // nil: in memory
	}
	cases := map[string]hookCase{
		"Refused": {
			hooks: func(exit func()) concurry.Hooks {
				return concurry.Hooks{Refused: func(concurry.RefusalInfo) { exit() }}
			},
			run: func(ctx context.Context, k *concurry.Keyed) {
				_, _ = k.TryAcquire(ctx, "alice", concurry.Amounts{"r": 11}) // exceeds capacity
			},
		},
		"WaitStart": {
			hooks: func(exit func()) concurry.Hooks { return concurry.Hooks{WaitStart: func(concurry.WaitInfo) { exit() }} },
			run: func(ctx context.Context, k *concurry.Keyed) {
				_, _ = k.Acquire(ctx, "alice", concurry.Amounts{"r": 10}) // waits: 1 was taken
			},
		},
		"WaitDone granted": {
			hooks: func(exit func()) concurry.Hooks { return concurry.Hooks{WaitDone: func(concurry.WaitInfo) { exit() }} },
			run: func(ctx context.Context, k *concurry.Keyed) {
				_, _ = k.Acquire(ctx, "alice", concurry.Amounts{"r": 10}) // granted after 100ms
			},
		},
		"WaitDone cancelled": {
			hooks: func(exit func()) concurry.Hooks { return concurry.Hooks{WaitDone: func(concurry.WaitInfo) { exit() }} },
			run: func(ctx context.Context, k *concurry.Keyed) {
				ctx, cancel := context.WithCancel(ctx)
				time.AfterFunc(50*time.Millisecond, cancel)
				_, _ = k.Acquire(ctx, "alice", concurry.Amounts{"r": 10}) // cancelled while it waits
			},
		},
		"LeaseLost": {
			hooks: func(exit func()) concurry.Hooks {
				return concurry.Hooks{LeaseLost: func(concurry.LeaseLostInfo) { exit() }}
			},
			run: func(ctx context.Context, k *concurry.Keyed) {
				a, err := k.TryAcquire(ctx, "alice", concurry.Amounts{"r": 2})
				if err == nil {
					_ = a.Update(concurry.Amounts{"r": 2})
					_ = a.Release() // the settle says the lease was lost
				}
			},
			backend: settleLosingBackend{},
		},
		"Settled": {
			hooks: func(exit func()) concurry.Hooks { return concurry.Hooks{Settled: func(concurry.SettleInfo) { exit() }} },
			run: func(ctx context.Context, k *concurry.Keyed) {
				a, err := k.TryAcquire(ctx, "alice", concurry.Amounts{"r": 2})
				if err == nil {
					_ = a.Update(concurry.Amounts{"r": 0})
					_ = a.Release()
				}
			},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				var sw goexitSwitch
				h := c.hooks(sw.exit)
				k, err := concurry.NewKeyed(concurry.KeyedOptions{
					Limits:  []concurry.Limit{concurry.RateLimit{Key: "r", Window: time.Second, Capacity: 10}},
					Hooks:   &h,
					Backend: c.backend,
				})
				require.NoError(t, err)
				defer k.Close()
				a, err := k.TryAcquire(ctx, "alice", concurry.Amounts{"r": 1})
				require.NoError(t, err)
				require.NoError(t, a.Update(concurry.Amounts{"r": 1}))
				if err := a.Release(); c.backend == nil || !errors.Is(err, concurry.ErrLeaseLost) {
					require.NoError(t, err)
				}
				sw.on.Store(true)
				<-inGoroutine(func() { c.run(ctx, k) })
				sw.on.Store(false)
				time.Sleep(2 * time.Second) // full again, nothing waits
				assert.Equal(t, 1, k.Sweep(ctx), "alice is idle and full: forgettable")
				assert.Equal(t, 0, k.Len())
			})
		})
	}
}

// settleLosingBackend opens private in-memory sets whose every settle
// reports the holding lost, as a shared backend's does once a lease expired.
type settleLosingBackend struct{}

type settleLosingSet struct{ backend.Set }

func (settleLosingBackend) Open(ctx context.Context, _ string, specs []backend.Spec) (backend.Set, error) {
	s, err := memory.New().Open(ctx, "", specs)
	return settleLosingSet{s}, err
}

func (s settleLosingSet) Settle(ctx context.Context, lease backend.Lease, held, delta []int64, final bool, refunded []int64) error {
	if err := s.Set.Settle(ctx, lease, held, delta, final, refunded); err != nil {
		return err
	}
	return fmt.Errorf("%w: test", backend.ErrLeaseLost)
}

// Hooks doc: "Hooks run ... never under a lock of the limiter or its backend,
// so a hook may call the limiter". Every hook calls Stats, and the Feedback
// hook acquires.
func TestEdgeHooksMayCallTheLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var ls *concurry.LimitSet
		call := func() { _, _ = ls.Stats(ctx) }
		var err error
		ls, err = concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "r", Window: time.Second, Capacity: 2}}, concurry.WithHooks(concurry.Hooks{
			Granted: func(concurry.GrantInfo) { call() }, Refused: func(concurry.RefusalInfo) { call() },
			WaitStart: func(concurry.WaitInfo) { call() }, WaitDone: func(concurry.WaitInfo) { call() },
			Settled: func(concurry.SettleInfo) { call() },
			Feedback: func(concurry.FeedbackInfo) {
				if a, err := ls.TryAcquire(ctx, concurry.Amounts{"r": 1}); err == nil {
					_ = a.Update(concurry.Amounts{"r": 1})
					_ = a.Release()
				}
			},
		}))
		require.NoError(t, err)
		defer ls.Close()
		a := mustTry(t, ls, concurry.Amounts{"r": 2})
		mustRelease(t, a, concurry.Amounts{"r": 1})
		b, err := ls.Acquire(ctx, concurry.Amounts{"r": 2})
		require.NoError(t, err)
		mustRelease(t, b, concurry.Amounts{"r": 2})
		_, err = ls.TryAcquire(ctx, concurry.Amounts{"r": 1})
		require.True(t, errors.Is(err, concurry.ErrWouldBlock))
		require.NoError(t, ls.Lower(ctx, "r", 0, time.Now()))
	})
}

// Keyed hooks see feedback given to an identity's set, with that set.
func TestEdgeKeyedHooksSeeFeedback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var got []concurry.FeedbackInfo
		h := concurry.Hooks{Feedback: func(i concurry.FeedbackInfo) { got = append(got, i) }}
		k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: perSecond(3), Hooks: &h})
		require.NoError(t, err)
		defer k.Close()
		set := identitySet(t, k, "alice")
		until := time.Now().Add(time.Second)
		require.NoError(t, set.Pause(ctx, "", until))
		require.Len(t, got, 1)
		assert.Equal(t, concurry.FeedbackInfo{Set: set, Until: until, Pause: true}, got[0])
	})
}

// On the Unix-socket backend too, a goroutine that exits in WaitStart or
// WaitDone never sees its grant: the server's unit must come back.
func TestEdgeGoexitInWaitHooksUnixsock(t *testing.T) {
	path := edgeServer(t)
	ctx := context.Background()
	for _, which := range []string{"WaitStart", "WaitDone"} {
		t.Run(which, func(t *testing.T) {
			var sw goexitSwitch
			queued := make(chan struct{}, 1)
			hooks := concurry.Hooks{WaitStart: func(concurry.WaitInfo) { signal(queued) }}
			exit := func(concurry.WaitInfo) { sw.exit() }
			if which == "WaitStart" {
				hooks.WaitStart = exit
			} else {
				hooks.WaitDone = exit
			}
			ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}},
				concurry.WithName("goexit-"+which), concurry.WithBackend(edgeClient(t, path)), concurry.WithHooks(hooks))
			require.NoError(t, err)
			defer ls.Close()
			a := mustTry(t, ls, nil)
			sw.on.Store(true)
			done := inGoroutine(func() {
				_, _ = ls.Acquire(ctx, nil)
				t.Error("Goexit did not end the goroutine")
			})
			if which == "WaitStart" {
				<-done // it exits as it starts to wait
				require.NoError(t, a.Release())
			} else {
				<-queued // the waiter is queued in the server: the release grants it
				require.NoError(t, a.Release())
				<-done
			}
			sw.on.Store(false)
			// The exited goroutine's wait or grant ends in the server
			// asynchronously; then this Acquire is granted.
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			b, err := ls.Acquire(wctx, nil)
			require.NoError(t, err, "the exited goroutine's unit must come back")
			require.NoError(t, b.Release())
		})
	}
}

// Hooks doc: "a hook that calls runtime.Goexit ends its goroutine with the
// limiter's state consistent". A LimitPool's Acquire that waits runs its
// sets' waits in goroutines of its own, so a set's hook that exits there must
// not leave the pool's caller blocked forever (a hang deadlocks the bubble),
// nor keep a unit. The pool goes on waiting on its other sets, unless the
// exited goroutine had won the pool's claim (in Granted): then no other set
// may grant, and the pool fails at once.
func TestEdgeGoexitInSetHookUnderPoolWait(t *testing.T) {
	for _, which := range []string{"WaitStart", "Granted"} {
		for _, sets := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/%d sets", which, sets), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var sw goexitSwitch
					hooks := concurry.Hooks{WaitStart: func(concurry.WaitInfo) { sw.exit() }}
					if which == "Granted" {
						hooks = concurry.Hooks{Granted: func(concurry.GrantInfo) { sw.exit() }}
					}
					exiting, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}}, concurry.WithHooks(hooks))
					require.NoError(t, err)
					defer exiting.Close()
					pooled := []*concurry.LimitSet{exiting}
					var other *concurry.LimitSet
					if sets == 2 { // a set without hooks, freed later
						other = newSet(t, concurry.ResourceLimit{Key: "c", Capacity: 1})
						pooled = append(pooled, other)
					}
					pool := newPool(t, pooled)
					var held []*concurry.Acquisition
					for _, ls := range pooled {
						held = append(held, mustTry(t, ls, nil))
					}
					sw.on.Store(true)
					start := time.Now()
					type res struct {
						a   *concurry.Acquisition
						err error
						at  time.Duration
					}
					done := make(chan res, 1)
					go func() {
						b, err := pool.Acquire(context.Background(), nil)
						done <- res{b, err, time.Since(start)}
					}()
					synctest.Wait()
					time.Sleep(time.Second)
					require.NoError(t, held[0].Release()) // the exiting set can grant
					synctest.Wait()
					if other != nil {
						time.Sleep(time.Second)
						require.NoError(t, held[1].Release())
					}
					r := <-done
					switch {
					case which == "WaitStart" && other != nil: // the pool went on waiting on the other set
						require.NoError(t, r.err)
						assert.Equal(t, other, r.a.Set())
						assert.Equal(t, 2*time.Second, r.at)
						require.NoError(t, r.a.Release())
					case which == "WaitStart": // the only set's wait ended as it began
						require.ErrorContains(t, r.err, "runtime.Goexit")
						assert.Zero(t, r.at)
					default: // the exited goroutine won the claim: nobody else may grant
						require.ErrorContains(t, r.err, "runtime.Goexit")
						assert.Equal(t, time.Second, r.at)
					}
					sw.on.Store(false)
					for _, ls := range pooled {
						b, err := ls.TryAcquire(context.Background(), nil)
						require.NoError(t, err, "no unit kept")
						require.NoError(t, b.Release())
					}
				})
			})
		}
	}
}

// Keyed, light path (TryAcquire of no named key from call and resource
// limits): a Goexit in Granted releases and leaves the identity forgettable,
// exactly once.
func TestEdgeKeyedGoexitInGrantedLightPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var sw goexitSwitch
		h := concurry.Hooks{Granted: func(concurry.GrantInfo) { sw.exit() }}
		k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: []concurry.Limit{
			concurry.CallLimit{Window: time.Second, Capacity: 10}, concurry.ResourceLimit{Key: "c", Capacity: 1}}, Hooks: &h})
		require.NoError(t, err)
		defer k.Close()
		sw.on.Store(true)
		<-inGoroutine(func() { _, _ = k.TryAcquire(ctx, "alice", nil) })
		sw.on.Store(false)
		st, err := k.Stats(ctx, "alice")
		require.NoError(t, err)
		c, _ := st.Limit("c")
		assert.Equal(t, int64(0), c.InUse)
		// alice is in use again: never forgotten while held (no double unref)
		a, err := k.TryAcquire(ctx, "alice", nil)
		require.NoError(t, err)
		time.Sleep(2 * time.Second)
		assert.Equal(t, 0, k.Sweep(ctx), "held: not forgotten")
		require.NoError(t, a.Release())
		assert.Equal(t, 1, k.Sweep(ctx))
	})
}

// Keyed.Close: "closes every identity's set (waiters fail with ErrClosed)".
func TestEdgeKeyedCloseFailsWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: []concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}}})
		require.NoError(t, err)
		a, err := k.TryAcquire(ctx, "alice", nil)
		require.NoError(t, err)
		got := make(chan error, 1)
		go func() { _, err := k.Acquire(ctx, "alice", nil); got <- err }()
		synctest.Wait()
		require.NoError(t, k.Close())
		require.ErrorIs(t, <-got, concurry.ErrClosed)
		require.NoError(t, a.Release(), "a granted acquisition can still be released")
	})
}
