package memset_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/internal/memset"
)

// timedWait starts a waiting Acquire of amounts and returns once it is
// queued, with the channel on which it reports how long after start it
// returned (negative on an error). Run it inside a synctest bubble.
func timedWait(h backend.Set, start time.Time, amounts ...int64) <-chan time.Duration {
	done := make(chan time.Duration, 1)
	go func() {
		if _, err := h.Acquire(bg, amounts, wait); err != nil {
			done <- -1
			return
		}
		done <- time.Since(start)
	}()
	synctest.Wait()
	return done
}

// notYet fails the test when the wait of ch has returned.
func notYet(t *testing.T, ch <-chan time.Duration) {
	t.Helper()
	synctest.Wait()
	select {
	case at := <-ch:
		t.Fatalf("the waiter returned at %v, too early", at)
	default:
	}
}

// wantAvailable checks the units available of every spec of h.
func wantAvailable(t *testing.T, h backend.Set, want ...int64) {
	t.Helper()
	st, err := h.Stats(bg)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if st[i].Available != w {
			t.Fatalf("spec %d: %d available, want %d (stats %+v)", i, st[i].Available, w, st)
		}
	}
}

// TestPauseWakesWaitersAtItsEnd pauses a full limit of every algorithm for
// 2s: nothing is available or granted from it before then (a refusal says
// to retry at its end; a shorter pause does not shorten it), another spec
// is not held up, and a waiter is granted exactly at its end.
func TestPauseWakesWaitersAtItsEnd(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(kind.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := memset.NewSet([]backend.Spec{rate("r", kind, time.Second, 10), rate("s", algorithms.TokenBucket, time.Hour, 10)}).Handle(nil)
				defer h.Close()
				start := time.Now()
				if err := h.Pause(bg, 0, start.Add(2*time.Second).UnixNano()); err != nil {
					t.Fatal(err)
				}
				wantAvailable(t, h, 0, 10)
				wantRefusal(t, h, []int64{1, 0}, backend.RefusalError{Key: "r", RetryAfter: 2 * time.Second})
				mustTake(t, h, 0, 1)
				w := timedWait(h, start, 1, 1)
				if err := h.Pause(bg, 0, start.Add(time.Second).UnixNano()); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2*time.Second - time.Nanosecond)
				notYet(t, w)
				if at := <-w; at != 2*time.Second {
					t.Fatalf("the waiter returned at %v, want 2s", at)
				}
				wantAvailable(t, h, 9, 8)
			})
		})
	}
}

// TestPauseOfEverySpec pauses the whole set, resources included, and then
// one spec for less: the shorter pause changes nothing.
func TestPauseOfEverySpec(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := memset.NewSet([]backend.Spec{rate("r", algorithms.GCRA, time.Second, 10), {Key: "conn", Kind: backend.Resource, Capacity: 2}}).Handle(nil)
		defer h.Close()
		start := time.Now()
		if err := h.Pause(bg, -1, start.Add(3*time.Second).UnixNano()); err != nil {
			t.Fatal(err)
		}
		if err := h.Pause(bg, 1, start.Add(time.Second).UnixNano()); err != nil {
			t.Fatal(err)
		}
		wantAvailable(t, h, 0, 0)
		wantRefusal(t, h, []int64{0, 1}, backend.RefusalError{Key: "conn", RetryAfter: 3 * time.Second})
		retryAfterExactly(t, h, []int64{1, 0}, "r", 3*time.Second)
		if err := h.Pause(bg, -1, time.Now().UnixNano()); !errors.Is(err, backend.ErrFeedbackStale) { // ends at once: nothing to do
			t.Fatalf("a pause that has already ended: %v, want ErrFeedbackStale", err)
		}
		mustTake(t, h, 1, 1)
	})
}

// TestFeedbackFailsAWaiterWhoseDeadlineItPasses queues a waiter whose
// deadline the limit can meet; a pause or a lowering then puts its grant
// after the deadline, and it fails at once with a deadline refusal.
func TestFeedbackFailsAWaiterWhoseDeadlineItPasses(t *testing.T) {
	feedback := map[string]func(h *memset.Handle, start time.Time) error{
		"Pause": func(h *memset.Handle, start time.Time) error {
			return h.Pause(bg, 0, start.Add(2*time.Second).UnixNano())
		},
		"Lower": func(h *memset.Handle, start time.Time) error { // level −1: 1 is due at 2s
			return h.Lower(bg, 0, -1, start.UnixNano())
		},
	}
	for name, apply := range feedback {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := memset.NewSet([]backend.Spec{rate("r", algorithms.TokenBucket, time.Second, 1)}).Handle(nil)
				defer h.Close()
				start := time.Now()
				mustTake(t, h, 1)
				ctx, cancel := context.WithTimeout(bg, 1500*time.Millisecond)
				defer cancel()
				done := queue(ctx, h, 1) // due at 1s
				if err := apply(h, start); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				select {
				case err := <-done:
					want := backend.RefusalError{Key: "r", RetryAfter: 2 * time.Second, Deadline: true}
					if got := *refusalOf(t, err); got != want {
						t.Fatalf("refused with %+v, want %+v", got, want)
					}
				default:
					t.Fatal("the waiter still waits for a grant after its deadline")
				}
				if d := time.Since(start); d != 0 {
					t.Fatalf("failed after %v, not at once", d)
				}
			})
		})
	}
}

