package memory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry/algorithms"
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

// grantTimes runs waiters goroutines that Acquire one unit of s in a loop
// until grants units were granted in all, and returns the instants (since
// the start) the Acquire calls returned at, in order.
func grantTimes(t *testing.T, s *Set, waiters, grants int) []time.Duration {
	t.Helper()
	h := s.Handle(nil)
	defer h.Close()
	start := time.Now()
	var mu sync.Mutex
	var got []time.Duration
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			for {
				mu.Lock()
				if len(got)+waiters > grants {
					mu.Unlock()
					return
				}
				mu.Unlock()
				if _, err := h.Acquire(bg, []int64{1}, wait); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, time.Since(start))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	return got
}

// TestLateTimerDoesNotDriftTheSchedule makes every timer of the set fire
// late, as a busy machine does, and checks the exact instants of a saturated
// limit of one unit per millisecond: each grant is dated at the instant it
// became possible, so grant k is due at k ms and returns at k ms plus the
// lateness, whatever the algorithm, with one waiter or many. Dated at the
// timer's firing instant instead, every lateness was lost: grant k came at
// k·(1 ms + lateness).
func TestLateTimerDoesNotDriftTheSchedule(t *testing.T) {
	const late = 300 * time.Microsecond
	kinds := []algorithms.Kind{algorithms.TokenBucket, algorithms.LeakyBucket, algorithms.SlidingWindow, algorithms.FixedWindow, algorithms.GCRA}
	for _, kind := range kinds {
		for _, waiters := range []int{1, 64} {
			t.Run(fmt.Sprintf("%v/%d waiters", kind, waiters), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s := NewSet([]backend.Spec{{Key: "r", Kind: backend.Rate, Algorithm: kind, Window: time.Millisecond, Capacity: 1}})
					s.timerLate = late
					got := grantTimes(t, s, waiters, 200)
					for k, at := range got {
						want := time.Duration(k)*time.Millisecond + late
						if k == 0 {
							want = 0 // the first unit is there at once
						}
						if at != want {
							t.Fatalf("grant %d returned at %v, want %v", k, at, want)
						}
					}
				})
			})
		}
	}
}

// TestVeryLateTimerCatchesUp makes the timer fire 2.5 intervals late: the
// queued waiters whose grants came due meanwhile are all granted when it
// fires, dated at their own instants, so the limit keeps its rate.
func TestVeryLateTimerCatchesUp(t *testing.T) {
	const late = 2500 * time.Microsecond
	synctest.Test(t, func(t *testing.T) {
		s := NewSet([]backend.Spec{{Key: "r", Kind: backend.Rate, Window: time.Millisecond, Capacity: 1}})
		s.timerLate = late
		got := grantTimes(t, s, 64, 300)
		for k, at := range got {
			// Grants 1, 2, 3 come due by the firing for grant 1 (at 3.5 ms);
			// the timer for grant 4 then fires at 6.5 ms, and so on.
			want := time.Duration((k+2)/3*3)*time.Millisecond + 500*time.Microsecond
			if k == 0 {
				want = 0
			}
			if at != want {
				t.Fatalf("grant %d returned at %v, want %v", k, at, want)
			}
		}
	})
}

// TestSettleBeforeALateTimerKeepsTheSchedule charges overage between the
// instant a waiter came due and its late timer: the waiter is granted first,
// dated when it came due, and the overage is charged after it, exactly as
// with an on-time timer. Charging first would move the limit's state past
// the instant the waiter came due and push its grant, and every grant
// behind it, back.
func TestSettleBeforeALateTimerKeepsTheSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One unit per millisecond, burst 1; timers fire 0.5 ms late.
		s := NewSet([]backend.Spec{{Key: "r", Kind: backend.Rate, Window: time.Millisecond, Capacity: 1}})
		s.timerLate = 500 * time.Microsecond
		h := s.Handle(nil)
		defer h.Close()
		start := time.Now()
		if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
		returned := make(chan time.Duration, 2)
		for range 2 {
			go func() {
				_, err := h.Acquire(bg, []int64{1}, wait)
				if err != nil {
					returned <- -1
					return
				}
				returned <- time.Since(start)
			}()
			synctest.Wait()
		}
		time.Sleep(1200 * time.Microsecond) // the first waiter came due at 1 ms
		if err := h.Settle(bg, 0, []int64{1}, []int64{1}, true, nil); err != nil {
			t.Fatal(err)
		}
		// The first waiter is granted by the settle itself (dated 1 ms); the
		// overage then leaves the bucket at 0.2 − 1 at 1.2 ms, so the second
		// comes due at 3 ms and returns 0.5 ms later. Charged first, the
		// overage found a full bucket at 1.2 ms (the refill since 1 ms lost
		// to the cap): the first came due at 2.2 ms, the second at 3.2 ms.
		if got, want := <-returned, 1200*time.Microsecond; got != want {
			t.Fatalf("first waiter returned at %v, want %v", got, want)
		}
		if got, want := <-returned, 3500*time.Microsecond; got != want {
			t.Fatalf("second waiter returned at %v, want %v", got, want)
		}
	})
}
