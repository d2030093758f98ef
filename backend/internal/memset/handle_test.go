package memset_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/internal/memset"
)

var bg = context.Background()

func specs(capacity int64) []backend.Spec {
	return []backend.Spec{
		{Key: "tokens", Kind: backend.Rate, Algorithm: algorithms.TokenBucket, Window: time.Hour, Capacity: capacity},
		{Key: "conns", Kind: backend.Resource, Capacity: 1},
	}
}

func TestClosingAHandleWakesOnlyItsWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memset.NewSet(specs(10))
		h1, h2 := s.Handle(nil), s.Handle(nil)
		defer h2.Close()
		_, err := h1.Acquire(bg, []int64{0, 1}, backend.AcquireOptions{})
		require.NoError(t, err)
		errs := make(chan error, 2)
		for _, h := range []backend.Set{h1, h2} {
			go func() {
				_, err := h.Acquire(bg, []int64{0, 1}, backend.AcquireOptions{Wait: true})
				errs <- err
			}()
			synctest.Wait()
		}
		require.NoError(t, h1.Close())
		require.ErrorIs(t, <-errs, backend.ErrClosed)
		require.NoError(t, h1.Close(), "idempotent")
		_, err = h1.Acquire(bg, []int64{1, 0}, backend.AcquireOptions{})
		require.ErrorIs(t, err, backend.ErrClosed)
		// h2's waiter is still queued, and is granted when the unit comes back.
		require.NoError(t, h1.Settle(bg, 0, []int64{0, 1}, nil, true, nil), "a closed handle still settles")
		require.NoError(t, <-errs)
	})
}

// TestNewSetPanicsOutsideTheRange checks that NewSet refuses specs outside
// the contract's range: its callers validate them first.
func TestNewSetPanicsOutsideTheRange(t *testing.T) {
	for what, sp := range map[string]backend.Spec{
		"resource 2^62": {Key: "c", Kind: backend.Resource, Capacity: 1 << 62},
		"rate 2^50+1":   {Key: "r", Kind: backend.Rate, Window: time.Second, Capacity: backend.MaxCapacity + 1},
		"window":        {Key: "r", Kind: backend.Rate, Window: backend.MaxWindow + 1, Capacity: 1},
		"zero capacity": {Key: "c", Kind: backend.Resource},
	} {
		assert.Panics(t, func() { memset.NewSet([]backend.Spec{sp}) }, what)
	}
}
