package wire

import (
	"context"
	"errors"
	"fmt"

	"github.com/concurry/concurry/backend"
)

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
	CodeInvalid                      // amounts that do not fit the set
	CodeShutdown                     // the server is shutting down
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
