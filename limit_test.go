package concurry_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
)

func TestNewLimitSetRejectsInvalidLimits(t *testing.T) {
	cases := map[string][]concurry.Limit{
		"zero window":          {concurry.RateLimit{Key: "t", Capacity: 1}},
		"negative window":      {concurry.CallLimit{Window: -time.Second, Capacity: 1}},
		"zero capacity":        {concurry.RateLimit{Key: "t", Window: time.Second}},
		"negative capacity":    {concurry.ResourceLimit{Key: "c", Capacity: -1}},
		"empty key":            {concurry.RateLimit{Window: time.Second, Capacity: 1}},
		"empty resource key":   {concurry.ResourceLimit{Capacity: 1}},
		"nil limit":            {nil},
		"unknown algorithm":    {concurry.RateLimit{Key: "t", Window: time.Second, Capacity: 1, Algorithm: 9}},
		"same key and window":  {concurry.RateLimit{Key: "t", Window: time.Second, Capacity: 1}, concurry.RateLimit{Key: "t", Window: time.Second, Capacity: 5}},
		"two call limits same": {concurry.CallLimit{Window: time.Second, Capacity: 1}, concurry.CallLimit{Window: time.Second, Capacity: 2}},
		"resource shares key":  {concurry.RateLimit{Key: "c", Window: time.Second, Capacity: 1}, concurry.ResourceLimit{Key: "c", Capacity: 1}},
		"two resources":        {concurry.ResourceLimit{Key: "c", Capacity: 1}, concurry.ResourceLimit{Key: "c", Capacity: 2}},
		"rate on call key":     {concurry.RateLimit{Key: concurry.CallKey, Window: time.Second, Capacity: 1}},
		"too many limits":      tooMany(),
	}
	for name, limits := range cases {
		t.Run(name, func(t *testing.T) {
			ls, err := concurry.NewLimitSet(limits)
			require.ErrorIs(t, err, concurry.ErrInvalidLimit)
			assert.Nil(t, ls)
		})
	}
}

func TestInvalidLimitErrorNamesTheLimit(t *testing.T) {
	_, err := concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "tokens", Window: time.Minute}})
	require.ErrorIs(t, err, concurry.ErrInvalidLimit)
	assert.Contains(t, err.Error(), "tokens")
}

func TestSeveralWindowsPerKey(t *testing.T) {
	day := concurry.RateLimit{Key: "tokens", Window: 24 * time.Hour, Capacity: 10_000}
	minute := concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 500}
	callsDay := concurry.CallLimit{Window: 24 * time.Hour, Capacity: 100}
	callsMin := concurry.CallLimit{Window: time.Minute, Capacity: 10}
	conns := concurry.ResourceLimit{Key: "conns", Capacity: 2}
	ls := newSet(t, day, callsDay, minute, conns, callsMin)

	l, ok := ls.Limit("tokens")
	require.True(t, ok)
	assert.Equal(t, minute, l, "Limit returns the shortest window")
	l, _ = ls.Limit(concurry.CallKey)
	assert.Equal(t, callsMin, l)
	_, ok = ls.Limit("nope")
	assert.False(t, ok)
	assert.Equal(t, []concurry.Limit{day, callsDay, minute, conns, callsMin}, ls.Limits())
	assert.Equal(t, []string{"tokens", concurry.CallKey, "conns"}, ls.Keys())

	// A request takes from every limit of its key.
	a := mustTry(t, ls, concurry.Amounts{"tokens": 400})
	st, err := ls.Stats(bg)
	require.NoError(t, err)
	assert.Equal(t, int64(9_600), st.Limits[0].Available)
	assert.Equal(t, int64(99), st.Limits[1].Available)
	assert.Equal(t, int64(100), st.Limits[2].Available)
	assert.Equal(t, int64(1), st.Limits[3].Available)
	assert.Equal(t, int64(9), st.Limits[4].Available)
	// The minute window is the binding one.
	_, err = ls.TryAcquire(bg, concurry.Amounts{"tokens": 101})
	require.ErrorIs(t, err, concurry.ErrWouldBlock)
	// More than the smallest capacity can never be granted.
	_, err = ls.TryAcquire(bg, concurry.Amounts{"tokens": 501})
	require.ErrorIs(t, err, concurry.ErrExceedsCapacity)
	mustRelease(t, a, concurry.Amounts{"tokens": 400})
}

func TestAccessorsReturnCopies(t *testing.T) {
	cfg := map[string]any{"region": "us-east-1"}
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Second, Capacity: 1}},
		concurry.WithConfig(cfg), concurry.WithName("n"))
	require.NoError(t, err)
	defer ls.Close()
	cfg["region"] = "changed after NewLimitSet"
	assert.Equal(t, "us-east-1", ls.Config()["region"])
	ls.Config()["region"] = "changed through Config"
	assert.Equal(t, "us-east-1", ls.Config()["region"])
	ls.Limits()[0] = nil
	ls.Keys()[0] = "x"
	assert.NotNil(t, ls.Limits()[0])
	assert.Equal(t, concurry.CallKey, ls.Keys()[0])
	assert.Equal(t, "n", ls.Name())
}

