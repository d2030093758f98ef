package worker

import (
	"context"
	"fmt"
)

// ReturnWhen says when Wait returns. The zero value is AllCompleted.
type ReturnWhen uint8

const (
	// AllCompleted returns when every future has completed.
	AllCompleted ReturnWhen = iota
	// FirstCompleted returns as soon as any future has completed.
	FirstCompleted
	// FirstError returns as soon as any future has failed, or when every
	// future has completed without error.
	FirstError
)

// String returns "AllCompleted", "FirstCompleted" or "FirstError".
func (r ReturnWhen) String() string {
	switch r {
	case AllCompleted:
		return "AllCompleted"
	case FirstCompleted:
		return "FirstCompleted"
	case FirstError:
		return "FirstError"
	}
	return fmt.Sprintf("ReturnWhen(%d)", uint8(r))
}

// WaitOption configures Gather and Wait. The type is sealed: use
// [WithProgress] and [CollectErrors].
type WaitOption struct {
	progress func(done, total int)
	collect  bool
}

// WithProgress calls fn(done, total) in the waiting goroutine each time one
// of the futures completes (first for those already complete), with the
// number complete so far. If fn panics, Gather or Wait returns at once with
// the *PanicError.
func WithProgress(fn func(done, total int)) WaitOption { return WaitOption{progress: fn} }

// CollectErrors makes Gather wait for every future and report every error,
// in a *GatherError, instead of returning at the first error by input order.
func CollectErrors() WaitOption { return WaitOption{collect: true} }

func waitOptions(opts []WaitOption) (o WaitOption) {
	for _, x := range opts {
		if x.progress != nil {
			o.progress = x.progress
		}
		o.collect = o.collect || x.collect
	}
	return o
}

// tracker follows the completion of a list of futures, in any order.
type tracker[R any] struct {
	futures  []*Future[R]
	ch       chan int
	complete []bool
	n        int
	progress func(done, total int)
}

func track[R any](futures []*Future[R], progress func(int, int)) *tracker[R] {
	t := &tracker[R]{futures: futures, ch: make(chan int, len(futures)), complete: make([]bool, len(futures)), progress: progress}
	for i, f := range futures {
		f.watch(t.ch, i)
	}
	return t
}

// next waits for one more future to complete and returns its index. A
// panic of the progress callback is its error, a *PanicError. A future that
// has completed is taken before ctx is looked at, as Future.Result does, so
// that futures complete before ctx ended are reported whatever ctx says.
func (t *tracker[R]) next(ctx context.Context) (int, error) {
	select {
	case i := <-t.ch:
		return i, t.completed(i)
	default:
	}
	select {
	case i := <-t.ch:
		return i, t.completed(i)
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// completed records that future i completed and reports progress.
func (t *tracker[R]) completed(i int) (err error) {
	t.complete[i] = true
	t.n++
	if t.progress == nil {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			err = newPanicError(v, "WithProgress callback")
		}
	}()
	t.progress(t.n, len(t.futures))
	return nil
}

// stop unregisters from the futures that have not completed.
func (t *tracker[R]) stop() {
	for i, f := range t.futures {
		if !t.complete[i] {
			f.unwatch(t.ch)
		}
	}
}

// Gather waits for futures and returns their results in input order. It
// returns at the first error by input order — the error of the failed future
// with the lowest index, once every future before it has succeeded — with the
// results gathered so far; with [CollectErrors] it waits for every future and
// returns a *GatherError when any failed. If ctx ends first, Gather returns
// the results gathered so far (zero values for the rest) and ctx's error.
func Gather[R any](ctx context.Context, futures []*Future[R], opts ...WaitOption) ([]R, error) {
	o := waitOptions(opts)
	results := make([]R, len(futures))
	t := track(futures, o.progress)
	defer t.stop()
	var errs []error
	firstErr, prefix := len(futures), 0 // lowest failed index; futures[:prefix] are complete
	for t.n < len(futures) {
		i, err := t.next(ctx)
		if err != nil {
			return results, err
		}
		f := futures[i]
		results[i] = f.val
		if f.err != nil {
			if errs == nil {
				errs = make([]error, len(futures))
			}
			errs[i] = f.err
			firstErr = min(firstErr, i)
		}
		for prefix < len(futures) && t.complete[prefix] {
			prefix++
		}
		if !o.collect && prefix > firstErr {
			return results, errs[firstErr]
		}
	}
	if errs != nil {
		return results, &GatherError{Errors: errs}
	}
	return results, nil
}

// Wait waits for futures until the condition until holds and returns the
// completed ones and the others, each in input order. If ctx ends first, it
// returns those completed so far and ctx's error. It never waits for a
// condition that cannot hold: FirstError with no failure returns when every
// future has completed. An unknown until fails at once with
// ErrInvalidOptions, returning no futures.
func Wait[R any](ctx context.Context, futures []*Future[R], until ReturnWhen, opts ...WaitOption) (done, pending []*Future[R], err error) {
	if until > FirstError {
		return nil, nil, fmt.Errorf("%w: unknown %v", ErrInvalidOptions, until)
	}
	o := waitOptions(opts)
	t := track(futures, o.progress)
	defer t.stop()
	for t.n < len(futures) && err == nil {
		var i int
		if i, err = t.next(ctx); err != nil {
			break
		}
		if until == FirstCompleted || (until == FirstError && futures[i].err != nil) {
			err = t.drain()
			break
		}
	}
	for i, f := range futures {
		if t.complete[i] {
			done = append(done, f)
		} else {
			pending = append(pending, f)
		}
	}
	return done, pending, err
}

// drain takes every completion already reported, so that futures that
// completed together are all returned as done.
func (t *tracker[R]) drain() error {
	for {
		select {
		case i := <-t.ch:
			if err := t.completed(i); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}
