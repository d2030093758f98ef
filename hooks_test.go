package concurry_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
)

// recorder collects what hooks report.
type recorder struct {
	mu       sync.Mutex
	events   []string
	granted  []concurry.GrantInfo
	refused  []concurry.RefusalInfo
	waits    []concurry.WaitInfo
	settled  []concurry.SettleInfo
	lost     []concurry.LeaseLostInfo
	feedback []concurry.FeedbackInfo
}

func (r *recorder) add(e string) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }

func (r *recorder) hooks() concurry.Hooks {
	return concurry.Hooks{
		Granted: func(i concurry.GrantInfo) {
			r.add("granted")
			r.mu.Lock()
			r.granted = append(r.granted, i)
			r.mu.Unlock()
		},
		Refused: func(i concurry.RefusalInfo) {
			r.add("refused:" + i.Cause.String())
			r.mu.Lock()
			r.refused = append(r.refused, i)
			r.mu.Unlock()
		},
		WaitStart: func(i concurry.WaitInfo) { r.add("wait:" + i.Key) },
		WaitDone:  func(i concurry.WaitInfo) { r.add("waited"); r.mu.Lock(); r.waits = append(r.waits, i); r.mu.Unlock() },
		Settled: func(i concurry.SettleInfo) {
			r.add("settled:" + i.Key)
			r.mu.Lock()
			r.settled = append(r.settled, i)
			r.mu.Unlock()
		},
		LeaseLost: func(i concurry.LeaseLostInfo) { r.add("lost"); r.mu.Lock(); r.lost = append(r.lost, i); r.mu.Unlock() },
		Feedback: func(i concurry.FeedbackInfo) {
			r.add("feedback")
			r.mu.Lock()
			r.feedback = append(r.feedback, i)
			r.mu.Unlock()
		},
	}
}

func TestHooksSeeEveryDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		rec := &recorder{}
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.CallLimit{Window: time.Second, Capacity: 10},
			concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: 100},
		}, concurry.WithHooks(rec.hooks()))
		require.NoError(t, err)
		a, err := ls.TryAcquire(ctx, concurry.Amounts{"tokens": 100})
		require.NoError(t, err)
		require.NoError(t, a.Update(concurry.Amounts{"tokens": 60}))
		require.NoError(t, a.Release()) // 40 refunded
		_, err = ls.TryAcquire(ctx, concurry.Amounts{"tokens": 50})
		require.ErrorIs(t, err, concurry.ErrWouldBlock)
		b, err := ls.Acquire(ctx, concurry.Amounts{"tokens": 50}) // waits 100ms for 10 tokens
		require.NoError(t, err)
		require.NoError(t, b.Update(concurry.Amounts{"tokens": 70})) // 20 over
		require.NoError(t, b.Release())
		_, err = ls.TryAcquire(ctx, concurry.Amounts{"tokens": 101})
		require.ErrorIs(t, err, concurry.ErrExceedsCapacity)
		dctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		_, err = ls.Acquire(dctx, concurry.Amounts{"tokens": 100})
		require.ErrorIs(t, err, context.DeadlineExceeded)

		assert.Equal(t, []string{
			"granted", "settled:tokens",
			"refused:would_block",
			"wait:tokens", "waited", "granted", "settled:tokens",
			"refused:invalid",
			"refused:deadline",
		}, rec.events)
		assert.Equal(t, []concurry.SettleInfo{{Set: ls, Key: "tokens", Refunded: 40}, {Set: ls, Key: "tokens", Overage: 20}}, rec.settled)
		assert.Equal(t, "tokens", rec.refused[0].Key)
		assert.Equal(t, 100*time.Millisecond, rec.refused[0].RetryAfter, "40 tokens left: 10 more at 100/s")
		assert.Equal(t, 100*time.Millisecond, rec.waits[0].Waited)
		assert.Equal(t, "tokens", rec.granted[1].Key)
		assert.Equal(t, 100*time.Millisecond, rec.granted[1].Waited)

		st, err := ls.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, concurry.Refusals{WouldBlock: 1, Deadline: 1, Invalid: 1}, st.Refusals)
		tok, _ := st.Limit("tokens")
		assert.Equal(t, int64(2), tok.Blocked, "one refusal and one wait were the tokens' doing")
		assert.Equal(t, 100*time.Millisecond, tok.Waited)
		call, _ := st.Limit(concurry.CallKey)
		assert.Zero(t, call.Blocked)
		assert.Zero(t, call.Waited, "the wait is attributed to the limit that blocked")
	})
}

func TestPanickingHooksAreContained(t *testing.T) {
	ctx := context.Background()
	boom := func() { panic("hook bug") }
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}}, concurry.WithHooks(concurry.Hooks{
		Granted:  func(concurry.GrantInfo) { boom() },
		Refused:  func(concurry.RefusalInfo) { boom() },
		Settled:  func(concurry.SettleInfo) { boom() },
		WaitDone: func(concurry.WaitInfo) { boom() },
	}))
	require.NoError(t, err)
	a, err := ls.TryAcquire(ctx, nil)
	require.NoError(t, err, "the grant stands")
	_, err = ls.TryAcquire(ctx, nil)
	require.ErrorIs(t, err, concurry.ErrWouldBlock)
	require.NoError(t, a.Release())
}

