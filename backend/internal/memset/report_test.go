package memset_test

import (
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/internal/memset"
)

// reportSpecs are a call limit, a rate limit and a resource.
var reportSpecs = []backend.Spec{
	rate("call", algorithms.TokenBucket, time.Hour, 100),
	rate("tokens", algorithms.GCRA, time.Second, 10),
	{Key: "conn", Kind: backend.Resource, Capacity: 1},
}

// TestAcquireReport checks what one Acquire call reports, granted at once,
// refused, and after a wait: whether it waited, for how long, and which
// spec blocked it;
// and that OnWait is called once, when the request starts to wait, with
// that spec, outside the set's lock (it calls Stats).
func TestAcquireReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := memset.NewSet(reportSpecs).Handle(nil)
		defer h.Close()
		var r backend.AcquireReport
		acquire := func(amounts []int64, opts backend.AcquireOptions, want backend.AcquireReport) {
			t.Helper()
			r = backend.AcquireReport{Waited: !want.Waited, Blocker: 99} // overwritten
			opts.Report = &r
			_, _ = h.Acquire(bg, amounts, opts)
			if r != want {
				t.Fatalf("Acquire(%v): report %+v, want %+v", amounts, r, want)
			}
		}
		acquire([]int64{1, 10, 0}, now, backend.AcquireReport{Blocker: -1})
		acquire([]int64{1, 1, 0}, now, backend.AcquireReport{Blocker: 1})
		acquire([]int64{1, 0, 1}, now, backend.AcquireReport{Blocker: -1})
		acquire([]int64{1, 1, 1}, now, backend.AcquireReport{Blocker: 2})

		start := time.Now()
		var calls []int
		opts := backend.AcquireOptions{Wait: true, OnWait: func(spec int) {
			if _, err := h.Stats(bg); err != nil {
				t.Error(err)
			}
			calls = append(calls, spec)
		}}
		acquire([]int64{1, 3, 0}, opts, backend.AcquireReport{Waited: true, Blocker: 1, Duration: 300 * time.Millisecond})
		if time.Since(start) != 300*time.Millisecond || len(calls) != 1 || calls[0] != 1 {
			t.Fatalf("returned at %v, OnWait calls %v; want 300ms and [1]", time.Since(start), calls)
		}
	})
}

// TestOnWaitBehindTheQueue checks the blocker of a request that would fit
// by itself but waits behind an earlier one: the head's blocker.
func TestOnWaitBehindTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := memset.NewSet(reportSpecs).Handle(nil)
		defer h.Close()
		mustTake(t, h, 0, 0, 1)
		first := queue(bg, h, 0, 0, 1)
		var r backend.AcquireReport
		done := make(chan int, 1)
		go func() {
			_, _ = h.Acquire(bg, []int64{1, 0, 0}, backend.AcquireOptions{Wait: true, Report: &r, OnWait: func(spec int) { done <- spec }})
		}()
		if spec := <-done; spec != 2 {
			t.Fatalf("OnWait(%d), want 2 (conn, the head's blocker)", spec)
		}
		if err := h.Release(bg, 0, []int64{0, 0, 1}, nil); err != nil {
			t.Fatal(err)
		}
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r != (backend.AcquireReport{Waited: true, Blocker: 2, Duration: 0}) {
			t.Fatalf("report %+v", r)
		}
	})
}

// TestOnWaitPanicIsContained checks that a panicking OnWait leaves the wait
// going: it is granted when the request fits.
func TestOnWaitPanicIsContained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := memset.NewSet(reportSpecs).Handle(nil)
		defer h.Close()
		mustTake(t, h, 0, 10, 0)
		start := time.Now()
		_, err := h.Acquire(bg, []int64{0, 1, 0}, backend.AcquireOptions{Wait: true, OnWait: func(int) { panic("hook") }})
		if err != nil || time.Since(start) != 100*time.Millisecond {
			t.Fatalf("Acquire: %v at %v, want granted at 100ms", err, time.Since(start))
		}
	})
}

// TestOnWaitGoexitAbandonsTheWait ends the waiting goroutine from OnWait
// with runtime.Goexit, once while the request still waits and once after a
// release granted it: either way the set is left as if it had never come.
func TestOnWaitGoexitAbandonsTheWait(t *testing.T) {
	for _, grantFirst := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			h := memset.NewSet(reportSpecs).Handle(nil)
			defer h.Close()
			mustTake(t, h, 0, 0, 1)
			var wg sync.WaitGroup
			wg.Go(func() {
				_, _ = h.Acquire(bg, []int64{1, 2, 1}, backend.AcquireOptions{Wait: true, OnWait: func(int) {
					if grantFirst {
						_ = h.Release(bg, 0, []int64{0, 0, 1}, nil) // grants the waiter
					}
					runtime.Goexit()
				}})
				t.Error("Acquire returned after Goexit")
			})
			wg.Wait()
			if !grantFirst {
				_ = h.Release(bg, 0, []int64{0, 0, 1}, nil)
			}
			wantAvailable(t, h, 100, 10, 1) // the grant, if any, was given back (GCRA refunds)
			mustTake(t, h, 1, 10, 1)
		})
	}
}

