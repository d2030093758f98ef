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

// allKinds lists every algorithm.
var allKinds = []algorithms.Kind{algorithms.TokenBucket, algorithms.LeakyBucket,
	algorithms.SlidingWindow, algorithms.FixedWindow, algorithms.GCRA}

// rate returns a rate spec of key.
func rate(key string, kind algorithms.Kind, window time.Duration, capacity int64) backend.Spec {
	return backend.Spec{Key: key, Kind: backend.Rate, Algorithm: kind, Window: window, Capacity: capacity}
}

// now is a non-waiting Acquire.
var now = backend.AcquireOptions{}

// refusalOf returns the RefusalError in err, failing the test when there
// is none or it does not match its sentinel.
func refusalOf(t *testing.T, err error) *backend.RefusalError {
	t.Helper()
	var r *backend.RefusalError
	if !errors.As(err, &r) {
		t.Fatalf("error %v, want a *backend.RefusalError", err)
	}
	if r.Deadline != errors.Is(err, context.DeadlineExceeded) || r.Deadline == errors.Is(err, backend.ErrWouldBlock) {
		t.Fatalf("refusal %+v: matches DeadlineExceeded %v, ErrWouldBlock %v", *r, errors.Is(err, context.DeadlineExceeded), errors.Is(err, backend.ErrWouldBlock))
	}
	return r
}

// wantRefusal checks that a non-waiting Acquire of amounts is refused with
// the given facts.
func wantRefusal(t *testing.T, h backend.Set, amounts []int64, want backend.RefusalError) {
	t.Helper()
	_, err := h.Acquire(bg, amounts, now)
	if got := refusalOf(t, err); *got != want {
		t.Fatalf("Acquire(%v) refused with %+v, want %+v", amounts, *got, want)
	}
}

// mustTake acquires amounts at once, failing the test if it cannot.
func mustTake(t *testing.T, h backend.Set, amounts ...int64) {
	t.Helper()
	if _, err := h.Acquire(bg, amounts, now); err != nil {
		t.Fatalf("Acquire(%v): %v", amounts, err)
	}
}

// retryAfterExactly checks that a non-waiting Acquire of amounts is refused
// naming key with RetryAfter want, and that a caller who sleeps exactly
// that long then succeeds, while 1ns less is not enough.
func retryAfterExactly(t *testing.T, h backend.Set, amounts []int64, key string, want time.Duration) {
	t.Helper()
	wantRefusal(t, h, amounts, backend.RefusalError{Key: key, RetryAfter: want})
	time.Sleep(want - time.Nanosecond)
	wantRefusal(t, h, amounts, backend.RefusalError{Key: key, RetryAfter: time.Nanosecond})
	time.Sleep(time.Nanosecond)
	mustTake(t, h, amounts...)
}

// TestRefusalRetryAfterIsExact drains a limit of every algorithm and checks
// that the refusal's RetryAfter is the exact wait: sleeping it is enough,
// 1ns less is not. The bubble starts on a whole second, so FixedWindow's
// windows start with it.
func TestRefusalRetryAfterIsExact(t *testing.T) {
	cases := []struct {
		kind  algorithms.Kind
		setup func(h backend.Set) // drains the limit of 10 per second
		n     int64
		want  time.Duration
	}{
		// 10 taken: 3 more are 300ms of refill away.
		{algorithms.TokenBucket, func(h backend.Set) { mustTake(t, h, 10) }, 3, 300 * time.Millisecond},
		{algorithms.GCRA, func(h backend.Set) { mustTake(t, h, 10) }, 3, 300 * time.Millisecond},
		// 2 queued: the next request departs after their 200ms.
		{algorithms.LeakyBucket, func(h backend.Set) { mustTake(t, h, 2) }, 1, 200 * time.Millisecond},
		// 6 taken at 0 and 4 at 400ms: 3 fit when the first 6 expire, at 1s.
		{algorithms.SlidingWindow, func(h backend.Set) {
			mustTake(t, h, 6)
			time.Sleep(400 * time.Millisecond)
			mustTake(t, h, 4)
		}, 3, 600 * time.Millisecond},
		// The window of the first second is full from 250ms: the next starts at 1s.
		{algorithms.FixedWindow, func(h backend.Set) {
			time.Sleep(250 * time.Millisecond)
			mustTake(t, h, 10)
		}, 3, 750 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := memset.NewSet([]backend.Spec{rate("r", c.kind, time.Second, 10)}).Handle(nil)
				defer h.Close()
				c.setup(h)
				retryAfterExactly(t, h, []int64{c.n}, "r", c.want)
			})
		})
	}
}

