package memset_test

import (
	"context"
	"runtime"
	"testing"
	"testing/synctest"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/internal/memset"
)

// queueWaiters blocks n Acquire calls of the resource of h, which must be
// held, each with a context of its own, and returns their cancel functions
// (in queue order) and the channel their errors arrive on. Run it inside a
// synctest bubble.
func queueWaiters(t *testing.T, h backend.Set, n int) ([]context.CancelFunc, <-chan error) {
	t.Helper()
	errs := make(chan error, n)
	cancels := make([]context.CancelFunc, n)
	for i := range cancels {
		ctx, cancel := context.WithCancel(bg)
		cancels[i] = cancel
		go func() {
			_, err := h.Acquire(ctx, []int64{1}, backend.AcquireOptions{Wait: true})
			errs <- err
		}()
	}
	synctest.Wait()
	return cancels, errs
}

// hold takes the one unit of the resource of h.
func hold(t *testing.T, h backend.Set) {
	t.Helper()
	if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
}

// allocatedDuring returns the bytes the process allocated while f ran.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// resourceSpec is one resource of capacity 1.
var resourceSpec = []backend.Spec{{Key: "conn", Kind: backend.Resource, Capacity: 1}}

// TestCancellingWaitersIsLinear cancels thousands of waiters, from the head
// and from the middle of the queue, and bounds the memory each removal
// allocates: removing a waiter must not copy the queue (which made 32,000
// cancellations allocate 2.2 GB), so the bytes per waiter stay the same
// however long the queue is.
func TestCancellingWaitersIsLinear(t *testing.T) {
	const n = 4096
	const perWaiter = 512 // bytes; copying the queue costs 8·n/2 = 16 KiB per waiter on average
	synctest.Test(t, func(t *testing.T) {
		h := memset.NewSet(resourceSpec).Handle(nil)
		defer h.Close()
		hold(t, h)
		cancels, errs := queueWaiters(t, h, n)
		order := make([]int, 0, n) // every other waiter from the middle, then the rest from the head
		for i := n / 2; i < n; i += 2 {
			order = append(order, i)
		}
		for i := 0; i < n; i++ {
			if i < n/2 || i%2 == 1 {
				order = append(order, i)
			}
		}
		got := allocatedDuring(func() {
			for _, i := range order {
				cancels[i]()
			}
			synctest.Wait()
		})
		for range n {
			if err := <-errs; err != context.Canceled {
				t.Fatalf("waiter: %v, want context.Canceled", err)
			}
		}
		t.Logf("%d bytes per waiter", got/n)
		if got > n*perWaiter {
			t.Fatalf("cancelling %d waiters allocated %d bytes, %d per waiter; want at most %d", n, got, got/n, perWaiter)
		}
	})
}

// TestClosingWaitersIsLinear closes a handle with thousands of waiters and
// bounds the memory it allocates per waiter, as above.
func TestClosingWaitersIsLinear(t *testing.T) {
	const n = 4096
	const perWaiter = 512
	synctest.Test(t, func(t *testing.T) {
		s := memset.NewSet(resourceSpec)
		owner := s.Handle(nil)
		other := s.Handle(nil) // waiters of another handle stay queued around the closed one's
		defer other.Close()
		hold(t, owner)
		_, errs := queueWaiters(t, owner, n)
		_, otherErrs := queueWaiters(t, other, 1)
		got := allocatedDuring(func() {
			owner.Close()
			synctest.Wait()
		})
		for range n {
			if err := <-errs; err != backend.ErrClosed {
				t.Fatalf("waiter: %v, want ErrClosed", err)
			}
		}
		t.Logf("%d bytes per waiter", got/n)
		if got > n*perWaiter {
			t.Fatalf("closing %d waiters allocated %d bytes, %d per waiter; want at most %d", n, got, got/n, perWaiter)
		}
		other.Close()
		if err := <-otherErrs; err != backend.ErrClosed {
			t.Fatalf("the other handle's waiter: %v, want ErrClosed", err)
		}
	})
}
