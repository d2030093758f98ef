package backendtest

// Hook scenarios shared by the edge tests of the backends that talk to a
// server (unixsock, redis): each is written once here and run from each
// backend's package with a backend of its own.

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
)

// HookLog records every hook call, in order per hook. If Started is not
// nil, WaitStart also sends on it (after recording).
type HookLog struct {
	Mu        sync.Mutex
	Granted   []concurry.GrantInfo
	Refused   []concurry.RefusalInfo
	WaitStart []concurry.WaitInfo
	WaitDone  []concurry.WaitInfo
	Settled   []concurry.SettleInfo
	Feedback  []concurry.FeedbackInfo
	Lost      []concurry.LeaseLostInfo
	Started   chan struct{}
}

// Hooks returns hooks that record into l.
func (l *HookLog) Hooks() concurry.Hooks {
	return concurry.Hooks{
		Granted: func(i concurry.GrantInfo) { l.Mu.Lock(); l.Granted = append(l.Granted, i); l.Mu.Unlock() },
		Refused: func(i concurry.RefusalInfo) { l.Mu.Lock(); l.Refused = append(l.Refused, i); l.Mu.Unlock() },
		WaitStart: func(i concurry.WaitInfo) {
			l.Mu.Lock()
			l.WaitStart = append(l.WaitStart, i)
			l.Mu.Unlock()
			if l.Started != nil {
				l.Started <- struct{}{}
			}
		},
		WaitDone:  func(i concurry.WaitInfo) { l.Mu.Lock(); l.WaitDone = append(l.WaitDone, i); l.Mu.Unlock() },
		Settled:   func(i concurry.SettleInfo) { l.Mu.Lock(); l.Settled = append(l.Settled, i); l.Mu.Unlock() },
		Feedback:  func(i concurry.FeedbackInfo) { l.Mu.Lock(); l.Feedback = append(l.Feedback, i); l.Mu.Unlock() },
		LeaseLost: func(i concurry.LeaseLostInfo) { l.Mu.Lock(); l.Lost = append(l.Lost, i); l.Mu.Unlock() },
	}
}

// HookCalling returns Hooks in which only the hook named hook ("Granted",
// "Refused", "WaitStart", "WaitDone", "Settled", "Feedback" or "LeaseLost")
// is set, calling f.
func HookCalling(hook string, f func()) concurry.Hooks {
	var h concurry.Hooks
	switch hook {
	case "Granted":
		h.Granted = func(concurry.GrantInfo) { f() }
	case "Refused":
		h.Refused = func(concurry.RefusalInfo) { f() }
	case "WaitStart":
		h.WaitStart = func(concurry.WaitInfo) { f() }
	case "WaitDone":
		h.WaitDone = func(concurry.WaitInfo) { f() }
	case "Settled":
		h.Settled = func(concurry.SettleInfo) { f() }
	case "Feedback":
		h.Feedback = func(concurry.FeedbackInfo) { f() }
	case "LeaseLost":
		h.LeaseLost = func(concurry.LeaseLostInfo) { f() }
	default:
		panic("backendtest.HookCalling: no hook " + hook)
	}
	return h
}

// OpenSet returns a set of limits named name in b with hooks h, closed when
// the test ends; it fails t on an error.
func OpenSet(t testing.TB, b backend.Backend, name string, h concurry.Hooks, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	ls, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithBackend(b), concurry.WithHooks(h))
	if err != nil {
		t.Fatalf("NewLimitSet(%q): %v", name, err)
	}
	t.Cleanup(func() { ls.Close() })
	return ls
}

// Eventually calls f until it returns nil, failing t with what if it still
// fails after waitLimit. For state a server settles on its own time (a
// withdrawn waiter, a unit given back), not for synchronising with a test's
// own goroutines.
func Eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, waitLimit, err)
		}
		time.Sleep(5 * time.Millisecond) // back off between polls; not a synchronisation
	}
}

// RangeEnds checks "Capacities up to 2^50 and windows up to 366 days;
// anything larger is ErrInvalidLimit at definition, on every backend" on
// b, for every algorithm: a full request of 2^50 on a rate and a resource
// limit is granted, updated and released, 2^50+1 is ErrExceedsCapacity, and
// a limit of one more unit or nanosecond of window is ErrInvalidLimit. With
// frozen (the backend's clock stands still), the rate key shows nothing
// available after the full grant.
func RangeEnds(t *testing.T, b backend.Backend, name string, frozen bool) {
	ctx := context.Background()
	for alg := concurry.TokenBucket; alg <= concurry.GCRA; alg++ {
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.RateLimit{Key: "k", Window: concurry.MaxWindow, Capacity: concurry.MaxCapacity, Algorithm: alg},
			concurry.ResourceLimit{Key: "r", Capacity: concurry.MaxCapacity},
		}, concurry.WithName(name+"/"+alg.String()), concurry.WithBackend(b))
		if err != nil {
			t.Fatalf("%v: the largest limits: %v", alg, err)
		}
		a, err := ls.TryAcquire(ctx, concurry.Amounts{"k": concurry.MaxCapacity, "r": concurry.MaxCapacity})
		if err != nil {
			t.Fatalf("%v: a full request: %v", alg, err)
		}
		if err := a.Update(concurry.Amounts{"k": concurry.MaxCapacity}); err != nil {
			t.Fatal(err)
		}
		if err := a.Release(); err != nil {
			t.Fatal(err)
		}
		st, err := ls.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if k, _ := st.Limit("k"); k.Granted != concurry.MaxCapacity || (frozen && k.Available != 0) {
			t.Errorf("%v: after a full grant: %+v", alg, k)
		}
		if r, _ := st.Limit("r"); r.Available != concurry.MaxCapacity || r.InUse != 0 {
			t.Errorf("%v: resource after release: %+v", alg, r)
		}
		if _, err := ls.TryAcquire(ctx, concurry.Amounts{"k": concurry.MaxCapacity + 1}); !errors.Is(err, concurry.ErrExceedsCapacity) {
			t.Errorf("%v: 2^50+1: %v", alg, err)
		}
		_ = ls.Close()
		for over, l := range map[string]concurry.Limit{
			"capacity": concurry.RateLimit{Key: "k", Window: time.Second, Capacity: concurry.MaxCapacity + 1, Algorithm: alg},
			"window":   concurry.RateLimit{Key: "k", Window: concurry.MaxWindow + 1, Capacity: 1, Algorithm: alg},
		} {
			if _, err := concurry.NewLimitSet([]concurry.Limit{l}, concurry.WithName(name+"/over/"+over+alg.String()), concurry.WithBackend(b)); !errors.Is(err, concurry.ErrInvalidLimit) {
				t.Errorf("%v: one more %s: %v, want ErrInvalidLimit", alg, over, err)
			}
		}
	}
}

