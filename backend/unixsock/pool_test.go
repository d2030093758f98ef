package unixsock

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
)

// TestPoolAcrossBackendsLoserTakesNothing: a LimitPool over sets of two
// Unix-socket servers, or of memory and a server, waits on both (a holding
// fills each set's one slot); when both holdings are released at once, both
// sets could grant, one does, and the other takes nothing: not even its
// FixedWindow unit, which could not be given back ("a set that loses takes
// nothing"). Before, each server granted, and the loser's unit was spent.
func TestPoolAcrossBackendsLoserTakesNothing(t *testing.T) {
	limits := []concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 100, Algorithm: concurry.FixedWindow},
		concurry.ResourceLimit{Key: "slot", Capacity: 1},
	}
	a := dial(t, startServer(t, ServerOptions{}).Path(), Options{})
	b := dial(t, startServer(t, ServerOptions{}).Path(), Options{})
	for _, pair := range []struct {
		name   string
		first  backend.Backend // nil: memory
		second backend.Backend
	}{{"TwoServers", a, b}, {"MemoryAndServer", nil, b}} {
		t.Run(pair.name, func(t *testing.T) {
			for round := range 10 {
				queued := make(chan struct{}, 2)
				hooks := concurry.Hooks{WaitStart: func(concurry.WaitInfo) { queued <- struct{}{} }}
				open := func(be backend.Backend, k int) *concurry.LimitSet {
					opts := []concurry.Option{concurry.WithName(fmt.Sprintf("%s/%d/%d", t.Name(), round, k)), concurry.WithHooks(hooks)}
					if be != nil {
						opts = append(opts, concurry.WithBackend(be))
					}
					ls, err := concurry.NewLimitSet(limits, opts...)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { ls.Close() })
					return ls
				}
				sets := []*concurry.LimitSet{open(pair.first, 0), open(pair.second, 1)}
				var held []*concurry.Acquisition
				for _, ls := range sets {
					h, err := ls.TryAcquire(context.Background(), nil)
					if err != nil {
						t.Fatal(err)
					}
					held = append(held, h)
				}
				pool, err := concurry.NewLimitPool(sets)
				if err != nil {
					t.Fatal(err)
				}
				got := make(chan error, 1)
				go func() {
					acq, err := pool.Acquire(context.Background(), nil)
					if err == nil {
						err = acq.Release()
					}
					got <- err
				}()
				<-queued
				<-queued
				for _, h := range held {
					if err := h.Release(); err != nil {
						t.Fatal(err)
					}
				}
				if err := <-got; err != nil {
					t.Fatalf("round %d: the pool's Acquire: %v", round, err)
				}
				var calls int64
				for _, ls := range sets {
					st, err := ls.Stats(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					calls += 100 - st.Limits[0].Available
				}
				if calls != 3 {
					t.Fatalf("round %d: %d calls counted over both sets, want 3: two holdings and the pool's one grant", round, calls)
				}
			}
		})
	}
}
