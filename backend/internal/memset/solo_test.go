package memset

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry/backend"
)

// soloSpecs is a set of one resource limit: the set whose grants and
// releases take no lock while nobody waits (see solo.go).
func soloSpecs(capacity int64) []backend.Spec {
	return []backend.Spec{{Key: "conn", Kind: backend.Resource, Capacity: capacity}}
}

func frozenBit(s *Set) bool { return atomic.LoadInt64(&s.block[0])&frozen != 0 }

// TestSoloNeverHoldsMoreThanItsCapacity runs lock-free TryAcquires,
// blocking Acquires (which freeze the set while they wait) and releases
// from many goroutines: at no moment do the holders hold more than the
// capacity, every blocked Acquire is granted, and the set ends empty and
// thawed, with its lock-free paths on again.
func TestSoloNeverHoldsMoreThanItsCapacity(t *testing.T) {
	const capacity, goroutines, rounds = 3, 16, 400
	s := NewSet(soloSpecs(capacity))
	h := s.Handle(nil)
	var holding, peak atomic.Int64
	hold := func(n int64) {
		now := holding.Add(n)
		for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
		}
		holding.Add(-n)
		if err := h.Release(bg, 0, []int64{n}, nil); err != nil {
			t.Error(err)
		}
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				n := int64(1 + (g+r)%2)
				if (g+r)%3 == 0 {
					if _, err := h.Acquire(bg, []int64{n}, wait); err != nil {
						t.Error(err)
						return
					}
					hold(n)
					continue
				}
				if _, err := h.Acquire(bg, []int64{n}, backend.AcquireOptions{}); err == nil {
					hold(n)
				} else if !errors.Is(err, backend.ErrWouldBlock) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > capacity {
		t.Fatalf("holders held %d units at once; capacity %d", p, capacity)
	}
	if p := peak.Load(); p < 2 {
		t.Fatalf("peak %d: the test never had two holders at once", p)
	}
	st, _ := h.Stats(bg)
	if st[0].InUse != 0 || st[0].Available != capacity {
		t.Fatalf("after every release: %+v; want nothing in use", st[0])
	}
	// One call through the lock thaws a set its waiters left frozen.
	if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = h.Release(bg, 0, []int64{1}, nil)
	if frozenBit(s) {
		t.Fatal("the set is still frozen with nobody waiting")
	}
	if !h.Idle() {
		t.Fatal("the set is not idle after every release")
	}
}

// TestSoloTryAcquireNeverJumpsAWaiter: while a request waits for room, a
// smaller TryAcquire that would fit is refused, lock-free path or not; the
// release grants the waiter, and once it is gone grants go lock-free again.
func TestSoloTryAcquireNeverJumpsAWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSet(soloSpecs(2))
		h := s.Handle(nil)
		if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
		if frozenBit(s) {
			t.Fatal("frozen after a grant at once")
		}
		granted := make(chan error, 1)
		go func() {
			_, err := h.Acquire(bg, []int64{2}, wait)
			granted <- err
		}()
		synctest.Wait()
		if !frozenBit(s) {
			t.Fatal("not frozen while a request waits")
		}
		if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrWouldBlock) {
			t.Fatalf("TryAcquire(1) with a waiter ahead: %v; want ErrWouldBlock", err)
		}
		_ = h.Release(bg, 0, []int64{1}, nil)
		if err := <-granted; err != nil {
			t.Fatal(err)
		}
		_ = h.Release(bg, 0, []int64{2}, nil)
		if _, err := h.Acquire(bg, []int64{2}, backend.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
		if frozenBit(s) {
			t.Fatal("still frozen after the queue emptied and a locked call")
		}
		_ = h.Release(bg, 0, []int64{2}, nil)
		if st, _ := h.Stats(bg); st[0].InUse != 0 {
			t.Fatalf("in use %d after every release", st[0].InUse)
		}
	})
}

// TestSoloCancelledWaiterThaws: a waiter that gives up leaves the set
// frozen only until the next call, which grants lock-free afterwards.
func TestSoloCancelledWaiterThaws(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSet(soloSpecs(1))
		h := s.Handle(nil)
		if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(bg, time.Second)
		defer cancel()
		if _, err := h.Acquire(ctx, []int64{1}, wait); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiter: %v; want its deadline", err)
		}
		if frozenBit(s) {
			t.Fatal("still frozen after the only waiter left")
		}
		_ = h.Release(bg, 0, []int64{1}, nil)
		if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSoloPauseHoldsTheLockFreePath: a pause of a solo set refuses grants,
// the lock-free ones too, until the instant it ends, and from then on they
// go lock-free again.
func TestSoloPauseHoldsTheLockFreePath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSet(soloSpecs(5))
		h := s.Handle(nil)
		until := now() + int64(3*time.Second)
		if err := h.Pause(bg, 0, until); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrWouldBlock) {
			t.Fatalf("TryAcquire during a pause: %v; want ErrWouldBlock", err)
		}
		time.Sleep(3*time.Second - 1)
		if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrWouldBlock) {
			t.Fatalf("TryAcquire 1 ns before the pause ends: %v; want ErrWouldBlock", err)
		}
		time.Sleep(time.Nanosecond)
		if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); err != nil {
			t.Fatalf("TryAcquire as the pause ends: %v", err)
		}
		if frozenBit(s) {
			t.Fatal("still frozen after the pause ended")
		}
	})
}

// TestSoloClosedHandleGrantsNothing: after its handle is closed, a solo set
// with room refuses through it with ErrClosed (its lock-free path checks),
// and a release through it still returns the units.
func TestSoloClosedHandleGrantsNothing(t *testing.T) {
	s := NewSet(soloSpecs(4))
	h, other := s.Handle(nil), s.Handle(nil)
	if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = h.Close()
	if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Acquire through a closed handle: %v; want ErrClosed", err)
	}
	_ = h.Release(bg, 0, []int64{1}, nil)
	if st, _ := other.Stats(bg); st[0].InUse != 0 {
		t.Fatalf("in use %d after the release through the closed handle", st[0].InUse)
	}
	if _, err := other.Acquire(bg, []int64{4}, backend.AcquireOptions{}); err != nil {
		t.Fatalf("another handle: %v", err)
	}
}

// TestSoloReleaseNeverGoesBelowZero: returning more than is held, lock-free
// or frozen, leaves nothing held, never a negative count.
func TestSoloReleaseNeverGoesBelowZero(t *testing.T) {
	s := NewSet(soloSpecs(3))
	h := s.Handle(nil)
	_ = h.Release(bg, 0, []int64{2}, nil)
	if st, _ := h.Stats(bg); st[0].InUse != 0 || st[0].Available != 3 {
		t.Fatalf("lock-free over-release: %+v", st[0])
	}
	atomic.OrInt64(&s.block[0], frozen) // as a waiter would leave it
	_ = h.Release(bg, 0, []int64{2}, nil)
	if st, _ := h.Stats(bg); st[0].InUse != 0 || st[0].Available != 3 {
		t.Fatalf("locked over-release: %+v", st[0])
	}
	if _, err := h.Acquire(bg, []int64{3}, backend.AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
}
