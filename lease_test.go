package concurry_test

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
)

// losingBackend opens in-memory sets whose leases can be declared lost, as a
// shared backend's are when a lease expires or a connection drops.
type losingBackend struct{ lost atomic.Bool }

type losingSet struct {
	backend.Set
	b *losingBackend
}

func (b *losingBackend) Open(ctx context.Context, name string, specs []backend.Spec) (backend.Set, error) {
	s, err := memory.New().Open(ctx, "", specs)
	return losingSet{s, b}, err
}

func (s losingSet) CheckLease(backend.Lease) error {
	if s.b.lost.Load() {
		return fmt.Errorf("%w: test", backend.ErrLeaseLost)
	}
	return nil
}

// Update of a lost holding says so, and the usage is charged all the same.
func TestUpdateReportsALostLease(t *testing.T) {
	ctx := context.Background()
	b := &losingBackend{}
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1000}}, concurry.WithBackend(b))
	require.NoError(t, err)
	a, err := ls.Acquire(ctx, concurry.Amounts{"tokens": 100})
	require.NoError(t, err)
	require.NoError(t, a.Update(concurry.Amounts{"tokens": 50}))
	b.lost.Store(true)
	require.ErrorIs(t, a.Update(concurry.Amounts{"tokens": 900}), concurry.ErrLeaseLost)
	require.NoError(t, a.Release())
	st, err := ls.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(100), st.Limits[0].Available, "the 900 reported after the loss are charged")
}

// LeaseLost is called once per acquisition, whether Update, Release or both
// learn of the loss.
func TestLeaseLostHookOnce(t *testing.T) {
	ctx := context.Background()
	b := &losingBackend{}
	var calls atomic.Int64
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1000}},
		concurry.WithBackend(b), concurry.WithHooks(concurry.Hooks{LeaseLost: func(concurry.LeaseLostInfo) { calls.Add(1) }}))
	require.NoError(t, err)
	a, err := ls.Acquire(ctx, concurry.Amounts{"tokens": 100})
	require.NoError(t, err)
	b.lost.Store(true)
	require.ErrorIs(t, a.Update(concurry.Amounts{"tokens": 10}), concurry.ErrLeaseLost)
	require.ErrorIs(t, a.Update(concurry.Amounts{"tokens": 20}), concurry.ErrLeaseLost)
	require.NoError(t, a.Release())
	assert.Equal(t, int64(1), calls.Load())
}

// Lower's remaining is clamped to ±MaxCapacity, so no report can overflow a
// backend's sums.
func TestLowerExtremes(t *testing.T) {
	ctx := context.Background()
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: concurry.MaxCapacity}})
	require.NoError(t, err)
	require.NoError(t, ls.Lower(ctx, "tokens", math.MaxInt64, time.Now()))
	st, err := ls.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, concurry.MaxCapacity, st.Limits[0].Available, "never raises")
	require.NoError(t, ls.Lower(ctx, "tokens", math.MinInt64, time.Now()))
	st, err = ls.Stats(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Limits[0].Available)
	assert.Positive(t, st.Limits[0].Debt)
	assert.LessOrEqual(t, st.Limits[0].Debt, concurry.MaxCapacity)
}
