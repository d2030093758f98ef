package concurry_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry"
)

// feedbackCounts makes a set of limits with a Feedback hook, by make, and
// returns it with the hook's calls so far and the limit's Feedback count.
func feedbackCounts(t *testing.T, make func(concurry.Hooks) *concurry.LimitSet) (*concurry.LimitSet, func() (hooked, counted int64)) {
	t.Helper()
	var hooked atomic.Int64
	ls := make(concurry.Hooks{Feedback: func(concurry.FeedbackInfo) { hooked.Add(1) }})
	return ls, func() (int64, int64) {
		st, err := ls.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return hooked.Load(), st.Limits[0].Feedback
	}
}

// checkTooLateNotCounted gives ls feedback that applies, then a pause that
// has already ended and a report older than the one applied: only the
// first two calls that applied count, in Stats and in the Feedback hook.
func checkTooLateNotCounted(t *testing.T, ls *concurry.LimitSet, counts func() (int64, int64)) {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ls.Lower(ctx, "r", 5, now))
	must(ls.Pause(ctx, "r", now.Add(time.Hour)))
	if h, c := counts(); h != 2 || c != 2 {
		t.Fatalf("after a report and a pause that apply: hook %d, counted %d; want 2 and 2", h, c)
	}
	must(ls.Pause(ctx, "r", now.Add(-time.Second))) // ended before it came
	must(ls.Lower(ctx, "r", 1, now.Add(-time.Second)))
	if h, c := counts(); h != 2 || c != 2 {
		t.Fatalf("after a pause already ended and a stale report: hook %d, counted %d; want still 2 and 2", h, c)
	}
}

// TestFeedbackTooLateIsNotCounted: a pause that has already ended and a
// report older than one applied change nothing, so they are neither counted
// in Stats' Feedback nor passed to the Feedback hook ("Feedback is called
// when upstream feedback was applied"), in memory and over a Unix socket.
func TestFeedbackTooLateIsNotCounted(t *testing.T) {
	limit := concurry.RateLimit{Key: "r", Window: time.Hour, Capacity: 10}
	t.Run("memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ls, counts := feedbackCounts(t, func(h concurry.Hooks) *concurry.LimitSet {
				return paSetWith(t, []concurry.Option{concurry.WithHooks(h)}, limit)
			})
			checkTooLateNotCounted(t, ls, counts)
		})
	})
	t.Run("unixsock", func(t *testing.T) {
		ls, counts := feedbackCounts(t, func(h concurry.Hooks) *concurry.LimitSet {
			return paUnixSetWith(t, []concurry.Option{concurry.WithHooks(h)}, limit)
		})
		checkTooLateNotCounted(t, ls, counts)
	})
}