// TestReleaseEndsTheLease checks Releaser: resources come back, refunds
// are made, and the waiter they let in is served.
func TestReleaseEndsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := memset.NewSet(reportSpecs).Handle(nil)
		defer h.Close()
		mustTake(t, h, 1, 10, 1)
		w := timedWait(h, time.Now(), 0, 4, 1)
		if err := h.Release(bg, 0, []int64{1, 10, 1}, []int64{0, -4, 0}); err != nil {
			t.Fatal(err)
		}
		if at := <-w; at != 0 {
			t.Fatalf("the waiter returned at %v, want at once", at)
		}
		wantAvailable(t, h, 99, 0, 0)
	})
}

// TestStatsDebt checks that overage shows as debt in Stats, and until
// when: the buckets' until it is refilled, a window's until it expires.
func TestStatsDebt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := memset.NewSet([]backend.Spec{
			rate("tb", algorithms.TokenBucket, time.Second, 10),
			rate("gcra", algorithms.GCRA, time.Second, 10),
			rate("sw", algorithms.SlidingWindow, time.Second, 10),
		}).Handle(nil)
		defer h.Close()
		mustTake(t, h, 10, 10, 10)
		if err := h.Release(bg, 0, nil, []int64{3, 3, 3}); err != nil {
			t.Fatal(err)
		}
		st, _ := h.Stats(bg)
		want := []backend.SpecStats{{Debt: 3}, {Debt: 3}, {Debt: 3}}
		for i := range want {
			if st[i] != want[i] {
				t.Fatalf("spec %d: %+v, want %+v", i, st[i], want[i])
			}
		}
		time.Sleep(300 * time.Millisecond)
		st, _ = h.Stats(bg)
		if st[0] != (backend.SpecStats{}) || st[1] != (backend.SpecStats{}) || st[2] != (backend.SpecStats{Debt: 3}) {
			t.Fatalf("after the buckets' debt was refilled: %+v", st)
		}
		time.Sleep(700 * time.Millisecond)
		st, _ = h.Stats(bg)
		if st[2] != (backend.SpecStats{Available: 10}) {
			t.Fatalf("after the window's overage expired: %+v", st)
		}
	})
}

// TestAcquireAtOnceAllocatesNothing checks the hot path: a grant at once
// with a report, and its release, allocate nothing.
func TestAcquireAtOnceAllocatesNothing(t *testing.T) {
	h := memset.NewSet([]backend.Spec{rate("call", algorithms.TokenBucket, time.Second, 1<<40), reportSpecs[2]}).Handle(nil)
	defer h.Close()
	amounts := []int64{1, 1}
	var r backend.AcquireReport
	opts := backend.AcquireOptions{Report: &r}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := h.Acquire(bg, amounts, opts); err != nil {
			t.Fatal(err)
		}
		_ = h.Release(bg, 0, amounts, nil)
	}); n != 0 {
		t.Fatalf("%v allocations per Acquire and Release, want 0", n)
	}
}

// TestIdle checks that a set is idle exactly when it is as a new one: full,
// nothing held, nobody waiting, no pause in force; and that asking
// allocates nothing.
func TestIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := memset.NewSet(reportSpecs).Handle(nil)
		defer h.Close()
		idle := func(want bool, when string) {
			t.Helper()
			if got := h.Idle(); got != want {
				t.Fatalf("%s: Idle() = %v, want %v", when, got, want)
			}
		}
		idle(true, "new")
		mustTake(t, h, 0, 1, 0)
		idle(false, "a unit taken")
		time.Sleep(100 * time.Millisecond)
		idle(true, "refilled")
		mustTake(t, h, 0, 0, 1)
		idle(false, "a resource held")
		w := queue(bg, h, 0, 0, 1)
		_ = h.Release(bg, 0, []int64{0, 0, 1}, nil)
		if err := <-w; err != nil {
			t.Fatal(err)
		}
		_ = h.Release(bg, 0, []int64{0, 0, 1}, nil)
		idle(true, "released")
		if err := h.Pause(bg, 2, time.Now().Add(time.Second).UnixNano()); err != nil {
			t.Fatal(err)
		}
		idle(false, "paused")
		time.Sleep(time.Second)
		idle(true, "the pause over")
		if n := testing.AllocsPerRun(100, func() { h.Idle() }); n != 0 {
			t.Fatalf("Idle allocates %v times", n)
		}
	})
}