// FeedbackHookOnlyWhenApplied checks that the Feedback hook fires once per
// applied feedback on b: a pause that already ended and a stale Lower (asOf
// before one already applied) are "neither counted nor passed to the
// Feedback hook".
func FeedbackHookOnlyWhenApplied(t *testing.T, b backend.Backend, name string) {
	ctx := context.Background()
	log := &HookLog{}
	ls := OpenSet(t, b, name, log.Hooks(), concurry.RateLimit{Key: "tok", Window: Long, Capacity: 1000})
	now := time.Now()
	if err := ls.Pause(ctx, "tok", now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := ls.Lower(ctx, "tok", 500, now); err != nil {
		t.Fatal(err)
	}
	if err := ls.Lower(ctx, "tok", 100, now.Add(-time.Second)); err != nil { // stale
		t.Fatal(err)
	}
	st, err := ls.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	log.Mu.Lock()
	defer log.Mu.Unlock()
	fb := log.Feedback
	if len(fb) != 1 || fb[0].Remaining != 500 || fb[0].Pause || fb[0].Key != "tok" {
		t.Errorf("Feedback hook: %+v, want one lowering to 500", fb)
	}
	if st.Limits[0].Feedback != 1 || st.Limits[0].Available != 500 {
		t.Errorf("stats: %+v", st.Limits[0])
	}
}

// GoexitInHooks checks the Hooks doc on b: "a hook that calls
// runtime.Goexit ends its goroutine with the limiter's state consistent:
// an acquisition granted to a goroutine that exits in Granted or WaitDone
// is released". One subtest per hook: a blocked Acquire whose goroutine
// exits in WaitStart, WaitDone or Granted leaves no waiter (noWaiter, if
// not nil, says whether the server still holds one) and no unit held; for
// Granted, so does a TryAcquire whose goroutine exits there.
func GoexitInHooks(t *testing.T, b backend.Backend, name string, noWaiter func() error) {
	ctx := context.Background()
	for _, hook := range []string{"WaitStart", "WaitDone", "Granted"} {
		t.Run(hook, func(t *testing.T) {
			var mu sync.Mutex
			exiting := false
			setExiting := func(e bool) { mu.Lock(); exiting = e; mu.Unlock() }
			exit := func() {
				mu.Lock()
				e := exiting
				mu.Unlock()
				if e {
					runtime.Goexit()
				}
			}
			queued := make(chan struct{}, 1)
			h := HookCalling(hook, exit)
			if hook != "WaitStart" {
				h.WaitStart = func(concurry.WaitInfo) { queued <- struct{}{} }
			}
			ls := OpenSet(t, b, name+"/"+hook, h, concurry.ResourceLimit{Key: "conn", Capacity: 1})
			held, err := ls.TryAcquire(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			setExiting(true)
			done := make(chan struct{})
			go func() { defer close(done); _, _ = ls.Acquire(ctx, nil); t.Error("returned after Goexit") }()
			if hook == "WaitStart" {
				<-done
			} else {
				<-queued
			}
			if err := held.Release(); err != nil {
				t.Fatal(err)
			}
			<-done
			setExiting(false)
			if noWaiter != nil {
				Eventually(t, "no waiter left in the server", noWaiter)
			}
			back := func() error {
				a, err := ls.TryAcquire(ctx, nil)
				if err != nil {
					return err
				}
				return a.Release()
			}
			Eventually(t, "the unit came back and no waiter was left", back)
			if hook == "Granted" { // granted at once, exiting in Granted
				setExiting(true)
				done := make(chan struct{})
				go func() { defer close(done); _, _ = ls.TryAcquire(ctx, nil); t.Error("returned after Goexit") }()
				<-done
				setExiting(false)
				Eventually(t, "the unit of the goroutine that exited in Granted comes back", back)
			}
			st, err := ls.Stats(ctx)
			if err != nil || st.Limits[0].InUse != 0 {
				t.Fatalf("in use after: %+v %v", st.Limits, err)
			}
		})
	}
}
