package memory

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/concurry/concurry/backend"
)

var (
	bg   = context.Background()
	wait = backend.AcquireOptions{Wait: true}
)

// TestCancelledWaiterIsNotGranted releases a resource after a waiter's ctx
// was cancelled but before the waiter saw it (the set's lock is held across
// both, as a release that wins the race does): the waiter must fail with
// context.Canceled and take nothing, and the waiter behind it is served as
// if it had never been there (go.dev/issue/63615 in x/sync/semaphore).
func TestCancelledWaiterIsNotGranted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSet([]backend.Spec{{Key: "conn", Kind: backend.Resource, Capacity: 2}})
		h := s.Handle(nil)
		defer h.Close()
		if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		first, second := make(chan error, 1), make(chan error, 1)
		go func() {
			_, err := h.Acquire(ctx, []int64{2}, wait)
			first <- err
		}()
		synctest.Wait()
		go func() { // FIFO: queued behind the first although one unit is free
			_, err := h.Acquire(bg, []int64{1}, wait)
			second <- err
		}()
		synctest.Wait()

		s.mu.Lock()
		cancel()
		s.held[0]-- // the release, as settle does it
		s.serve(s.now())
		s.mu.Unlock()

		if err := <-first; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter: %v, want context.Canceled", err)
		}
		if err := <-second; err != nil {
			t.Fatalf("the waiter behind it: %v", err)
		}
		st, _ := h.Stats(bg)
		if st[0].InUse != 1 {
			t.Fatalf("%d units in use, want 1 (the second waiter's)", st[0].InUse)
		}
	})
}
