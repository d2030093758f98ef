package memset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"

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
		s.block[0]-- // the release, as settle does it
		s.serve(now())
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
					s.extra().timerLate = late
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
		s.extra().timerLate = late
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
		s.extra().timerLate = 500 * time.Microsecond
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

// settleAt is a change of a rate limit's usage made at an instant (since the
// start) by a holder other than the waiters: positive is overage, negative a
// refund.
type settleAt struct {
	at    time.Duration
	delta int64
}

// onTimeSchedule returns the instants (since the start) at which a FIFO
// queue of requests for amounts, all made at the start, comes due on a
// fresh limit of spec with the settles applied, as an on-time timer would
// grant them: each no earlier than the one before it, and after every
// settle that came before it.
func onTimeSchedule(spec backend.Spec, start int64, amounts []int64, settles []settleAt) []time.Duration {
	ref := algorithms.New(spec.Algorithm, spec.Window, spec.Capacity)
	from, j := start, 0
	var due []time.Duration
	for _, n := range amounts {
		g := ref.Ready(from, n)
		for ; j < len(settles) && start+int64(settles[j].at) < g; j++ {
			u := start + int64(settles[j].at)
			if d := settles[j].delta; d > 0 {
				ref.Take(u, d)
			} else {
				ref.Refund(u, -d)
			}
			from = max(from, u)
			g = ref.Ready(from, n)
		}
		ref.Take(g, n)
		due = append(due, time.Duration(g-start))
		from = g
	}
	return due
}

// TestLateTimersKeepTheSchedule is a property test of grant dating: random
// limits of every algorithm, a FIFO queue of random requests, settles
// (overage and refunds) by another holder at random instants, and timers
// that all fire the same random lateness late. Request k must return no
// earlier than the instant an on-time timer would have granted it (never
// more than the algorithm allows) and no later than that instant plus the
// lateness (never less: the lateness is not carried into the schedule).
func TestLateTimersKeepTheSchedule(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		kind := rapid.SampledFrom([]algorithms.Kind{algorithms.TokenBucket, algorithms.LeakyBucket,
			algorithms.SlidingWindow, algorithms.FixedWindow, algorithms.GCRA}).Draw(rt, "kind")
		capacity := rapid.Int64Range(1, 4).Draw(rt, "capacity")
		window := rapid.SampledFrom([]time.Duration{time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond}).Draw(rt, "window")
		late := time.Duration(rapid.SampledFrom([]float64{0, 0.3, 1.7, 3}).Draw(rt, "late") * float64(window))
		amounts := rapid.SliceOfN(rapid.Int64Range(1, capacity), 1, 12).Draw(rt, "amounts")
		horizon := int64(2 * len(amounts) * int(window))
		settles := rapid.SliceOfN(rapid.Custom(func(rt *rapid.T) settleAt {
			d := rapid.Int64Range(-2*capacity, 2*capacity).Filter(func(d int64) bool { return d != 0 }).Draw(rt, "delta")
			return settleAt{at: time.Duration(rapid.Int64Range(1, horizon).Draw(rt, "at")), delta: d}
		}), 0, 4).Draw(rt, "settles")
		slices.SortStableFunc(settles, func(a, b settleAt) int { return int(a.at - b.at) })
		spec := backend.Spec{Key: "r", Kind: backend.Rate, Algorithm: kind, Window: window, Capacity: capacity}

		var msg string
		synctest.Test(t, func(t *testing.T) {
			msg = runLateSchedule(t, spec, late, amounts, settles)
		})
		if msg != "" {
			rt.Fatal(msg)
		}
	})
}

// runLateSchedule runs one case of TestLateTimersKeepTheSchedule inside a
// synctest bubble and returns what went wrong, or "".
func runLateSchedule(t *testing.T, spec backend.Spec, late time.Duration, amounts []int64, settles []settleAt) string {
	s := NewSet([]backend.Spec{spec})
	s.extra().timerLate = late
	h := s.Handle(nil)
	defer h.Close()
	start := time.Now()
	returned := make([]time.Duration, len(amounts))
	var wg sync.WaitGroup
	for k, n := range amounts {
		wg.Go(func() {
			if _, err := h.Acquire(bg, []int64{n}, wait); err == nil {
				returned[k] = time.Since(start)
			} else {
				returned[k] = -1
			}
		})
		synctest.Wait() // queued in order
	}
	for _, st := range settles {
		time.Sleep(st.at - time.Since(start))
		_ = h.Settle(bg, 0, nil, []int64{st.delta}, false, nil)
	}
	wg.Wait()
	due := onTimeSchedule(spec, start.UnixNano(), amounts, settles)
	for k := range amounts {
		if returned[k] < due[k] || returned[k] > due[k]+late {
			return fmt.Sprintf("request %d of %v returned at %v; due at %v, lateness %v", k, amounts, returned[k], due[k], late)
		}
	}
	return ""
}

// TestRefundOfAFractionWakesTheHead refunds a unit 1ns after it was taken:
// the bucket had refilled a millionth of it, so the refund gives back no
// whole unit (Refund returns 0) yet fills the bucket. The waiter that needs
// it is granted at once, not when its timer fires a millisecond later.
func TestRefundOfAFractionWakesTheHead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSet([]backend.Spec{{Key: "r", Kind: backend.Rate, Window: time.Millisecond, Capacity: 1}})
		h := s.Handle(nil)
		defer h.Close()
		start := time.Now()
		if _, err := h.Acquire(bg, []int64{1}, backend.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
		returned := make(chan time.Duration, 1)
		go func() {
			_, _ = h.Acquire(bg, []int64{1}, wait)
			returned <- time.Since(start)
		}()
		synctest.Wait()
		time.Sleep(time.Nanosecond)
		refunded := []int64{-1}
		if err := h.Settle(bg, 0, nil, []int64{-1}, false, refunded); err != nil {
			t.Fatal(err)
		}
		if refunded[0] != 0 {
			t.Fatalf("refunded %d whole units, want 0", refunded[0])
		}
		if got := <-returned; got != time.Nanosecond {
			t.Fatalf("waiter returned at %v, want 1ns", got)
		}
	})
}
