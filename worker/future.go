package worker

import (
	"context"
	"sync"
)

// Future is the pending result of a submitted task. It completes exactly
// once, when the task returns (after its last retry), fails, or is cancelled.
// A Future is safe for concurrent use.
type Future[R any] struct {
	done chan struct{}
	val  R     // written once before done is closed
	err  error // written once before done is closed

	mu        sync.Mutex
	completed bool      // guarded by mu
	watchers  []watcher // guarded by mu; told the future's index when it completes
}

// watcher is a Wait or Gather call waiting on a future: it receives index i
// on ch, whose buffer has room for every future of that call.
type watcher struct {
	ch chan<- int
	i  int
}

// closedChan is the Done channel of futures completed at submission.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Done returns a channel that is closed when the future completes.
func (f *Future[R]) Done() <-chan struct{} { return f.done }

// Result waits for the future to complete and returns what the task's last
// attempt returned and the error that ended the task: the task's own, a
// *RejectedError, a *PanicError, ErrStopped or a context error. A task that
// never ran returns the zero R. If ctx ends first, Result returns ctx's
// error; the task goes on.
func (f *Future[R]) Result(ctx context.Context) (R, error) {
	select {
	case <-f.done:
		return f.val, f.err
	default:
	}
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
}

// Err returns nil while the task is unfinished, and the task's error once the
// future has completed (nil if it succeeded).
func (f *Future[R]) Err() error {
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}

// Completed reports whether the future has completed.
func (f *Future[R]) Completed() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// complete sets the outcome and tells every watcher.
func (f *Future[R]) complete(v R, err error) {
	f.val, f.err = v, err
	f.mu.Lock()
	f.completed = true
	ws := f.watchers
	f.watchers = nil
	f.mu.Unlock()
	close(f.done)
	for _, w := range ws {
		w.ch <- w.i // never blocks: the buffer holds one send per future
	}
}

// watch arranges for i to be sent on ch when f completes, at once if it
// already has.
func (f *Future[R]) watch(ch chan<- int, i int) {
	f.mu.Lock()
	if f.completed {
		f.mu.Unlock()
		ch <- i
		return
	}
	f.watchers = append(f.watchers, watcher{ch, i})
	f.mu.Unlock()
}

// unwatch forgets the watcher of ch, if it has not been told yet.
func (f *Future[R]) unwatch(ch chan<- int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, w := range f.watchers {
		if w.ch == ch {
			f.watchers = append(f.watchers[:k:k], f.watchers[k+1:]...)
			return
		}
	}
}
