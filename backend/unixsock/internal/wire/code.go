package wire

import (
	"context"
	"errors"
	"fmt"

	"github.com/concurry/concurry/backend"
)

// ErrServerLimit reports a request refused because it would pass one of the
// server's caps (connections, sets or waiting acquisitions, per connection
// or in total). Only that request is refused: the connection and what it
// holds are kept. Package unixsock re-exports it.
var ErrServerLimit = errors.New("concurry: unix-socket server limit reached")

// Code classifies an Error frame, so the client can return an error that
// matches the same sentinel as the server's.
type Code uint8

// Error codes.
const (
	CodeInternal         Code = iota // anything else
	CodeWouldBlock                   // backend.ErrWouldBlock
	CodeClosed                       // backend.ErrClosed
	CodeLimitMismatch                // backend.ErrLimitMismatch
	CodeDeadlineExceeded             // context.DeadlineExceeded
	CodeCanceled                     // context.Canceled
	CodeMalformed                    // ErrMalformed: the server closes the connection
	CodeVersion                      // the server speaks another protocol version
	CodePermission                   // the peer's uid or gid is not allowed
	CodeUnknownSet                   // a set id this connection did not open
	CodeUnknownLease                 // a lease this connection does not hold
	CodeInvalid                      // backend.ErrInvalidLimit: a definition outside the contract
	CodeShutdown                     // the server is shutting down
	CodeNameRequired                 // backend.ErrNameRequired
	CodeClaimed                      // backend.ErrClaimed
	CodeLimit                        // ErrServerLimit
	CodeInvalidRequest               // backend.ErrInvalidRequest: amounts outside the set
	CodeFeedbackStale                // backend.ErrFeedbackStale: feedback too late to apply
)

var codeErrors = []struct {
	code Code
	err  error
}{
	{CodeWouldBlock, backend.ErrWouldBlock},
	{CodeClosed, backend.ErrClosed},
	{CodeLimitMismatch, backend.ErrLimitMismatch},
	{CodeDeadlineExceeded, context.DeadlineExceeded},
	{CodeCanceled, context.Canceled},
	{CodeMalformed, ErrMalformed},
	{CodeInvalid, backend.ErrInvalidLimit},
	{CodeNameRequired, backend.ErrNameRequired},
	{CodeClaimed, backend.ErrClaimed},
	{CodeLimit, ErrServerLimit},
	{CodeInvalidRequest, backend.ErrInvalidRequest},
	{CodeFeedbackStale, backend.ErrFeedbackStale},
}

// CodeOf returns the code of err: the first sentinel it matches, else
// CodeInternal.
func CodeOf(err error) Code {
	for _, c := range codeErrors {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// RemoteError is an Error frame turned back into an error. It matches the
// sentinel of its code with errors.Is.
type RemoteError struct {
	Code Code
	Text string
}

// Error returns the server's message.
func (e *RemoteError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("concurry: server error %d", e.Code)
	}
	return e.Text
}

// Unwrap returns the sentinel of the code, nil when it has none.
func (e *RemoteError) Unwrap() error {
	for _, c := range codeErrors {
		if c.code == e.Code {
			return c.err
		}
	}
	return nil
}
