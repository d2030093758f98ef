package unixsock

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry/backend"
)

// TestIdleSetKeptUntilFull: a set nobody has open is forgotten only once it
// is as a new one would be, however long after its window that comes: one
// in debt is kept until the debt has refilled, one paused until the pause
// ends. (The server used to forget an idle set after its longest window
// whatever its state, which reset a debt or a pause: an identity of a Keyed
// came back with a full budget.)
func TestIdleSetKeptUntilFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := newRegistry(ServerOptions{IdleCheck: time.Second}.withDefaults())
		defer r.close()
		// A unit back every second: 10 granted and 30 of overage are back at 40s.
		specs := []backend.Spec{{Key: "calls", Kind: backend.Rate, Window: 10 * time.Second, Capacity: 10}}
		h, e, err := r.open("in-debt", specs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Acquire(ctx, []int64{10}, backend.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
		h.Settle(ctx, 0, []int64{10}, []int64{30}, true, nil)
		paused, pe, err := r.open("paused", specs)
		if err != nil {
			t.Fatal(err)
		}
		if err := paused.(backend.Feedback).Pause(ctx, -1, time.Now().Add(time.Hour).UnixNano()); err != nil {
			t.Fatal(err)
		}
		h.Close()
		r.release("in-debt", e)
		paused.Close()
		r.release("paused", pe)
		time.Sleep(39 * time.Second) // well past the window of 10s
		if n := r.len(); n != 2 {
			t.Fatalf("%d sets kept 39s after their last close, want both: one is in debt, one paused", n)
		}
		time.Sleep(2 * time.Second)
		r.mu.Lock()
		_, kept := r.sets["in-debt"]
		r.mu.Unlock()
		if kept {
			t.Fatal("the set whose debt has refilled is still kept")
		}
		time.Sleep(time.Hour - 40*time.Second)
		if n := r.len(); n != 0 {
			t.Fatalf("%d sets kept once the pause ended, want 0", n)
		}
	})
}
