package memset

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// projectionOp is one step of TestKeptProjectionMatchesARebuiltOne.
type projectionOp struct {
	what    int // 0 queue, 1 cancel, 2 settle, 3 sleep, 4 pause, 5 lower
	amounts []int64
	index   int
	delta   int64
	d       time.Duration
}

// TestKeptProjectionMatchesARebuiltOne replays random steps — waiters
// joining and cancelled, usage settled and resources released, time
// passing, pauses and lowering — on a set of a rate limit of random
// algorithm and a resource, and after each step compares the projection a
// refusal would read (kept and extended between calls) with one rebuilt from
// the queue: they must be equal, except that while a waiter lacks a
// resource the kept instant may be earlier (a lower bound, all a deadline
// check needs).
func TestKeptProjectionMatchesARebuiltOne(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		kind := rapid.SampledFrom([]algorithms.Kind{algorithms.TokenBucket, algorithms.LeakyBucket,
			algorithms.SlidingWindow, algorithms.FixedWindow, algorithms.GCRA}).Draw(rt, "kind")
		specs := []backend.Spec{
			{Key: "r", Kind: backend.Rate, Algorithm: kind, Window: 10 * time.Millisecond, Capacity: 4},
			{Key: "conn", Kind: backend.Resource, Capacity: 2},
		}
		amounts := rapid.Custom(func(rt *rapid.T) []int64 {
			return []int64{rapid.Int64Range(0, 4).Draw(rt, "r"), rapid.Int64Range(0, 2).Draw(rt, "conn")}
		})
		ops := rapid.SliceOfN(rapid.Custom(func(rt *rapid.T) projectionOp {
			return projectionOp{
				what:    rapid.IntRange(0, 5).Draw(rt, "what"),
				amounts: amounts.Draw(rt, "amounts"),
				index:   rapid.IntRange(0, 20).Draw(rt, "index"),
				delta:   rapid.Int64Range(-4, 4).Draw(rt, "delta"),
				d:       time.Duration(rapid.Int64Range(0, int64(15*time.Millisecond)).Draw(rt, "d")),
			}
		}), 1, 40).Draw(rt, "ops")
		probe := amounts.Draw(rt, "probe")
		var msg string
		synctest.Test(t, func(t *testing.T) { msg = replayProjection(NewSet(specs), ops, probe) })
		if msg != "" {
			rt.Fatal(msg)
		}
	})
}

// replayProjection runs the steps of TestKeptProjectionMatchesARebuiltOne
// inside a synctest bubble and returns what went wrong, or "".
func replayProjection(s *Set, ops []projectionOp, probe []int64) string {
	h := s.Handle(nil)
	defer h.Close()
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for k, op := range ops {
		switch op.what {
		case 0:
			ctx, cancel := context.WithCancel(context.Background())
			cancels = append(cancels, cancel)
			go func() { _, _ = h.Acquire(ctx, op.amounts, backend.AcquireOptions{Wait: true}) }()
		case 1:
			if len(cancels) > 0 {
				cancels[op.index%len(cancels)]()
			}
		case 2:
			_ = h.Settle(context.Background(), 0, []int64{0, 1}, []int64{op.delta, 0}, op.delta%2 == 0, nil)
		case 3:
			time.Sleep(op.d)
		case 4:
			_ = h.Pause(context.Background(), op.index%3-1, time.Now().Add(op.d).UnixNano())
		case 5:
			_ = h.Lower(context.Background(), 0, op.delta, time.Now().UnixNano())
		}
		synctest.Wait()
		if msg := compareProjections(s, probe); msg != "" {
			return fmt.Sprintf("after step %d of %+v: %s", k, ops, msg)
		}
	}
	return ""
}

// compareProjections compares the kept projection of probe with a rebuilt
// one, leaving the rebuilt one kept.
func compareProjections(s *Set, probe []int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := now()
	f := s.fitAt(t, probe, false)
	got := s.projected(t, probe, f)
	s.invalidate()
	want := s.projected(t, probe, f)
	if got == want || got.held >= 0 && got.held == want.held && got.ready <= want.ready {
		return ""
	}
	return fmt.Sprintf("kept projection %+v, rebuilt %+v", got, want)
}
