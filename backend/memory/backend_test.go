package memory_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
)

var bg = context.Background()

func specs(capacity int64) []backend.Spec {
	return []backend.Spec{
		{Key: "tokens", Kind: backend.Rate, Algorithm: algorithms.TokenBucket, Window: time.Hour, Capacity: capacity},
		{Key: "conns", Kind: backend.Resource, Capacity: 1},
	}
}

func TestNamedSetsAreShared(t *testing.T) {
	b := memory.New()
	s1, err := b.Open(bg, "shared", specs(10))
	require.NoError(t, err)
	s2, err := b.Open(bg, "shared", specs(10))
	require.NoError(t, err)
	_, err = s1.Acquire(bg, []int64{4, 1}, backend.AcquireOptions{})
	require.NoError(t, err)
	st, err := s2.Stats(bg)
	require.NoError(t, err)
	assert.Equal(t, []backend.SpecStats{{Available: 6}, {Available: 0, InUse: 1}}, st)

	_, err = b.Open(bg, "shared", specs(11))
	require.ErrorIs(t, err, backend.ErrLimitMismatch)

	priv, err := b.Open(bg, "", specs(10))
	require.NoError(t, err)
	st, _ = priv.Stats(bg)
	assert.Equal(t, int64(10), st[0].Available, "an unnamed set is private")

	require.NoError(t, s1.Close())
	_, err = b.Open(bg, "shared", specs(11))
	require.ErrorIs(t, err, backend.ErrLimitMismatch, "still held by s2")
	require.NoError(t, s2.Close())
	s3, err := b.Open(bg, "shared", specs(11))
	require.NoError(t, err, "forgotten when its last handle closed")
	require.NoError(t, s3.Close())
}

func TestClaims(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New()
		s1, _ := b.Open(bg, "", specs(10))
		s2, _ := b.Open(bg, "", specs(10))
		for _, s := range []backend.Set{s1, s2} {
			_, err := s.Acquire(bg, []int64{10, 0}, backend.AcquireOptions{})
			require.NoError(t, err)
		}
		claim := new(backend.Claim)
		type res struct {
			i   int
			err error
		}
		out := make(chan res, 2)
		for i, s := range []backend.Set{s1, s2} {
			go func() {
				_, err := s.Acquire(bg, []int64{1, 0}, backend.AcquireOptions{Wait: true, Claim: claim})
				out <- res{i, err}
			}()
		}
		synctest.Wait()
		require.NoError(t, s2.Settle(bg, 0, nil, []int64{-5, 0}, false, nil)) // refund: s2 can grant now
		r := <-out
		assert.Equal(t, 1, r.i)
		require.NoError(t, r.err)
		assert.True(t, claim.Taken())
		require.NoError(t, s1.Settle(bg, 0, nil, []int64{-5, 0}, false, nil))
		r = <-out
		require.ErrorIs(t, r.err, backend.ErrClaimed)
		st, _ := s1.Stats(bg)
		assert.Equal(t, int64(5), st[0].Available, "the loser took nothing")

		_, err := s1.Acquire(bg, []int64{1, 0}, backend.AcquireOptions{Claim: claim})
		require.ErrorIs(t, err, backend.ErrClaimed, "a taken claim fails at once")
	})
}

// TestOpenRefusesLimitsOutsideTheRange checks that the backend itself
// enforces the contract's range, not only the root package: a capacity above
// 2^50 (1<<62 let two requests of 1<<62 both fit: held+n overflowed), a
// window above 366 days, or a name too long fail with ErrInvalidLimit, while
// the extremes of the range are accepted.
func TestOpenRefusesLimitsOutsideTheRange(t *testing.T) {
	b := memory.New()
	bad := map[string]backend.Spec{
		"resource 2^62": {Key: "c", Kind: backend.Resource, Capacity: 1 << 62},
		"rate 2^50+1":   {Key: "r", Kind: backend.Rate, Window: time.Second, Capacity: backend.MaxCapacity + 1},
		"window":        {Key: "r", Kind: backend.Rate, Window: backend.MaxWindow + 1, Capacity: 1},
		"zero capacity": {Key: "c", Kind: backend.Resource},
	}
	for what, sp := range bad {
		for _, name := range []string{"", "named"} {
			_, err := b.Open(bg, name, []backend.Spec{sp})
			require.ErrorIs(t, err, backend.ErrInvalidLimit, "%s, name %q", what, name)
		}
	}
	_, err := b.Open(bg, strings.Repeat("n", backend.MaxNameLen+1), specs(1))
	require.ErrorIs(t, err, backend.ErrInvalidLimit)

	synctest.Test(t, func(t *testing.T) { // no refill during the test
		top := []backend.Spec{
			{Key: "c", Kind: backend.Resource, Capacity: backend.MaxCapacity},
			{Key: "r", Kind: backend.Rate, Window: backend.MaxWindow, Capacity: backend.MaxCapacity},
		}
		s, err := b.Open(bg, strings.Repeat("n", backend.MaxNameLen), top)
		require.NoError(t, err)
		defer s.Close()
		_, err = s.Acquire(bg, []int64{backend.MaxCapacity, backend.MaxCapacity}, backend.AcquireOptions{})
		require.NoError(t, err)
		for _, req := range [][]int64{{1, 0}, {0, 1}} {
			_, err = s.Acquire(bg, req, backend.AcquireOptions{})
			require.ErrorIs(t, err, backend.ErrWouldBlock)
		}
		st, _ := s.Stats(bg)
		assert.Equal(t, []backend.SpecStats{{Available: 0, InUse: backend.MaxCapacity}, {Available: 0}}, st)
	})
}

// TestReleasingMoreThanHeldLeavesNothingNegative returns more units than are
// held (a caller's bug): the count stops at 0 rather than going negative.
func TestReleasingMoreThanHeldLeavesNothingNegative(t *testing.T) {
	s, _ := memory.New().Open(bg, "", specs(10))
	defer s.Close()
	_, err := s.Acquire(bg, []int64{0, 1}, backend.AcquireOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Settle(bg, 0, []int64{0, 3}, nil, true, nil))
	st, _ := s.Stats(bg)
	assert.Equal(t, backend.SpecStats{Available: 1, InUse: 0}, st[1])
}
