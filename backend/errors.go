package backend

import (
	"context"
	"errors"
	"fmt"
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
	// was still charged.
	ErrLeaseLost = errors.New("concurry: holding lost before release")
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