func TestAlgorithmNames(t *testing.T) {
	for a := concurry.TokenBucket; a <= concurry.GCRA; a++ {
		got, err := concurry.ParseAlgorithm(a.String())
		require.NoError(t, err)
		assert.Equal(t, a, got)
	}
	for in, want := range map[string]concurry.Algorithm{
		"token_bucket": concurry.TokenBucket, "leaky-bucket": concurry.LeakyBucket,
		"slidingwindow": concurry.SlidingWindow, "FIXED_WINDOW": concurry.FixedWindow, "gcra": concurry.GCRA,
	} {
		got, err := concurry.ParseAlgorithm(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := concurry.ParseAlgorithm("bogus")
	assert.ErrorIs(t, err, concurry.ErrInvalidLimit)
	var zero concurry.Algorithm
	assert.Equal(t, concurry.TokenBucket, zero)
	assert.True(t, concurry.GCRA.Refunds())
	assert.True(t, concurry.TokenBucket.Refunds())
	assert.False(t, concurry.SlidingWindow.Refunds())
	assert.Equal(t, "RateLimit(tokens: 5 per 1s, GCRA)", concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: 5, Algorithm: concurry.GCRA}.String())
}

func TestSentinelsMatchThroughWrapping(t *testing.T) {
	for _, s := range []error{
		concurry.ErrInvalidLimit, concurry.ErrInvalidRequest, concurry.ErrUnknownKey, concurry.ErrExceedsCapacity,
		concurry.ErrWouldBlock, concurry.ErrUsageNotReported, concurry.ErrReleased, concurry.ErrClosed,
		concurry.ErrLimitMismatch, concurry.ErrBackendUnavailable,
	} {
		wrapped := errors.Join(errors.New("context"), errorsWrap(s))
		assert.ErrorIs(t, wrapped, s)
		assert.Contains(t, s.Error(), "concurry: ")
	}
}

func errorsWrap(err error) error { return &wrapErr{err} }

type wrapErr struct{ err error }

func (w *wrapErr) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapErr) Unwrap() error { return w.err }

func tooMany() []concurry.Limit {
	var ls []concurry.Limit
	for i := range concurry.MaxLimits + 1 {
		ls = append(ls, concurry.ResourceLimit{Key: fmt.Sprint("r", i), Capacity: 1})
	}
	return ls
}

func TestMaxLimitsFit(t *testing.T) {
	limits := tooMany()[:concurry.MaxLimits]
	ls := newSet(t, limits...)
	a := mustTry(t, ls, nil)
	for i := range limits {
		assert.Equal(t, int64(1), a.Granted(fmt.Sprint("r", i)))
	}
	require.NoError(t, a.Release())
	assert.Equal(t, int64(1), available(t, ls, "r63"))
}

// The contract's range is inclusive at both ends and refused just past them.
func TestLimitRangeEnds(t *testing.T) {
	key := func(n int) string { return strings.Repeat("k", n) }
	ok := map[string][]concurry.Limit{
		"capacity 1":            {concurry.RateLimit{Key: "t", Window: time.Second, Capacity: 1}},
		"capacity 2^50":         {concurry.RateLimit{Key: "t", Window: time.Second, Capacity: concurry.MaxCapacity}},
		"resource 2^50":         {concurry.ResourceLimit{Key: "c", Capacity: concurry.MaxCapacity}},
		"window 1ns":            {concurry.CallLimit{Window: time.Nanosecond, Capacity: 1}},
		"window 366 days":       {concurry.CallLimit{Window: concurry.MaxWindow, Capacity: concurry.MaxCapacity}},
		"key of 256 bytes":      {concurry.RateLimit{Key: key(concurry.MaxKeyLen), Window: time.Second, Capacity: 1}},
		"64 limits":             tooMany()[:concurry.MaxLimits],
		"window 366 days, GCRA": {concurry.CallLimit{Window: concurry.MaxWindow, Capacity: 1, Algorithm: concurry.GCRA}},
	}
	for name, limits := range ok {
		if _, err := concurry.NewLimitSet(limits); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string][]concurry.Limit{
		"capacity 2^50+1":           {concurry.RateLimit{Key: "t", Window: time.Second, Capacity: concurry.MaxCapacity + 1}},
		"resource 2^62":             {concurry.ResourceLimit{Key: "c", Capacity: 1 << 62}},
		"capacity MaxInt64":         {concurry.CallLimit{Window: time.Second, Capacity: math.MaxInt64}},
		"window 366 days + 1ns":     {concurry.CallLimit{Window: concurry.MaxWindow + 1, Capacity: 1}},
		"window MaxInt64":           {concurry.RateLimit{Key: "t", Window: math.MaxInt64, Capacity: 1}},
		"key of 257 bytes":          {concurry.RateLimit{Key: key(concurry.MaxKeyLen + 1), Window: time.Second, Capacity: 1}},
		"resource key of 257 bytes": {concurry.ResourceLimit{Key: key(concurry.MaxKeyLen + 1), Capacity: 1}},
	}
	for name, limits := range bad {
		if _, err := concurry.NewLimitSet(limits); !errors.Is(err, concurry.ErrInvalidLimit) {
			t.Errorf("%s: got %v, want ErrInvalidLimit", name, err)
		}
	}
	one := []concurry.Limit{concurry.CallLimit{Window: time.Second, Capacity: 1}}
	if _, err := concurry.NewLimitSet(one, concurry.WithName(key(concurry.MaxNameLen))); err != nil {
		t.Errorf("name of 1,024 bytes: %v", err)
	}
	if _, err := concurry.NewLimitSet(one, concurry.WithName(key(concurry.MaxNameLen+1))); !errors.Is(err, concurry.ErrInvalidLimit) {
		t.Errorf("name of 1,025 bytes: got %v, want ErrInvalidLimit", err)
	}
}

