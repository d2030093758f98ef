package backend

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors a Backend returns. The root package re-exports them under the same
// names (concurry.ErrWouldBlock is backend.ErrWouldBlock), so errors.Is
// matches either.
var (
	// ErrWouldBlock reports that a non-waiting acquisition could not be
	// granted at once.
	ErrWouldBlock = errors.New("concurry: limits not available now")
	// ErrClosed reports an acquisition attempted on, or woken by, a closed set.
	ErrClosed = errors.New("concurry: limit set closed")
	// ErrLimitMismatch reports that a shared set of this name already exists
	// with different limits.
	ErrLimitMismatch = errors.New("concurry: limit definitions differ from the shared set of the same name")
	// ErrBackendUnavailable reports that a shared backend could not be
	// reached; the error wraps the cause.
	ErrBackendUnavailable = errors.New("concurry: backend unavailable")
	// ErrInvalidLimit reports a limit definition or set name outside the
	// contract (see [CheckSpecs] and [CheckName]).
	ErrInvalidLimit = errors.New("concurry: invalid limit")
	// ErrNameRequired reports a shared backend asked for a set without a
	// name (concurry.WithName).
	ErrNameRequired = errors.New("concurry: a shared backend needs a set name (WithName)")
	// ErrLeaseLost reports that a holding ended before its holder released
	// it: a Redis lease expired unrenewed, or the connection to the
	// Unix-socket server that kept it dropped. Its resources may already be
	// held by someone else. The error says whether the reported rate usage
	// was still charged: it also matches ErrUsageNotCharged when not.
	ErrLeaseLost = errors.New("concurry: holding lost before release")
	// ErrUsageNotCharged reports, beside ErrLeaseLost, that the rate usage
	// a release reported could not be charged (the holding's record was
	// gone, and the usage could not be applied another way).
	ErrUsageNotCharged = errors.New("concurry: the reported usage was not charged")
	// ErrInvalidRequest reports a request outside its set: not one amount
	// per limit, or an amount outside [0, capacity] (see [CheckAmounts]).
	ErrInvalidRequest = errors.New("concurry: invalid request")
	// ErrFeedbackStale reports feedback that changed nothing because it
	// came too late: a Pause that had already ended, or a Lower report older
	// than one already applied to its limit. The root package answers it
	// as success that applied nothing (it is neither counted nor passed to
	// the Feedback hook).
	ErrFeedbackStale = errors.New("concurry: upstream feedback too late to apply")
	// ErrClaimed reports that a waiting acquisition was abandoned because
	// its [Claim] was taken by another set (a LimitPool granted elsewhere).
	ErrClaimed = errors.New("concurry: claimed by another set")
)

// ContextError returns the error of a done ctx: ctx.Err(), so that it matches
// context.Canceled or context.DeadlineExceeded, wrapping also the cause given
// to context.WithCancelCause (or a deadline's cause) when there is one. It
// returns nil while ctx is live.
func ContextError(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// RefusalError is a refusal that says why and when: a non-waiting Acquire
// that cannot be granted now (it matches ErrWouldBlock), or a wait whose
// context deadline comes before the request could be granted (it matches
// context.DeadlineExceeded). errors.As finds it through any wrapping.
type RefusalError struct {
	// Key is the key of the limit that refused (for several limits of one
	// key, their key); "" when the backend cannot tell.
	Key string
	// RetryAfter is how long until the whole request would fit if nothing
	// else changed: no other request, release, refund or feedback. It is 0
	// when only a release (or refund) can make room, as for a ResourceLimit
	// held by others.
	RetryAfter time.Duration
	// Deadline is true for a wait whose deadline cannot be met, false for a
	// non-waiting acquire.
	Deadline bool
	// Queued is true when earlier requests are waiting in the set: they are
	// served first, RetryAfter counts them, and Key may name the limit that
	// holds up the queue rather than one of this request's.
	Queued bool
}

// Error describes the refusal.
func (e *RefusalError) Error() string {
	what := "limits not available now"
	if e.Deadline {
		what = "limits not available before the context deadline"
	}
	switch {
	case e.Queued:
		what += ": earlier requests are waiting"
		if e.Key != "" {
			what += fmt.Sprintf(" on %q", e.Key)
		}
	case e.Key != "":
		what += fmt.Sprintf(": %q", e.Key)
	}
	if e.RetryAfter > 0 {
		what += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	} else if !e.Queued {
		what += " (until a release)"
	}
	return "concurry: " + what
}

// Is reports whether target is ErrWouldBlock (a refusal without waiting) or
// context.DeadlineExceeded (a deadline that cannot be met).
func (e *RefusalError) Is(target error) bool {
	if e.Deadline {
		return target == context.DeadlineExceeded
	}
	return target == ErrWouldBlock
}
