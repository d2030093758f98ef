package worker

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// Sentinel errors. Every error this package returns matches one of these, a
// context error, or the error of a task, with errors.Is.
var (
	// ErrStopped reports a submission to a stopped pool, or a task cancelled
	// because its pool was stopped before or while it ran.
	ErrStopped = errors.New("concurry: worker pool stopped")
	// ErrInvalidOptions reports options or arguments that can never be
	// right, such as a negative MaxWorkers, two kinds of limits at once, a
	// nil factory or task, or an unknown ReturnWhen.
	ErrInvalidOptions = errors.New("concurry: invalid worker options")
	// ErrFactory reports that the factory could not build a worker's value.
	ErrFactory = errors.New("concurry: worker factory failed")
	// ErrPanic reports a task, or a callback of the pool (factory, Close,
	// RetryOn, RetryUntil, WithProgress), that panicked; the error is a
	// *PanicError.
	ErrPanic = errors.New("concurry: task panicked")
	// ErrGoexit reports a task, or a callback of the pool, that called
	// runtime.Goexit, as t.FailNow does. The task is not retried; the error
	// holds the stack of the call.
	ErrGoexit = errors.New("concurry: task called runtime.Goexit")
	// ErrDeadlock reports a Submit from inside a task that could only wait
	// for that task itself: to a Sync pool, to the task's own worker when its
	// queue is full, or to an OnDemand pool of one worker.
	ErrDeadlock = errors.New("concurry: a task's submission could only wait for that task")
	// ErrRetryAfter is matched by every *RetryAfterError.
	ErrRetryAfter = errors.New("concurry: retry after")
	// ErrRejected reports that RetryUntil rejected the result of every
	// attempt; the error is a *RejectedError.
	ErrRejected = errors.New("concurry: result rejected by RetryUntil")
)

// PanicError is the error of a task that panicked, or of a callback of the
// pool that did: the value it panicked with and the stack of its goroutine at
// that moment. It matches ErrPanic, and unwraps to the panic value when that
// is an error.
type PanicError struct {
	Value any    // what the task passed to panic
	Stack []byte // the goroutine's stack, as runtime/debug.Stack formats it

	in string // what panicked when not the task: "RetryOn", "factory", …
}

// Error says what panicked, with the panic value and the stack.
func (e *PanicError) Error() string {
	in := e.in
	if in == "" {
		in = "task"
	}
	return fmt.Sprintf("concurry: %s panicked: %v\n\n%s", in, e.Value, e.Stack)
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

// RejectedError is the error of a task whose every attempt returned a result
// that RetryUntil rejected. It lists those results, in attempt order, and
// matches ErrRejected; it unwraps to the panics of RetryUntil, if any.
type RejectedError[R any] struct {
	Results []R
	// Panics holds RetryUntil's panics, in attempt order: a RetryUntil that
	// panics rejects the result. Nil when it never panicked.
	Panics []*PanicError
}

// Error lists the rejected results, and the first panic of RetryUntil.
func (e *RejectedError[R]) Error() string {
	msg := fmt.Sprintf("concurry: %d results rejected by RetryUntil: %v", len(e.Results), e.Results)
	if len(e.Panics) > 0 {
		msg += fmt.Sprintf("; %d rejected by a panic, first: %v", len(e.Panics), e.Panics[0])
	}
	return msg
}

// Is reports whether target is ErrRejected.
func (e *RejectedError[R]) Is(target error) bool { return target == ErrRejected }

// Unwrap returns the panics of RetryUntil.
func (e *RejectedError[R]) Unwrap() []error {
	errs := make([]error, len(e.Panics))
	for i, p := range e.Panics {
		errs[i] = p
	}
	return errs
}

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

// newPanicError records a panic of v in the task or the callback in.
func newPanicError(v any, in string) *PanicError {
	if in == "task" {
		in = ""
	}
	return &PanicError{Value: v, Stack: debug.Stack(), in: in}
}

// goexitError is the error of a task or callback that called runtime.Goexit:
// the stack at the call. It matches ErrGoexit.
type goexitError struct{ stack []byte }

func newGoexitError() error { return &goexitError{stack: debug.Stack()} }

func (e *goexitError) Error() string { return fmt.Sprintf("%v\n\n%s", ErrGoexit, e.stack) }

func (e *goexitError) Is(target error) bool { return target == ErrGoexit }

func wrapFactory(index int, err error) error {
	return fmt.Errorf("%w: worker %d: %w", ErrFactory, index, err)
}
