package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// TestGrantToAGoneCallerTakesNothing: Redis stalls (SIGSTOP) with an
// acquisition in it, whose caller's ctx ends meanwhile; when Redis
// continues it grants the acquisition, and the backend gives the grant
// back as though it had not been made: every algorithm has its 4 units
// again, not only the ones that refund (a FixedWindow, SlidingWindow or
// LeakyBucket unit was spent before), with a lease (a resource beside the
// rate limit) and without one, from a request that waits and one that
// does not.
func TestGrantToAGoneCallerTakesNothing(t *testing.T) {
	srv := redistest.Start(t)
	for _, alg := range []algorithms.Kind{algorithms.TokenBucket, algorithms.GCRA, algorithms.FixedWindow,
		algorithms.SlidingWindow, algorithms.LeakyBucket} {
		for _, leased := range []bool{false, true} {
			for _, wait := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/leased=%v/wait=%v", alg, leased, wait), func(t *testing.T) {
					rec := newLogRecorder()
					b := cr.New(srv.Client(), cr.Options{Logger: slog.New(rec)})
					specs := []backend.Spec{{Key: "k", Kind: backend.Rate, Algorithm: alg, Window: time.Hour, Capacity: 4}}
					amounts := []int64{1}
					if leased {
						specs = append(specs, backend.Spec{Key: "slot", Kind: backend.Resource, Capacity: 1})
						amounts = append(amounts, 1)
					}
					set := open(t, b, specs...)
					if got := available(t, set)[0]; got != 4 {
						t.Fatalf("%d available at first, want 4", got)
					}
					srv.Pause()
					returnsByDeadline(t, "Acquire", func(ctx context.Context) error {
						_, err := set.Acquire(ctx, amounts, backend.AcquireOptions{Wait: wait})
						return err
					})
					srv.Resume()
					rec.await(t, "gave back a grant whose caller had gone", 10*time.Second)
					cr.WaitBackground(set)
					got := available(t, set)
					if got[0] != 4 {
						t.Errorf("%d units available after the grant to a gone caller was given back, want 4", got[0])
					}
					if leased && got[1] != 1 {
						t.Errorf("%d slots available after the grant to a gone caller was given back, want 1", got[1])
					}
				})
			}
		}
	}
}

// undoSet opens specs on a backend whose scripts read *now (µs).
func undoSet(t *testing.T, now *int64, specs ...backend.Spec) backend.Set {
	t.Helper()
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	cr.SetClock(b, func() int64 { return *now })
	return open(t, b, specs...)
}

// take acquires amounts at the set's clock, without waiting.
func take(t *testing.T, set backend.Set, amounts ...int64) backend.Lease {
	t.Helper()
	id, err := set.Acquire(context.Background(), amounts, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// wantAvailable fails the test unless the first spec of set has want units
// available.
func wantAvailable(t *testing.T, set backend.Set, what string, want int64) {
	t.Helper()
	if got := available(t, set)[0]; got != want {
		t.Fatalf("%s: %d available, want %d", what, got, want)
	}
}

// TestUndoSlidingWindow: a SlidingWindow grant given back takes its units
// off its own entry, whichever of the window's entries it is (the oldest,
// one in the middle, the newest), or off its share of an entry it shares
// with another grant of the same instant; the other entries leave the
// window when they would have, and the window is full again after the
// last.
func TestUndoSlidingWindow(t *testing.T) {
	const s = int64(time.Second / time.Microsecond)
	spec := backend.Spec{Key: "k", Kind: backend.Rate, Algorithm: algorithms.SlidingWindow, Window: 10 * time.Second, Capacity: 10}
	amounts := []int64{1, 2, 3} // taken at t0, t0+1 s, t0+2 s
	for k := range amounts {
		t.Run(fmt.Sprintf("entry%d", k), func(t *testing.T) {
			t0 := time.Now().Unix() * s
			now := t0
			set := undoSet(t, &now, spec)
			ids := make([]backend.Lease, len(amounts))
			for i, n := range amounts {
				now = t0 + int64(i)*s
				ids[i] = take(t, set, n)
			}
			cr.Undo(set, ids[k], []int64{amounts[k]}, t0+int64(k)*s)
			held := func(at int64) int64 { // what the grants but k hold at at
				var sum int64
				for i, n := range amounts {
					if i != k && t0+int64(i)*s+10*s > at {
						sum += n
					}
				}
				return sum
			}
			for _, at := range []int64{t0 + 2*s, t0 + 10*s, t0 + 11*s, t0 + 12*s} {
				now = at
				wantAvailable(t, set, fmt.Sprintf("at t0+%d s, entry %d given back", (at-t0)/s, k), 10-held(at))
			}
		})
	}
	t.Run("SharedEntry", func(t *testing.T) {
		t0 := time.Now().Unix() * s
		now := t0
		set := undoSet(t, &now, spec)
		take(t, set, 2)
		id := take(t, set, 3) // the same instant: one entry of 5
		now = t0 + s
		take(t, set, 1)
		cr.Undo(set, id, []int64{3}, t0)
		wantAvailable(t, set, "at t0+1 s, 3 of the entry of 5 given back", 7)
		now = t0 + 10*s
		wantAvailable(t, set, "at t0+10 s, the entry's 2 gone", 9)
		now = t0 + 11*s
		wantAvailable(t, set, "at t0+11 s", 10)
	})
}

// TestUndoFixedWindow: a FixedWindow grant given back comes off the count
// of its window while that window is counted; once a later window began,
// its units count no more and the new window's count is left alone.
func TestUndoFixedWindow(t *testing.T) {
	const s = int64(time.Second / time.Microsecond)
	spec := backend.Spec{Key: "k", Kind: backend.Rate, Algorithm: algorithms.FixedWindow, Window: 10 * time.Second, Capacity: 10}
	t0 := time.Now().Unix() / 10 * 10 * s // a window's start
	now := t0
	set := undoSet(t, &now, spec)
	take(t, set, 1)
	now = t0 + s
	id := take(t, set, 2)
	now = t0 + 2*s
	cr.Undo(set, id, []int64{2}, t0+s)
	wantAvailable(t, set, "in the grant's window", 9)
	id = take(t, set, 4)
	now = t0 + 10*s
	take(t, set, 1)
	cr.Undo(set, id, []int64{4}, t0+2*s)
	wantAvailable(t, set, "in the next window", 9)
}

// TestUndoLeakyBucket: a LeakyBucket grant given back leaves the queue; once
// a later one was granted, the queue had drained it (a grant waits for the
// queue to drain), and the later one's units stay queued.
func TestUndoLeakyBucket(t *testing.T) {
	const s = int64(time.Second / time.Microsecond)
	spec := backend.Spec{Key: "k", Kind: backend.Rate, Algorithm: algorithms.LeakyBucket, Window: 10 * time.Second, Capacity: 10}
	t0 := time.Now().Unix() * s
	now := t0
	set := undoSet(t, &now, spec)
	id := take(t, set, 2)
	now = t0 + s/2
	cr.Undo(set, id, []int64{2}, t0)
	wantAvailable(t, set, "the last grant given back", 10)
	id = take(t, set, 2) // drains at t0+2.5 s
	now = t0 + 5*s/2
	take(t, set, 1)
	cr.Undo(set, id, []int64{2}, t0+s/2)
	wantAvailable(t, set, "a drained grant given back after a later one", 9)
}
