package concurry

import (
	"time"
)

// Hooks are callbacks that observe the decisions of a LimitSet, LimitPool or
// Keyed as they are made, in the style of net/http/httptrace: every field is
// optional, and a nil field is never called and costs nothing. Set them with
// [WithHooks] (or KeyedOptions.Hooks); worker pools pass their limiter's
// hooks on unchanged.
//
// Hooks run in the goroutine that made the decision, after it was made and
// never under a lock of the limiter or its backend, so a hook may call the
// limiter (Stats, say). They should be quick: they delay their caller. A
// panicking hook is recovered and ignored — the decision stands — and a hook
// that calls runtime.Goexit ends its goroutine with the limiter's state
// consistent: an acquisition granted to a goroutine that exits in Granted or
// WaitDone is released, and a Keyed identity is left as if the call had
// returned. A LimitPool's Acquire waits on its sets in goroutines of its own:
// a set's hook that exits there ends the pool's wait on that set only, and
// the pool's caller gets an error saying so if no other set grants.
//
// For an acquisition through a LimitPool, the pool's Granted, Refused,
// WaitStart and WaitDone hooks are called as well as the granting set's;
// Settled, Feedback and LeaseLost come from the sets' hooks only.
type Hooks struct {
	// Granted is called once per granted acquisition.
	Granted func(GrantInfo)
	// Refused is called when an Acquire or TryAcquire fails: it would block,
	// its deadline could not be met, its context ended, the set was closed,
	// the backend was unavailable, or the request was invalid.
	Refused func(RefusalInfo)
	// WaitStart is called when a request could not be granted at once and
	// starts to wait, with the key that blocks it.
	WaitStart func(WaitInfo)
	// WaitDone is called when a wait WaitStart reported ends, granted or not.
	WaitDone func(WaitInfo)
	// Settled is called when an acquisition is released, once per key of a
	// rate limit whose settlement refunded units or charged overage (usage
	// below the grant of a limit that does not refund changes nothing).
	// Every count of Stats is made before it is called.
	Settled func(SettleInfo)
	// Feedback is called when upstream feedback was applied to the set.
	Feedback func(FeedbackInfo)
	// LeaseLost is called once per acquisition, when Update or Release
	// first learns that its holding ended before its release.
	LeaseLost func(LeaseLostInfo)
}

// RefusalCause says why an acquisition failed.
type RefusalCause uint8

// The causes of a refusal.
const (
	CauseWouldBlock  RefusalCause = iota // TryAcquire could not be granted at once
	CauseDeadline                        // the context's deadline came (or would come) first
	CauseCanceled                        // the context was cancelled
	CauseClosed                          // the set was closed
	CauseUnavailable                     // a shared backend could not be reached, or refused the request past one of its caps (a server's ErrServerLimit)
	CauseInvalid                         // the request could never be granted (unknown key, bad amount, over capacity)
)

const causeCount = int(CauseInvalid) + 1

var causeNames = [...]string{"would_block", "deadline", "canceled", "closed", "unavailable", "invalid"}

// String returns the cause in snake case, such as "would_block", for use as
// a metric attribute.
func (c RefusalCause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "unknown"
}

// GrantInfo describes a granted acquisition.
type GrantInfo struct {
	Set     *LimitSet     // the set that granted it
	Request Amounts       // the request as the caller gave it; do not modify
	Waited  time.Duration // how long it waited; 0 when granted at once
	Key     string        // for a wait, the key that kept it waiting
	// Degraded is true when a shared backend's outage policy granted it
	// without its store (FailOpen).
	Degraded bool
}

// RefusalInfo describes a failed acquisition.
type RefusalInfo struct {
	Set        *LimitSet // the set that refused; nil for a LimitPool's own Refused, and for a Keyed identity that has no set (its name or LimitsFor refused)
	Request    Amounts   // the request as the caller gave it; do not modify
	Cause      RefusalCause
	Key        string        // the key that refused, when known
	RetryAfter time.Duration // from the refusal, when it carries one
	Err        error         // the error the caller receives
}

// WaitInfo describes a wait.
type WaitInfo struct {
	Set     *LimitSet // nil for a LimitPool's own wait, on all its sets at once
	Request Amounts   // the request as the caller gave it; do not modify
	Key     string    // the key that blocks it; "" when the backend cannot tell
	// Waited and Err are set in WaitDone: how long it waited, and nil when
	// it was granted or the error the caller receives.
	Waited time.Duration
	Err    error
}

// SettleInfo describes how a released acquisition settled one rate limit.
type SettleInfo struct {
	Set      *LimitSet
	Key      string
	Refunded int64 // units given back: granted but not used (refunding algorithms only; of a key of several limits, the most any of them took back)
	Overage  int64 // units used beyond the grant, charged as debt
}

// FeedbackInfo describes upstream feedback applied to a set.
type FeedbackInfo struct {
	Set       *LimitSet
	Key       string    // "" for a pause of every key
	Until     time.Time // a pause: nothing is granted before Until
	Remaining int64     // a lowering: what was left, as the upstream reported it, within ±MaxCapacity (the range Lower takes)
	Pause     bool      // a pause (true) or a lowering (false)
}

// LeaseLostInfo describes a holding that ended before its release.
type LeaseLostInfo struct {
	Set *LimitSet
	Err error // the error Update or Release returned, matching ErrLeaseLost
}

// callHook calls a hook, containing a panic in it.
func callHook[T any](f func(T), info T) {
	defer func() { _ = recover() }() // a panicking hook is ignored: the decision stands
	f(info)
}

// callGranted calls a hook that runs once a has been granted (Granted, or
// WaitDone of a wait that was granted), containing a panic, and releasing a
// when the hook ends its goroutine with runtime.Goexit (its caller will never
// see a). It reports whether the hook returned.
func callGranted[T any](f func(T), info T, a *Acquisition) (returned bool) {
	defer func() {
		if returned {
			return
		}
		if recover() != nil {
			returned = true // a panic, contained: the grant stands
			return
		}
		_ = a.Release() // runtime.Goexit
	}()
	f(info)
	return true
}
