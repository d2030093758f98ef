package worker

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Every error this package returns matches one of these, a
// context error, or the error of a task, with errors.Is.
var (
	// ErrStopped reports a submission to a stopped pool, or a task cancelled
	// because its pool was stopped before or while it ran.
	ErrStopped = errors.New("concurry: worker pool stopped")
	// ErrInvalidOptions reports Options that can never be right, such as a
	// negative MaxWorkers or two kinds of limits at once.
	ErrInvalidOptions = errors.New("concurry: invalid worker options")
	// ErrFactory reports that the factory could not build a worker's value.
	ErrFactory = errors.New("concurry: worker factory failed")
	// ErrPanic reports a task that panicked; the error is a *PanicError.
	ErrPanic = errors.New("concurry: task panicked")
	// ErrRetryAfter is matched by every *RetryAfterError.
	ErrRetryAfter = errors.New("concurry: retry after")
	// ErrRejected reports that RetryUntil rejected the result of every
	// attempt; the error is a *RejectedError.
	ErrRejected = errors.New("concurry: result rejected by RetryUntil")
)

// PanicError is the error of a task that panicked: the value it panicked with
// and the stack of its goroutine at that moment. It matches ErrPanic, and
// unwraps to the panic value when that is an error.
type PanicError struct {
	Value any    // what the task passed to panic
	Stack []byte // the goroutine's stack, as runtime/debug.Stack formats it
}

// Error returns the panic value and the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("concurry: task panicked: %v\n\n%s", e.Value, e.Stack)
}

// Is reports whether target is ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value when it is an error, otherwise nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// RetryAfterError asks that the next attempt wait at least Wait, as an HTTP
// 429 or 503 response does with its Retry-After header. A task returns one
// (see [RetryAfter]); the pool then waits for the longer of Wait and its own
// backoff, even beyond Options.RetryMaxWait. It matches ErrRetryAfter and
// unwraps to Err.
type RetryAfterError struct {
	Wait time.Duration // the least time to wait before the next attempt
	Err  error         // the failure itself; may be nil
}

// RetryAfter returns err wrapped in a *RetryAfterError asking for a wait of at
// least d before the next attempt.
func RetryAfter(d time.Duration, err error) error { return &RetryAfterError{Wait: d, Err: err} }

// Error describes the failure and the wait.
func (e *RetryAfterError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("concurry: retry after %v", e.Wait)
	}
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.Wait)
}

// Is reports whether target is ErrRetryAfter.
func (e *RetryAfterError) Is(target error) bool { return target == ErrRetryAfter }

// Unwrap returns Err.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// ParseRetryAfter reads the value of an HTTP Retry-After header, either a
// number of seconds ("120") or an HTTP date, and returns how long to wait from
// now. It returns false when v is neither; a date in the past gives 0.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxDuration/time.Second) {
			return maxDuration, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(0, t.Sub(now)), true
}

// RejectedError is the error of a task whose every attempt returned a result
// that RetryUntil rejected. It lists those results, in attempt order, and
// matches ErrRejected.
type RejectedError[R any] struct {
	Results []R
}

// Error lists the rejected results.
func (e *RejectedError[R]) Error() string {
	return fmt.Sprintf("concurry: %d results rejected by RetryUntil: %v", len(e.Results), e.Results)
}

// Is reports whether target is ErrRejected.
func (e *RejectedError[R]) Is(target error) bool { return target == ErrRejected }

// GatherError is what Gather returns with [CollectErrors] when some tasks
// failed: the error of every future, in input order, nil where it succeeded.
// errors.Is and errors.As look through every error it holds.
type GatherError struct {
	Errors []error
}

// Error counts the failures and shows the first.
func (e *GatherError) Error() string {
	n, first := 0, -1
	for i, err := range e.Errors {
		if err != nil {
			n++
			if first < 0 {
				first = i
			}
		}
	}
	if n == 0 {
		return "concurry: no task failed"
	}
	return fmt.Sprintf("concurry: %d of %d tasks failed; first, task %d: %v", n, len(e.Errors), first, e.Errors[first])
}

// Unwrap returns the errors of the tasks that failed.
func (e *GatherError) Unwrap() []error {
	var errs []error
	for _, err := range e.Errors {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func newPanicError(v any) *PanicError { return &PanicError{Value: v, Stack: debug.Stack()} }

func wrapFactory(index int, err error) error {
	return fmt.Errorf("%w: worker %d: %w", ErrFactory, index, err)
}
