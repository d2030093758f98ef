package memset

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// TestExtraMadeOnlyWhenNeeded checks that a set makes what only waiting or
// feedback needs when it first needs it (issue 13): granting, settling and
// refusing at once leave it unmade; a wait or a pause makes it; a set with a
// SlidingWindow has it from the start, for its window.
func TestExtraMadeOnlyWhenNeeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewSet([]backend.Spec{{Key: "r", Kind: backend.Rate, Window: time.Second, Capacity: 1}})
		h := s.Handle(nil)
		defer h.Close()
		if _, err := h.Acquire(ctx, []int64{1}, backend.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
		_ = h.Settle(ctx, 0, []int64{1}, []int64{-1}, true, nil)
		_, _ = h.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
		if _, err := h.Acquire(ctx, []int64{1}, backend.AcquireOptions{}); err == nil {
			t.Fatal("the second unit was granted at once")
		}
		if s.x != nil {
			t.Fatal("extra made without a wait or feedback")
		}
		if _, err := h.Acquire(ctx, []int64{1}, backend.AcquireOptions{Wait: true}); err != nil {
			t.Fatal(err)
		}
		if s.x == nil || s.x.paused != nil || s.x.reported != nil {
			t.Fatalf("after a wait: extra %+v, want made, with no feedback", s.x)
		}
		if err := h.Pause(ctx, 0, time.Now().Add(time.Second).UnixNano()); err != nil {
			t.Fatal(err)
		}
		if s.x.paused == nil {
			t.Fatal("a pause made no pauses")
		}

		sw := NewSet([]backend.Spec{{Key: "w", Kind: backend.Rate, Algorithm: algorithms.SlidingWindow, Window: time.Second, Capacity: 1}})
		if sw.x == nil || sw.x.windows[0] == nil || len(sw.block) != 0 {
			t.Fatalf("a SlidingWindow set: extra %+v, block %v", sw.x, sw.block)
		}
	})
}
