package memset

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// TestRefusedGrantNowChangesNothing refuses requests at once, on the fast
// path of acquire (grantNow), where the refusing limit is the only one, the
// first or the last of several, of every packed kind and a resource: the
// set's state must be exactly as before each refusal.
func TestRefusedGrantNowChangesNothing(t *testing.T) {
	kinds := []algorithms.Kind{algorithms.TokenBucket, algorithms.LeakyBucket, algorithms.FixedWindow, algorithms.GCRA}
	for _, kind := range kinds {
		rate := backend.Spec{Key: "calls", Kind: backend.Rate, Algorithm: kind, Window: time.Hour, Capacity: 3}
		roomy := backend.Spec{Key: "tokens", Kind: backend.Rate, Algorithm: kind, Window: time.Hour, Capacity: 100}
		conn := backend.Spec{Key: "conn", Kind: backend.Resource, Capacity: 10}
		for name, specs := range map[string][]backend.Spec{
			"alone": {rate},
			"first": {rate, roomy, conn},
			"last":  {roomy, conn, rate},
		} {
			t.Run(kind.String()+"/"+name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s := NewSet(specs)
					h := s.Handle(nil)
					defer h.Close()
					one := slices.Repeat([]int64{1}, len(specs))
					taken := 0 // until the rate limit refuses (a LeakyBucket spaces its grants)
					for ; taken < 3; taken++ {
						if _, err := h.Acquire(bg, one, backend.AcquireOptions{}); err != nil {
							break
						}
					}
					if taken == 0 {
						t.Fatal("a new set refused one of everything")
					}
					time.Sleep(time.Minute) // a fraction of a unit refilled, where the kind refills
					for range 3 {
						before := slices.Clone(s.block)
						if _, err := h.Acquire(bg, one, backend.AcquireOptions{}); err == nil {
							t.Fatal("granted past the capacity")
						}
						if !slices.Equal(s.block, before) {
							t.Fatalf("a refusal changed the state: %v -> %v", before, s.block)
						}
					}
				})
			})
		}
	}
}
