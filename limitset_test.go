package concurry_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
)

// guideSet is the guide's three-limit set: calls, tokens and connections.
func guideSet(t *testing.T) *concurry.LimitSet {
	return newSet(t,
		concurry.CallLimit{Window: time.Minute, Capacity: 100},
		concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 1000},
		concurry.ResourceLimit{Key: "conns", Capacity: 3},
	)
}

func TestCallAndResourceLimitsAreAddedAutomatically(t *testing.T) {
	ls := guideSet(t)
	a := mustTry(t, ls, concurry.Amounts{"tokens": 10})
	assert.Equal(t, int64(99), available(t, ls, concurry.CallKey))
	assert.Equal(t, int64(990), available(t, ls, "tokens"))
	assert.Equal(t, int64(2), available(t, ls, "conns"))
	assert.Equal(t, int64(1), a.Granted("conns"))
	assert.Equal(t, int64(1), a.Granted(concurry.CallKey))

	b := mustTry(t, ls, concurry.Amounts{"tokens": 5, "conns": 2})
	assert.Equal(t, int64(0), available(t, ls, "conns"))
	assert.Equal(t, int64(98), available(t, ls, concurry.CallKey))

	mustRelease(t, a, concurry.Amounts{"tokens": 10})
	mustRelease(t, b, concurry.Amounts{"tokens": 5})
	assert.Equal(t, int64(3), available(t, ls, "conns"))
}

func TestRateLimitIsTakenOnlyWhenNamed(t *testing.T) {
	ls := newSet(t,
		concurry.RateLimit{Key: "in", Window: time.Minute, Capacity: 100},
		concurry.RateLimit{Key: "out", Window: time.Minute, Capacity: 100},
	)
	a := mustTry(t, ls, concurry.Amounts{"in": 30})
	assert.Equal(t, int64(100), available(t, ls, "out"))
	assert.Equal(t, int64(0), a.Granted("out"))
	err := a.Update(concurry.Amounts{"out": 1})
	require.ErrorIs(t, err, concurry.ErrUnknownKey, "a key of the set that the acquisition does not hold")
	mustRelease(t, a, concurry.Amounts{"in": 30})
}

func TestEmptyRequest(t *testing.T) {
	withRate := newSet(t, concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 10})
	for _, req := range []concurry.Amounts{nil, {}} {
		_, err := withRate.Acquire(bg, req)
		require.ErrorIs(t, err, concurry.ErrInvalidRequest)
		_, err = withRate.TryAcquire(bg, req)
		require.ErrorIs(t, err, concurry.ErrInvalidRequest)
	}

	// Without rate limits there is nothing to guess: a nil request takes one
	// call and one unit of each resource.
	noRate := newSet(t, concurry.CallLimit{Window: time.Minute, Capacity: 10}, concurry.ResourceLimit{Key: "c", Capacity: 1})
	a, err := noRate.Acquire(bg, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(9), available(t, noRate, concurry.CallKey))
	assert.Equal(t, int64(0), available(t, noRate, "c"))
	require.NoError(t, a.Release(), "call and resource limits need no update")
}

func TestInvalidRequestsFailAtOnceAndTakeNothing(t *testing.T) {
	cases := map[string]struct {
		req  concurry.Amounts
		want error
	}{
		"unknown key":       {concurry.Amounts{"tokens": 1, "bogus": 1}, concurry.ErrUnknownKey},
		"zero amount":       {concurry.Amounts{"tokens": 0}, concurry.ErrInvalidRequest},
		"negative amount":   {concurry.Amounts{"tokens": -5}, concurry.ErrInvalidRequest},
		"negative resource": {concurry.Amounts{"tokens": 1, "conns": -1}, concurry.ErrInvalidRequest},
		"over capacity":     {concurry.Amounts{"tokens": 1001}, concurry.ErrExceedsCapacity},
		"resource over cap": {concurry.Amounts{"tokens": 1, "conns": 4}, concurry.ErrExceedsCapacity},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ls := guideSet(t)
			a, err := ls.Acquire(bg, c.req)
			require.ErrorIs(t, err, c.want)
			assert.Nil(t, a)
			a, err = ls.TryAcquire(bg, c.req)
			require.ErrorIs(t, err, c.want)
			assert.Nil(t, a)
			assert.Equal(t, int64(100), available(t, ls, concurry.CallKey))
			assert.Equal(t, int64(1000), available(t, ls, "tokens"))
			assert.Equal(t, int64(3), available(t, ls, "conns"))
		})
	}
}