// TestLowerEveryAlgorithm lowers a full limit of 10 to 4 left and checks
// the exact wait for 5 that follows on every algorithm; a stale report and
// one that would raise change nothing.
func TestLowerEveryAlgorithm(t *testing.T) {
	waits := map[algorithms.Kind]time.Duration{
		algorithms.TokenBucket:   100 * time.Millisecond, // 1 unit of refill
		algorithms.GCRA:          100 * time.Millisecond,
		algorithms.LeakyBucket:   600 * time.Millisecond, // 6 units queued
		algorithms.SlidingWindow: time.Second,            // 6 counted now expire
		algorithms.FixedWindow:   time.Second,            // the next window
	}
	for _, kind := range allKinds {
		t.Run(kind.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := memset.NewSet([]backend.Spec{rate("r", kind, time.Second, 10)}).Handle(nil)
				defer h.Close()
				asOf := time.Now().UnixNano()
				lower := func(remaining, asOf int64) {
					t.Helper()
					if err := h.Lower(bg, 0, remaining, asOf); err != nil {
						t.Fatal(err)
					}
				}
				lower(4, asOf)
				wantAvailable(t, h, 4)
				if err := h.Lower(bg, 0, 0, asOf-1); !errors.Is(err, backend.ErrFeedbackStale) { // older than the report applied
					t.Fatalf("a stale report: %v, want ErrFeedbackStale", err)
				}
				lower(8, asOf+1) // would raise
				wantAvailable(t, h, 4)
				retryAfterExactly(t, h, []int64{5}, "r", waits[kind])
			})
		})
	}
}

// TestLowerIntoDebt lowers a TokenBucket and a GCRA below zero: the debt
// shows in Stats, and a waiter already queued is granted exactly when the
// debt is refilled, not when its timer was first set.
func TestLowerIntoDebt(t *testing.T) {
	for _, kind := range []algorithms.Kind{algorithms.TokenBucket, algorithms.GCRA} {
		t.Run(kind.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := memset.NewSet([]backend.Spec{rate("r", kind, time.Second, 10)}).Handle(nil)
				defer h.Close()
				start := time.Now()
				mustTake(t, h, 10)
				w := timedWait(h, start, 1) // due at 100ms
				if err := h.Lower(bg, 0, -5, start.UnixNano()); err != nil {
					t.Fatal(err)
				}
				st, _ := h.Stats(bg)
				if st[0] != (backend.SpecStats{Debt: 5}) {
					t.Fatalf("stats %+v, want a debt of 5", st[0])
				}
				time.Sleep(600*time.Millisecond - time.Nanosecond)
				notYet(t, w)
				if at := <-w; at != 600*time.Millisecond {
					t.Fatalf("the waiter returned at %v, want 600ms", at)
				}
			})
		})
	}
}

// TestFeedbackErrors checks the feedback a set refuses: a spec it does not
// have, a lowering of a resource, and any feedback after Close.
func TestFeedbackErrors(t *testing.T) {
	h := memset.NewSet([]backend.Spec{rate("r", algorithms.TokenBucket, time.Second, 10), {Key: "conn", Kind: backend.Resource, Capacity: 1}}).Handle(nil)
	until := time.Now().Add(time.Hour).UnixNano()
	for name, err := range map[string]error{
		"Pause(2)":  h.Pause(bg, 2, until),
		"Lower(2)":  h.Lower(bg, 2, 0, 0),
		"Lower(-1)": h.Lower(bg, -1, 0, 0),
		"Lower(1)":  h.Lower(bg, 1, 0, 0),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	h.Close()
	if err := h.Pause(bg, 0, until); err != backend.ErrClosed {
		t.Errorf("Pause after Close: %v, want ErrClosed", err)
	}
	if err := h.Lower(bg, 0, 0, 0); err != backend.ErrClosed {
		t.Errorf("Lower after Close: %v, want ErrClosed", err)
	}
}
