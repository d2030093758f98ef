package httplimit_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
	"github.com/concurry/concurry/httplimit"
)

// losingBackend keeps its sets in memory and, once lost is set, reports
// every holding lost, as a shared backend does after a lease expired: the
// usage reported to it is still charged.
type losingBackend struct {
	lost atomic.Bool
	mem  *memory.Backend
}

func (b *losingBackend) Open(ctx context.Context, _ string, specs []backend.Spec) (backend.Set, error) {
	s, err := b.mem.Open(ctx, "", specs)
	if err != nil {
		return nil, err
	}
	return &losingSet{Set: s, Feedback: s.(backend.Feedback), b: b}, nil
}

type losingSet struct {
	backend.Set
	backend.Feedback
	b *losingBackend
}

var errTestLost = fmt.Errorf("%w: the test lost it", backend.ErrLeaseLost)

func (s *losingSet) CheckLease(backend.Lease) error {
	if s.b.lost.Load() {
		return errTestLost
	}
	return nil
}

// TestTransportGivesBackUnusedTokensOfALostHolding: a response whose
// holding was lost before its body was read (Update says ErrLeaseLost, and
// still records the usage) gives its unused tokens back all the same, so
// that the remaining count of a request sent before it is read as in
// TestTransportReadsRemainingAsOfTheRequest.
func TestTransportGivesBackUnusedTokensOfALostHolding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &losingBackend{mem: memory.New()}
		ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: httplimit.KeyTokens, Window: 10 * time.Second, Capacity: 1000}},
			concurry.WithName("lost"), concurry.WithBackend(be),
			concurry.WithConfig(map[string]any{httplimit.ConfigBaseURL: "http://a.example"}))
		require.NoError(t, err)
		defer ls.Close()
		// the fast request's holding is lost before its body is read
		cost := slowThenFast(t, ls, func() { be.lost.Store(true) }, func() { be.lost.Store(false) })
		assert.Equal(t, 700-cost+(cost-2)-20+(cost-2), available(t, ls, httplimit.KeyTokens),
			"700 left when the slow one was admitted, less the other one sent since and plus what it gave back "+
				"though its holding was lost, less the margin; then 2 used")
	})
}