func TestAllOrNothing(t *testing.T) {
	ls := guideSet(t)
	hold := mustTry(t, ls, concurry.Amounts{"tokens": 1, "conns": 3})
	// tokens and calls are there, conns are not: nothing may be taken.
	a, err := ls.TryAcquire(bg, concurry.Amounts{"tokens": 500})
	require.ErrorIs(t, err, concurry.ErrWouldBlock)
	assert.Nil(t, a, "a failed TryAcquire returns no acquisition")
	assert.Equal(t, int64(999), available(t, ls, "tokens"))
	assert.Equal(t, int64(99), available(t, ls, concurry.CallKey))
	mustRelease(t, hold, concurry.Amounts{"tokens": 1})

	// And the other way round: conns free, tokens short.
	big := mustTry(t, ls, concurry.Amounts{"tokens": 999})
	require.NoError(t, big.Update(concurry.Amounts{"tokens": 999}))
	_, err = ls.TryAcquire(bg, concurry.Amounts{"tokens": 2})
	require.ErrorIs(t, err, concurry.ErrWouldBlock)
	assert.Equal(t, int64(2), available(t, ls, "conns"))
	require.NoError(t, big.Release())
	assert.Equal(t, int64(3), available(t, ls, "conns"))
}

func TestNestedAcquisitionsAreIndependent(t *testing.T) {
	ls := guideSet(t)
	outer := mustTry(t, ls, concurry.Amounts{"conns": 2})
	assert.Equal(t, int64(99), available(t, ls, concurry.CallKey))
	assert.Equal(t, int64(1), available(t, ls, "conns"))

	inner := mustTry(t, ls, concurry.Amounts{"tokens": 100})
	assert.Equal(t, int64(98), available(t, ls, concurry.CallKey), "the inner acquisition takes its own call")
	assert.Equal(t, int64(0), available(t, ls, "conns"), "and its own unit of the resource it does not name")
	mustRelease(t, inner, concurry.Amounts{"tokens": 60})
	assert.Equal(t, int64(1), available(t, ls, "conns"), "releasing the inner one keeps the outer's units")
	assert.Equal(t, int64(940), available(t, ls, "tokens"))

	require.NoError(t, outer.Release())
	assert.Equal(t, int64(3), available(t, ls, "conns"))
}

func TestEmptyLimitSetGrantsEverything(t *testing.T) {
	ls, err := concurry.NewLimitSet(nil, concurry.WithConfig(map[string]any{"env": "dev"}))
	require.NoError(t, err)
	for _, req := range []concurry.Amounts{nil, {"anything": 1 << 40}, {"x": -1}} {
		a, err := ls.Acquire(bg, req)
		require.NoError(t, err)
		require.NoError(t, a.Update(concurry.Amounts{"whatever": 12}))
		assert.Equal(t, "dev", a.Config()["env"])
		require.NoError(t, a.Release())
		require.NoError(t, a.Release())
		a, err = ls.TryAcquire(bg, req)
		require.NoError(t, err)
		require.NoError(t, a.Release())
	}
	called := false
	require.NoError(t, ls.Do(bg, nil, func(ctx context.Context, a *concurry.Acquisition) error { called = true; return nil }))
	assert.True(t, called)
	st, err := ls.Stats(bg)
	require.NoError(t, err)
	assert.Empty(t, st.Limits)
	assert.Empty(t, ls.Keys())
	require.NoError(t, ls.Close())
	_, err = ls.Acquire(bg, nil)
	assert.ErrorIs(t, err, concurry.ErrClosed)
}

func TestDoneContextFailsBeforeTakingAnything(t *testing.T) {
	ls := guideSet(t)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, err := ls.Acquire(ctx, concurry.Amounts{"tokens": 1})
	require.ErrorIs(t, err, context.Canceled)
	_, err = ls.TryAcquire(ctx, concurry.Amounts{"tokens": 1})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, int64(1000), available(t, ls, "tokens"))
}