// At the top of the range two requests of the whole capacity cannot both be
// granted, and stats stay exact.
func TestLargestCapacityHeldExactly(t *testing.T) {
	ctx := context.Background()
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: concurry.MaxCapacity}})
	require.NoError(t, err)
	a, err := ls.TryAcquire(ctx, concurry.Amounts{"c": concurry.MaxCapacity})
	require.NoError(t, err)
	_, err = ls.TryAcquire(ctx, concurry.Amounts{"c": concurry.MaxCapacity})
	require.ErrorIs(t, err, concurry.ErrWouldBlock)
	_, err = ls.TryAcquire(ctx, concurry.Amounts{"c": 1})
	require.ErrorIs(t, err, concurry.ErrWouldBlock)
	st, err := ls.Stats(ctx)
	require.NoError(t, err)
	l, _ := st.Limit("c")
	assert.Equal(t, concurry.MaxCapacity, l.InUse)
	assert.Equal(t, int64(0), l.Available)
	require.NoError(t, a.Release())
	_, err = ls.TryAcquire(ctx, concurry.Amounts{"c": concurry.MaxCapacity + 1})
	require.ErrorIs(t, err, concurry.ErrExceedsCapacity)
}

// Counters saturate rather than wrap: 8,200 grants of 2^50 units sum past
// MaxInt64.
func TestCountersSaturate(t *testing.T) {
	ctx := context.Background()
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: concurry.MaxCapacity}})
	require.NoError(t, err)
	for range 8200 {
		a, err := ls.TryAcquire(ctx, concurry.Amounts{"c": concurry.MaxCapacity})
		require.NoError(t, err)
		require.NoError(t, a.Release())
	}
	st, err := ls.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(math.MaxInt64), st.Limits[0].Granted)
	assert.Equal(t, int64(0), st.Limits[0].InUse)
}

func TestUpdateUsageRange(t *testing.T) {
	ctx := context.Background()
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "t", Window: time.Minute, Capacity: 10}})
	require.NoError(t, err)
	a, err := ls.Acquire(ctx, concurry.Amounts{"t": 5})
	require.NoError(t, err)
	require.ErrorIs(t, a.Update(concurry.Amounts{"t": concurry.MaxCapacity + 1}), concurry.ErrInvalidRequest)
	require.ErrorIs(t, a.Update(concurry.Amounts{"t": -1}), concurry.ErrInvalidRequest)
	require.NoError(t, a.Update(concurry.Amounts{"t": 0}))
	require.NoError(t, a.Update(concurry.Amounts{"t": concurry.MaxCapacity}))
	require.NoError(t, a.Release())
}

func TestRefusalErrorMatchesItsSentinel(t *testing.T) {
	would := fmt.Errorf("wrapped: %w", &concurry.RefusalError{Key: "tokens", RetryAfter: 1500 * time.Millisecond})
	assert.ErrorIs(t, would, concurry.ErrWouldBlock)
	assert.NotErrorIs(t, would, context.DeadlineExceeded)
	var r *concurry.RefusalError
	require.ErrorAs(t, would, &r)
	assert.Equal(t, "tokens", r.Key)
	assert.Equal(t, 1500*time.Millisecond, r.RetryAfter)
	assert.Equal(t, `wrapped: concurry: limits not available now: "tokens" (retry after 1.5s)`, would.Error())

	late := error(&concurry.RefusalError{Key: "connections", Deadline: true})
	assert.ErrorIs(t, late, context.DeadlineExceeded)
	assert.NotErrorIs(t, late, concurry.ErrWouldBlock)
	assert.Equal(t, `concurry: limits not available before the context deadline: "connections" (until a release)`, late.Error())
	queued := error(&concurry.RefusalError{Queued: true})
	assert.Equal(t, "concurry: limits not available now: earlier requests are waiting", queued.Error())
}