// TestRefusalNamesTheBottleneck checks which key a refusal names when
// several block: the one whose instant is latest; and a resource without
// room, with RetryAfter 0, whatever the rate limits say (only a release can
// make room then).
func TestRefusalNamesTheBottleneck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := memset.NewSet([]backend.Spec{
			rate("fast", algorithms.TokenBucket, time.Second, 10),
			rate("slow", algorithms.GCRA, time.Minute, 10),
			{Key: "conn", Kind: backend.Resource, Capacity: 1},
		}).Handle(nil)
		defer h.Close()
		mustTake(t, h, 10, 10, 0)
		wantRefusal(t, h, []int64{1, 1, 0}, backend.RefusalError{Key: "slow", RetryAfter: 6 * time.Second})
		wantRefusal(t, h, []int64{5, 0, 0}, backend.RefusalError{Key: "fast", RetryAfter: 500 * time.Millisecond})
		mustTake(t, h, 0, 0, 1)
		wantRefusal(t, h, []int64{1, 1, 1}, backend.RefusalError{Key: "conn"})
		wantRefusal(t, h, []int64{0, 0, 1}, backend.RefusalError{Key: "conn"})
		retryAfterExactly(t, h, []int64{1, 1, 0}, "slow", 6*time.Second)
	})
}

// queue starts a waiting Acquire of amounts and returns once it is queued,
// with the channel its error arrives on. Run it inside a synctest bubble.
func queue(ctx context.Context, h backend.Set, amounts ...int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := h.Acquire(ctx, amounts, wait)
		done <- err
	}()
	synctest.Wait()
	return done
}

// wait is a waiting Acquire.
var wait = backend.AcquireOptions{Wait: true}

// TestRefusalProjectedThroughTheQueue checks a refusal while earlier
// requests wait: Queued, with RetryAfter projected through them (they are
// served first), naming the request's own bottleneck, or the one that holds
// up the queue when the request would fit by itself; and RetryAfter 0 when
// the queue waits for a release.
func TestRefusalProjectedThroughTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := memset.NewSet([]backend.Spec{
			rate("r", algorithms.TokenBucket, 2*time.Second, 2),
			rate("other", algorithms.TokenBucket, time.Hour, 100),
			{Key: "conn", Kind: backend.Resource, Capacity: 1},
		}).Handle(nil)
		defer h.Close()
		mustTake(t, h, 2, 0, 0)
		w1 := queue(bg, h, 1, 0, 0) // due at 1s
		wantRefusal(t, h, []int64{1, 0, 0}, backend.RefusalError{Key: "r", RetryAfter: 2 * time.Second, Queued: true})
		wantRefusal(t, h, []int64{0, 1, 0}, backend.RefusalError{Key: "r", RetryAfter: time.Second, Queued: true})
		time.Sleep(time.Second)
		if err := <-w1; err != nil {
			t.Fatalf("the waiter: %v", err)
		}
		mustTake(t, h, 0, 0, 1)
		w2 := queue(bg, h, 0, 1, 1) // waits for a release of conn
		wantRefusal(t, h, []int64{0, 1, 0}, backend.RefusalError{Key: "conn", Queued: true})
		if err := h.Settle(bg, 0, []int64{0, 0, 1}, nil, true, nil); err != nil {
			t.Fatal(err)
		}
		if err := <-w2; err != nil {
			t.Fatalf("the waiter for conn: %v", err)
		}
	})
}

// TestDeadlineRefusalAtOnce checks that a wait whose deadline comes before
// the projected grant fails at once, taking nothing, with the facts of a
// deadline refusal, alone and behind a waiter.
func TestDeadlineRefusalAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := memset.NewSet([]backend.Spec{rate("r", algorithms.GCRA, 2*time.Second, 2)}).Handle(nil)
		defer h.Close()
		mustTake(t, h, 2)
		ctx, cancel := context.WithTimeout(bg, 900*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := h.Acquire(ctx, []int64{1}, wait)
		if got, want := *refusalOf(t, err), (backend.RefusalError{Key: "r", RetryAfter: time.Second, Deadline: true}); got != want {
			t.Fatalf("refused with %+v, want %+v", got, want)
		}
		w1 := queue(bg, h, 1) // due at 1s: the deadline refusal took nothing
		ctx2, cancel2 := context.WithTimeout(bg, 1500*time.Millisecond)
		defer cancel2()
		_, err = h.Acquire(ctx2, []int64{1}, wait)
		if got, want := *refusalOf(t, err), (backend.RefusalError{Key: "r", RetryAfter: 2 * time.Second, Deadline: true, Queued: true}); got != want {
			t.Fatalf("behind a waiter: refused with %+v, want %+v", got, want)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("refusals took %v, not at once", d)
		}
		if err := <-w1; err != nil || time.Since(start) != time.Second {
			t.Fatalf("the waiter: %v at %v, want granted at 1s", err, time.Since(start))
		}
	})
}