// A goroutine that exits in Granted never sees its acquisition: it is
// released, so nothing leaks.
func TestGoexitInGrantedReleases(t *testing.T) {
	ctx := context.Background()
	exit := true
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}}, concurry.WithHooks(concurry.Hooks{
		Granted: func(concurry.GrantInfo) {
			if exit {
				runtime.Goexit()
			}
		},
	}))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = ls.Acquire(ctx, nil)
		t.Error("Goexit did not end the goroutine")
	}()
	<-done
	exit = false
	a, err := ls.TryAcquire(ctx, nil)
	require.NoError(t, err, "the exited goroutine's unit came back")
	require.NoError(t, a.Release())
}

func TestPoolHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		rec := &recorder{}
		one := func() *concurry.LimitSet {
			ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Second, Capacity: 1}})
			require.NoError(t, err)
			return ls
		}
		pool, err := concurry.NewLimitPool([]*concurry.LimitSet{one(), one()}, concurry.WithHooks(rec.hooks()))
		require.NoError(t, err)
		for range 2 {
			a, err := pool.TryAcquire(ctx, nil)
			require.NoError(t, err)
			require.NoError(t, a.Release())
		}
		_, err = pool.TryAcquire(ctx, nil)
		require.ErrorIs(t, err, concurry.ErrWouldBlock)
		a, err := pool.Acquire(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, a.Release())
		assert.Equal(t, []string{"granted", "granted", "refused:would_block", "wait:", "waited", "granted"}, rec.events)
		assert.Equal(t, time.Second, rec.granted[2].Waited)
	})
}

func TestKeyedHooks(t *testing.T) {
	rec := &recorder{}
	h := rec.hooks()
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: perSecond(1), Hooks: &h})
	require.NoError(t, err)
	a, err := k.TryAcquire(context.Background(), "alice", nil)
	require.NoError(t, err)
	require.NoError(t, a.Release())
	_, err = k.TryAcquire(context.Background(), "alice", nil)
	require.True(t, errors.Is(err, concurry.ErrWouldBlock))
	assert.Equal(t, []string{"granted", "refused:would_block"}, rec.events)
}

// unavailableBackend opens sets that cannot reach their store.
type unavailableBackend struct{}

type unavailableSet struct{ backend.Set }

func (unavailableBackend) Open(ctx context.Context, _ string, specs []backend.Spec) (backend.Set, error) {
	s, err := memory.New().Open(ctx, "", specs)
	return unavailableSet{s}, err
}

func (unavailableSet) Acquire(context.Context, []int64, backend.AcquireOptions) (backend.Lease, error) {
	return 0, fmt.Errorf("%w: connection refused", backend.ErrBackendUnavailable)
}

// Every cause of a refusal is counted once and reported to the hook.
func TestRefusalsByEveryCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		ctx := context.Background()
		ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Hour, Capacity: 1}}, concurry.WithHooks(rec.hooks()))
		require.NoError(t, err)
		a, err := ls.TryAcquire(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, a.Release())
		_, err = ls.TryAcquire(ctx, nil) // would block
		require.ErrorIs(t, err, concurry.ErrWouldBlock)
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = ls.Acquire(dctx, nil) // an hour away: deadline
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		cctx, cancelWait := context.WithCancel(ctx)
		go func() { synctest.Wait(); cancelWait() }()
		_, err = ls.Acquire(cctx, nil) // canceled while waiting
		require.ErrorIs(t, err, context.Canceled)
		_, err = ls.TryAcquire(ctx, concurry.Amounts{"nope": 1}) // invalid
		require.ErrorIs(t, err, concurry.ErrUnknownKey)
		go func() { synctest.Wait(); _ = ls.Close() }()
		_, err = ls.Acquire(ctx, nil) // closed while waiting
		require.ErrorIs(t, err, concurry.ErrClosed)
		st, err := ls.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, concurry.Refusals{WouldBlock: 1, Deadline: 1, Canceled: 1, Closed: 1, Invalid: 1}, st.Refusals)

		down, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Hour, Capacity: 1}},
			concurry.WithBackend(unavailableBackend{}), concurry.WithHooks(rec.hooks()))
		require.NoError(t, err)
		_, err = down.TryAcquire(ctx, nil)
		require.ErrorIs(t, err, concurry.ErrBackendUnavailable)
		st, err = down.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, concurry.Refusals{Unavailable: 1}, st.Refusals)
		assert.Equal(t, []string{"granted", "refused:would_block", "refused:deadline", "wait:call_count", "waited",
			"refused:canceled", "refused:invalid", "wait:call_count", "waited", "refused:closed", "refused:unavailable"}, rec.events)
	})
}
