package backendtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// clockSkew is how much earlier than a pause's end a shared backend may
// grant, by the test's clock: the backend's clock is another process's (or
// host's).
const clockSkew = 50 * time.Millisecond

// feedbackCases returns the cases of feedback from upstream: LimitSet.Pause
// and LimitSet.Lower. They need Capabilities.Feedback.
func feedbackCases() []Case {
	cs := []Case{
		{"Feedback/PauseEverything", testPauseEverything},
		{"Feedback/PauseNeverShortens", testPauseNeverShortens},
		{"Feedback/PauseFailsAWaiterItMakesLate", testPauseFailsAWaiterItMakesLate},
		{"Feedback/LowerNeverRaises", testLowerNeverRaises},
	}
	for _, alg := range allAlgorithms {
		cs = append(cs,
			Case{"Feedback/PauseWakesAtItsEnd/" + alg.String(), func(t *testing.T, e *Env) { testPauseWakesAtItsEnd(e, alg) }},
			Case{"Feedback/Lower/" + alg.String(), func(t *testing.T, e *Env) { testLower(e, alg) }},
		)
	}
	return cs
}

// pause pauses key of ls (every key for "") until until.
func (e *Env) pause(ls *concurry.LimitSet, key string, until time.Time) {
	e.T.Helper()
	if err := ls.Pause(context.Background(), key, until); err != nil {
		e.T.Fatalf("Pause(%q, %v): %v", key, until, err)
	}
}

// lower lowers key of ls to remaining as of asOf.
func (e *Env) lower(ls *concurry.LimitSet, key string, remaining int64, asOf time.Time) {
	e.T.Helper()
	if err := ls.Lower(context.Background(), key, remaining, asOf); err != nil {
		e.T.Fatalf("Lower(%q, %d): %v", key, remaining, err)
	}
}

// testPauseWakesAtItsEnd pauses a full limit for a second: nothing is
// available or granted from it until then (a refusal, when the backend
// gives facts, says to retry by then), another key goes on, and a waiter
// is granted at the pause's end.
func testPauseWakesAtItsEnd(e *Env, alg concurry.Algorithm) {
	e.Need(e.Caps.Feedback, "feedback")
	ls := e.Set(
		concurry.RateLimit{Key: "r", Window: Long, Capacity: 10, Algorithm: alg},
		concurry.RateLimit{Key: "other", Window: Long, Capacity: 10},
	)
	until := time.Now().Add(time.Second)
	e.pause(ls, "r", until)
	e.WantAvailable(ls, "r", 0)
	_, err := ls.TryAcquire(context.Background(), concurry.Amounts{"r": 1})
	if e.Caps.Facts {
		e.wantRefusal(err, refusal{key: "r", lo: 0, hi: time.Second})
	} else {
		e.WantErr(err, concurry.ErrWouldBlock, "TryAcquire during the pause")
	}
	e.Done(e.MustTry(ls, concurry.Amounts{"other": 1}), concurry.Amounts{"other": 1})
	a := e.MustAcquire(ls, concurry.Amounts{"r": 1})
	if now := time.Now(); now.Before(until.Add(-clockSkew)) || now.After(until.Add(waitLimit/2)) {
		e.T.Fatalf("granted %v after the pause's end", now.Sub(until))
	}
	e.Done(a, concurry.Amounts{"r": 1})
}

// testPauseEverything pauses the whole set, resources included.
func testPauseEverything(t *testing.T, e *Env) {
	e.Need(e.Caps.Feedback, "feedback")
	ls := e.Set(
		concurry.RateLimit{Key: "r", Window: Long, Capacity: 10},
		concurry.ResourceLimit{Key: "conn", Capacity: 1},
	)
	until := time.Now().Add(time.Second)
	e.pause(ls, "", until)
	e.Blocked(ls, concurry.Amounts{"r": 1})
	a := e.MustAcquire(ls, concurry.Amounts{"r": 1})
	if now := time.Now(); now.Before(until.Add(-clockSkew)) {
		t.Fatalf("granted %v before the pause's end", until.Sub(now))
	}
	e.Done(a, concurry.Amounts{"r": 1})
}

// testPauseNeverShortens pauses for a minute, then for a second: the first
// holds, so a wait with a deadline of two seconds cannot be met.
func testPauseNeverShortens(t *testing.T, e *Env) {
	e.Need(e.Caps.Feedback, "feedback")
	ls := e.Set(concurry.RateLimit{Key: "r", Window: Long, Capacity: 10})
	now := time.Now()
	e.pause(ls, "r", now.Add(time.Minute))
	e.pause(ls, "r", now.Add(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a, err := ls.Acquire(ctx, concurry.Amounts{"r": 1})
	if err == nil {
		e.Done(a, concurry.Amounts{"r": 1})
	}
	e.WantErr(err, context.DeadlineExceeded, "Acquire with a deadline before the longer pause's end")
}

// testPauseFailsAWaiterItMakesLate queues a waiter whose deadline the limit
// could meet, then pauses the limit past that deadline: the waiter fails
// with context.DeadlineExceeded, and is not granted during the pause.
func testPauseFailsAWaiterItMakesLate(t *testing.T, e *Env) {
	e.Need(e.Caps.Feedback, "feedback")
	ls := e.Set(
		concurry.RateLimit{Key: "r", Window: 10 * time.Second, Capacity: 10},
		concurry.RateLimit{Key: "probe", Window: Long, Capacity: 1000},
	)
	e.Done(e.MustTry(ls, concurry.Amounts{"r": 10}), concurry.Amounts{"r": 10})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	w := e.Go(ctx, ls, concurry.Amounts{"r": 1}) // due in 1s
	e.WaitQueued(ls, concurry.Amounts{"probe": 1})
	e.pause(ls, "r", time.Now().Add(time.Minute))
	a, err := e.Wait(w)
	if a != nil {
		a.Release()
		t.Fatal("the waiter was granted during the pause")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the waiter: %v, want context.DeadlineExceeded", err)
	}
}

// testLower lowers a full limit to 4 left: 4 are available and 5 are not;
// a report older than the one applied, and one that would raise, change
// nothing.
func testLower(e *Env, alg concurry.Algorithm) {
	e.Need(e.Caps.Feedback, "feedback")
	ls := e.Set(concurry.RateLimit{Key: "r", Window: Long, Capacity: 10, Algorithm: alg})
	asOf := time.Now()
	e.lower(ls, "r", 4, asOf)
	e.WantAvailable(ls, "r", 4)
	e.Blocked(ls, concurry.Amounts{"r": 5})
	e.lower(ls, "r", 0, asOf.Add(-time.Hour)) // stale
	e.lower(ls, "r", 8, asOf.Add(time.Millisecond))
	e.WantAvailable(ls, "r", 4)
	if alg != concurry.LeakyBucket { // its queue has 6 units ahead: nothing departs now
		e.Done(e.MustTry(ls, concurry.Amounts{"r": 4}), concurry.Amounts{"r": 4})
		e.WantAvailable(ls, "r", 0)
	}
}

// testLowerNeverRaises: a report of more left than the limit has changes
// nothing.
func testLowerNeverRaises(t *testing.T, e *Env) {
	e.Need(e.Caps.Feedback, "feedback")
	ls := e.Set(concurry.RateLimit{Key: "r", Window: Long, Capacity: 10})
	e.Done(e.MustTry(ls, concurry.Amounts{"r": 8}), concurry.Amounts{"r": 8})
	e.lower(ls, "r", 5, time.Now())
	e.WantAvailable(ls, "r", 2)
}
