package worker

import (
	"context"
	"sync"
	"sync/atomic"
)

// Future is the pending result of a submitted task. It completes exactly
// once, when the task returns (after its last retry), fails, or is cancelled.
// A Future is safe for concurrent use.
//
// A Future holds only the task's outcome, not the task, its context or its
// limiter, which are freed when the task ends: a completed future whose
// result is not read yet takes 40 bytes plus the size of R (48 for an int).
type Future[R any] struct {
	// parked is the list of Result calls waiting, and parkedDone once the
	// future has completed: the one word complete swaps.
	parked atomic.Pointer[parker]
	// waiters is nil until something other than Result with a context that
	// never ends waits on the future; then the Done channel and the Gather
	// and Wait calls waiting; completedWaiters once they have been told.
	// Whoever makes them looks at parked after: if the future completed
	// meanwhile, it does not wait on them, and complete tells them anyway.
	waiters atomic.Pointer[futureWaiters]
	parkers *sync.Pool // the pool's spare parkers
	val     R          // written once before parked is set to parkedDone
	err     error      // written once before parked is set to parkedDone
}

// parker is how a Result whose context never ends waits for its future: it
// receives one value on ch when the future completes. A pool keeps spare
// parkers, made by its own submitters (so in its synctest bubble, if any),
// and a Result takes one for the time of its wait, so that waiting costs no
// allocation.
type parker struct {
	ch   chan struct{} // room for the one value
	next *parker       // the next Result waiting on the same future
}

// parkedDone marks the parked list of a completed future.
var parkedDone = new(parker)

// futureWaiters are what waits on a future other than Result with a context
// that never ends: the channel Done returned, and the Gather and Wait calls
// watching the future. A future makes them only when it has some.
type futureWaiters struct {
	mu       sync.Mutex
	told     bool          // guarded by mu; the future has completed and told everyone
	done     chan struct{} // guarded by mu; made by the first Done, closed when told
	watchers []watcher     // guarded by mu; told the future's index when it completes
	first    [1]watcher    // the room of the first watcher
}

// completedWaiters replaces the waiters of a completed future once told.
var completedWaiters = &futureWaiters{told: true, done: closedChan}

// watcher is a Wait or Gather call waiting on a future: it receives index i
// on ch, whose buffer has room for every future of that call.
type watcher struct {
	ch chan<- int
	i  int
}

// closedChan is the Done channel of completed futures.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// newFuture returns a pending future, which complete completes, whose
// Result waits with parkers from parkers.
func newFuture[R any](parkers *sync.Pool) *Future[R] {
	return &Future[R]{parkers: parkers}
}

// Done returns a channel that is closed when the future completes.
func (f *Future[R]) Done() <-chan struct{} {
	if f.Completed() {
		return closedChan
	}
	w := f.waitList()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.told || f.Completed() { // if not, complete has yet to look for w
		return closedChan
	}
	if w.done == nil {
		w.done = make(chan struct{})
	}
	return w.done
}

// Result waits for the future to complete and returns what the task's last
// attempt returned and the error that ended the task: the task's own, a
// *RejectedError, a *PanicError, ErrStopped or a context error. A task that
// never ran returns the zero R. If ctx ends first, Result returns ctx's
// error; the task goes on.
func (f *Future[R]) Result(ctx context.Context) (R, error) {
	if f.Completed() {
		return f.val, f.err
	}
	stop := ctx.Done()
	if stop == nil && f.parkers != nil { // ctx never ends: wait without making a channel
		f.park()
		return f.val, f.err
	}
	select {
	case <-f.Done():
		return f.val, f.err
	case <-stop:
		var zero R
		return zero, ctx.Err()
	}
}

// Err returns nil while the task is unfinished, and the task's error once the
// future has completed (nil if it succeeded).
func (f *Future[R]) Err() error {
	if f.Completed() {
		return f.err
	}
	return nil
}

// Completed reports whether the future has completed.
func (f *Future[R]) Completed() bool { return f.parked.Load() == parkedDone }

// complete sets the outcome and tells whatever waits. It is called once.
func (f *Future[R]) complete(v R, err error) {
	f.val, f.err = v, err
	pk := f.parked.Swap(parkedDone)
	if w := f.waiters.Load(); w != nil { // made before the swap, or seeing it
		w.tell()
		f.waiters.Store(completedWaiters) // w is garbage now
	}
	for pk != nil {
		next := pk.next // read first: once told, the parker goes back to the pool
		pk.ch <- struct{}{}
		pk = next
	}
}

// tell closes the Done channel and tells the watchers, once.
func (w *futureWaiters) tell() {
	w.mu.Lock()
	if w.told {
		w.mu.Unlock()
		return
	}
	done, ws := w.done, w.watchers
	w.told, w.watchers = true, nil
	w.mu.Unlock()
	if done != nil {
		close(done)
	}
	for _, x := range ws {
		x.ch <- x.i // never blocks: the buffer holds one send per future
	}
}

// park waits until f completes, with a parker from f's pool.
func (f *Future[R]) park() {
	pk, _ := f.parkers.Get().(*parker)
	if pk == nil {
		pk = &parker{ch: make(chan struct{}, 1)}
	}
	for {
		head := f.parked.Load()
		if head == parkedDone { // completed meanwhile
			f.parkers.Put(pk)
			return
		}
		pk.next = head
		if f.parked.CompareAndSwap(head, pk) {
			break
		}
	}
	<-pk.ch
	pk.next = nil
	f.parkers.Put(pk)
}

// waitList returns f's waiters, making them if f has none yet. Once f has
// completed they may be told already (completedWaiters), or not yet: the
// caller looks at both.
func (f *Future[R]) waitList() *futureWaiters {
	if w := f.waiters.Load(); w != nil {
		return w
	}
	w := &futureWaiters{}
	if f.waiters.CompareAndSwap(nil, w) {
		return w
	}
	return f.waiters.Load() // made by another call, or completed
}

// watch arranges for i to be sent on ch when f completes, at once if it
// already has.
func (f *Future[R]) watch(ch chan<- int, i int) {
	if !f.Completed() {
		w := f.waitList()
		w.mu.Lock()
		if !w.told && !f.Completed() { // if so, complete has yet to look for w
			if w.watchers == nil {
				w.watchers = w.first[:0]
			}
			w.watchers = append(w.watchers, watcher{ch, i})
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
	ch <- i
}

// unwatch forgets the watcher of ch, if it has not been told yet.
func (f *Future[R]) unwatch(ch chan<- int) {
	w := f.waiters.Load()
	if w == nil || w == completedWaiters {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, x := range w.watchers {
		if x.ch == ch {
			w.watchers = append(w.watchers[:k:k], w.watchers[k+1:]...)
			return
		}
	}
}
