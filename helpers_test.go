package concurry_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concurry/concurry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

func newSet(t *testing.T, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	ls, err := concurry.NewLimitSet(limits)
	require.NoError(t, err)
	t.Cleanup(func() { ls.Close() })
	return ls
}

// available returns the units available now of key's shortest-window limit.
func available(t *testing.T, ls *concurry.LimitSet, key string) int64 {
	t.Helper()
	st, err := ls.Stats(bg)
	require.NoError(t, err)
	l, ok := st.Limit(key)
	require.True(t, ok, "no stats for %q", key)
	return l.Available
}

// mustAcquire acquires req at once and fails the test otherwise.
func mustTry(t *testing.T, l concurry.Limiter, req concurry.Amounts) *concurry.Acquisition {
	t.Helper()
	a, err := l.TryAcquire(bg, req)
	require.NoError(t, err)
	require.NotNil(t, a)
	return a
}

// mustRelease updates every rate key of req with its full amount and releases.
func mustRelease(t *testing.T, a *concurry.Acquisition, usage concurry.Amounts) {
	t.Helper()
	if usage != nil {
		require.NoError(t, a.Update(usage))
	}
	require.NoError(t, a.Release())
}

// acquireAt runs a blocking Acquire and returns how long after start it was
// granted (fake time under synctest).
func acquireAt(t *testing.T, l concurry.Limiter, req concurry.Amounts) (time.Duration, *concurry.Acquisition) {
	t.Helper()
	waited, a, err := acquireWithin(l, 0, req)
	require.NoError(t, err)
	return waited, a
}

// acquireWithin runs Acquire with a deadline timeout from now (none when
// timeout is 0) and returns how long it took, with its outcome.
func acquireWithin(l concurry.Limiter, timeout time.Duration, req concurry.Amounts) (time.Duration, *concurry.Acquisition, error) {
	ctx := bg
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(bg, timeout)
		defer cancel()
	}
	start := time.Now()
	a, err := l.Acquire(ctx, req)
	return time.Since(start), a, err
}
