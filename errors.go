package concurry

import (
	"errors"

	"github.com/concurry/concurry/backend"
)

// Sentinel errors. Every error a LimitSet, LimitPool or Acquisition returns
// matches one of these (or a context error) with errors.Is.
var (
	// ErrInvalidLimit reports a limit definition that can never be right: a
	// capacity outside [1, 2^50], a window outside (0, 366 days], an empty
	// key or one over 256 bytes, keys that clash, or more than MaxLimits
	// limits.
	ErrInvalidLimit = backend.ErrInvalidLimit
	// ErrInvalidRequest reports an amount ≤ 0, negative usage, usage of a
	// call or resource key that differs from what was acquired, or an empty
	// request on a set that holds a RateLimit.
	ErrInvalidRequest = backend.ErrInvalidRequest
	// ErrUnknownKey reports a key the set (or the acquisition) does not hold.
	ErrUnknownKey = errors.New("concurry: unknown key")
	// ErrExceedsCapacity reports a request larger than a limit's capacity: it
	// could never be granted.
	ErrExceedsCapacity = errors.New("concurry: request exceeds capacity")
	// ErrWouldBlock reports that TryAcquire could not be granted at once.
	ErrWouldBlock = backend.ErrWouldBlock
	// ErrUsageNotReported is returned by Release when a RateLimit of the
	// acquisition was never updated; its usage was counted as the full request.
	ErrUsageNotReported = errors.New("concurry: usage not reported for a rate limit")
	// ErrReleased reports an Update of an acquisition already released.
	ErrReleased = errors.New("concurry: acquisition already released")
	// ErrClosed reports an acquisition attempted on, or woken by, a closed set.
	ErrClosed = backend.ErrClosed
	// ErrLimitMismatch reports that a shared set of the same name exists with
	// different limits.
	ErrLimitMismatch = backend.ErrLimitMismatch
	// ErrLeaseLost is returned by Update and Release of an acquisition whose
	// holding ended before its release (a Redis lease expired, a Unix-socket
	// connection dropped): another holder may have had its resources. The
	// error says whether the reported rate usage was still charged.
	ErrLeaseLost = backend.ErrLeaseLost
	// ErrUsageNotCharged comes with ErrLeaseLost from a Release whose
	// reported rate usage could not be charged; Stats and the Settled hook
	// then count none of it.
	ErrUsageNotCharged = backend.ErrUsageNotCharged
	// ErrNameRequired reports a shared backend given a set without WithName.
	ErrNameRequired = backend.ErrNameRequired
	// ErrBackendUnavailable reports that a shared backend could not be reached.
	ErrBackendUnavailable = backend.ErrBackendUnavailable
)

// RefusalError is the error of a refusal that carries its facts: which key
// refused and RetryAfter, how long until the whole request would fit if
// nothing else changed. TryAcquire's refusals match ErrWouldBlock, and an
// Acquire whose deadline cannot be met matches context.DeadlineExceeded; get
// the facts with errors.As:
//
//	var r *concurry.RefusalError
//	if errors.As(err, &r) {
//		s := r.RetryAfter / time.Second // whole seconds, rounded up
//		if r.RetryAfter%time.Second != 0 {
//			s++
//		}
//		w.Header().Set("Retry-After", strconv.FormatInt(int64(s), 10))
//	}
//
// (httplimit.Handler does this, and the IETF RateLimit headers.)
type RefusalError = backend.RefusalError
