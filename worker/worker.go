package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// worker is one actor of a Goroutine pool: a goroutine that owns its value
// and runs the tasks of its queue one at a time, in order.
//
// Its state word counts the tasks given to it (its Dispatched) with flags
// beside; its unfinished tasks (queued, handed over or running) are those
// less the tasks that have ended, which its counters count. A submission
// to an idle worker with a free slot, and the end of a task when no other
// is unfinished and no submitter waits, each change the word with one
// compare-and-swap and take no lock; everything else takes mu. While
// wWaiting is set, slots are taken only under mu: a freed slot goes to the
// oldest waiter.
type worker[T any] struct {
	env[T]
	slots int64 // MaxQueuedTasks; math.MaxInt64 when unbounded

	state atomic.Int64 // wIdle, wStopping, wWaiting, and wOne times the tasks given to the worker

	mu       sync.Mutex
	queue    ring[job[T]]      // guarded by mu; submitted, not started
	waiters  ring[*gateWaiter] // guarded by mu; submitters waiting for a slot, oldest first
	reserved int64             // guarded by mu; slots granted to submitters that have yet to push
	// wake ends an idle spell: it carries the task submitted to the idle
	// worker, handed over without the queue, or nil when the worker is to
	// look at its state (it is stopping). Whoever clears wIdle sends once,
	// so it never blocks.
	wake chan job[T]
	// asleep is set, by the worker's goroutine only, when it went idle as
	// it freed its last task's slot: its next look for a task waits on wake.
	asleep bool
}

// The flags of a worker's state, and its unit of unfinished tasks.
const (
	wIdle     = 1 << iota // the goroutine waits on wake, its queue empty; cleared by whoever wakes it
	wStopping             // take no more tasks; exit when the queue is empty
	wWaiting              // submitters wait for a slot, or hold one granted (set exactly while waiters or reserved are)
	wOne                  // one task given to the worker
)

// startWorkers starts every worker and waits until each has built its value.
func (p *Pool[T]) startWorkers(ctx context.Context) error {
	ready := make(chan error, p.opts.MaxWorkers)
	p.workers = make([]*worker[T], p.opts.MaxWorkers)
	for i := range p.workers {
		w := &worker[T]{
			env:   env[T]{c: &p.core, index: i, st: &p.counters[i]},
			slots: math.MaxInt64,
			wake:  make(chan job[T], 1),
		}
		if n := p.opts.MaxQueuedTasks; n > 0 {
			w.slots = int64(n)
		}
		w.release = w.finished
		p.workers[i] = w
		p.enter()
		go w.loop(ctx, p.factory, ready)
	}
	var errs []error
	for range p.workers {
		if err := <-ready; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// loop is the worker's goroutine: it builds the worker's value, then serves.
func (w *worker[T]) loop(ctx context.Context, factory func(context.Context, int) (T, error), ready chan<- error) {
	built := false
	defer func() {
		if !built { // the factory called runtime.Goexit
			ready <- wrapFactory(w.index, newGoexitError())
			w.c.exit()
		}
	}()
	t, err := build(ctx, factory, w.index)
	built = true
	ready <- err
	if err != nil {
		w.c.exit()
		return
	}
	w.t = t
	w.serve()
}

// serve runs the worker's tasks until it stops, then closes its value. When
// a task ends the goroutine with runtime.Goexit (its future has completed), a
// new goroutine takes the worker over, value and queue, so the worker lives
// on; the pool counts it as the same one.
func (w *worker[T]) serve() {
	closing, closed := false, false
	defer func() {
		switch {
		case !closing:
			go w.serve()
			return
		case !closed: // Close called runtime.Goexit
			w.c.addCloseErr(fmt.Errorf("worker %d: closing its value: %w", w.index, newGoexitError()))
		}
		w.c.exit()
	}()
	for j := w.next(); j != nil; j = w.next() {
		j.run(&w.env)
	}
	closing = true
	w.c.addCloseErr(closeValue(w.t))
	closed = true
}

// finished frees the slot of a task that has ended (its end is counted
// already), on the worker's goroutine; when nothing is queued the worker
// goes idle at once.
func (w *worker[T]) finished() {
	if s := w.state.Load(); s&(wIdle|wStopping|wWaiting) == 0 && s/wOne == w.ended() &&
		w.state.CompareAndSwap(s, s|wIdle) { // nothing else unfinished, no one waits: go idle
		w.asleep = true
		return
	}
	w.mu.Lock()
	granted := w.grantLocked()
	if w.queue.len() == 0 {
		w.asleep = w.idleLocked()
	}
	w.mu.Unlock()
	for _, g := range granted {
		close(g.ready)
	}
}

// ended returns how many of the worker's tasks have ended.
func (w *worker[T]) ended() int64 { return w.st.completed.Load() + w.st.failed.Load() }

// unfinished returns the worker's unfinished tasks: queued, handed over, or
// running.
func (w *worker[T]) unfinished() int64 { return w.state.Load()/wOne - w.ended() }

// dispatched returns how many tasks were given to the worker.
func (w *worker[T]) dispatched() int64 { return w.state.Load() / wOne }

// idleLocked marks the worker idle, unless it is stopping, and reports
// whether it did. Requires mu held and the queue empty.
func (w *worker[T]) idleLocked() bool {
	for {
		s := w.state.Load()
		if s&wStopping != 0 {
			return false
		}
		if w.state.CompareAndSwap(s, s|wIdle) {
			return true
		}
	}
}

// next returns the next task, waiting for one; nil when the worker must exit.
func (w *worker[T]) next() job[T] {
	if w.asleep {
		w.asleep = false
		if j := <-w.wake; j != nil {
			return j
		}
	}
	w.mu.Lock()
	for w.queue.len() == 0 {
		if !w.idleLocked() { // stopping
			w.mu.Unlock()
			return nil
		}
		w.mu.Unlock()
		if j := <-w.wake; j != nil {
			return j
		}
		w.mu.Lock()
	}
	j := w.queue.pop()
	w.mu.Unlock()
	return j
}

// push gives j to the worker, straight to its goroutine when idle, taking a
// slot unless the caller holds one granted (slotHeld). It reports false,
// and gives nothing, when the worker is stopping (err ErrStopped; a granted
// slot is freed) or has no free slot (err nil).
func (w *worker[T]) push(j job[T], slotHeld bool) (ok bool, err error) {
	for !slotHeld { // an idle worker with a free slot takes j without the lock
		s := w.state.Load()
		if s&wStopping != 0 {
			return false, ErrStopped
		}
		if s&wWaiting != 0 || s/wOne-w.ended() >= w.slots {
			return false, nil
		}
		if s&wIdle == 0 {
			break
		}
		if w.state.CompareAndSwap(s, (s+wOne)&^wIdle) {
			w.wake <- j
			return true, nil
		}
	}
	w.mu.Lock()
	for {
		s := w.state.Load()
		if s&wStopping != 0 {
			var granted []*gateWaiter
			if slotHeld {
				w.reserved--
				granted = w.grantLocked()
			}
			w.mu.Unlock()
			for _, g := range granted {
				close(g.ready)
			}
			return false, ErrStopped
		}
		n := (s + wOne) &^ wIdle
		if slotHeld {
			if w.reserved == 1 && w.waiters.len() == 0 {
				n &^= wWaiting
			}
		} else if s&wWaiting != 0 || s/wOne-w.ended() >= w.slots {
			w.mu.Unlock()
			return false, nil
		}
		if !w.state.CompareAndSwap(s, n) {
			continue // the worker went idle, or a submitter took the idle worker
		}
		if slotHeld {
			w.reserved--
		}
		if s&wIdle != 0 { // the queue is empty: hand j over directly
			w.mu.Unlock()
			w.wake <- j
			return true, nil
		}
		w.queue.push(j)
		w.mu.Unlock()
		return true, nil
	}
}

// acquire takes a slot, waiting while there is none, first come first
// served; the caller then pushes with slotHeld. It fails with ctx's error
// when ctx ends, and with ErrStopped when stop is closed, first. When
// noWait is set the caller is a task of this worker, which must end to free
// a slot, so it fails with ErrDeadlock instead of waiting.
func (w *worker[T]) acquire(ctx context.Context, stop <-chan struct{}, noWait bool) error {
	w.mu.Lock()
	w.state.Or(wWaiting) // from now on slots are taken only under mu
	if w.waiters.len() == 0 && w.freeLocked() > 0 {
		w.reserved++
		w.mu.Unlock()
		return nil
	}
	if noWait {
		w.clearWaitingLocked()
		w.mu.Unlock()
		return ErrDeadlock
	}
	return waitSlot(ctx, &w.mu, &w.waiters, stop, w.clearWaitingLocked)
}

// freeLocked returns the worker's free slots. Requires mu held.
func (w *worker[T]) freeLocked() int64 {
	return w.slots - (w.state.Load()/wOne - w.ended() + w.reserved)
}

// clearWaitingLocked clears wWaiting when no one waits for a slot or holds
// one granted. Requires mu held.
func (w *worker[T]) clearWaitingLocked() {
	if w.waiters.len() == 0 && w.reserved == 0 {
		w.state.And(^int64(wWaiting))
	}
}

// grantLocked grants the free slots to the oldest waiters, whose ready the
// caller must close after unlocking. Requires mu held.
func (w *worker[T]) grantLocked() []*gateWaiter {
	var granted []*gateWaiter
	for w.waiters.len() > 0 && w.freeLocked() > 0 {
		g := w.waiters.pop()
		g.granted = true
		w.reserved++
		granted = append(granted, g)
	}
	w.clearWaitingLocked()
	return granted
}

// stop makes the worker exit once its queue is empty.
func (w *worker[T]) stop() {
	w.mu.Lock()
	s := w.state.Load()
	for !w.state.CompareAndSwap(s, (s|wStopping)&^wIdle) {
		s = w.state.Load()
	}
	w.mu.Unlock()
	if s&wIdle != 0 {
		w.wake <- nil
	}
}

// enqueue gives j to the worker the balancing picks, waiting for room. A
// task that submits to its own full worker could only wait for itself, so
// it fails with ErrDeadlock.
func (p *Pool[T]) enqueue(ctx context.Context, j job[T]) error {
	w := p.pick()
	ok, err := w.push(j, false)
	if !ok && err == nil { // full: wait for a slot, first come first served
		own := p.ownTask(ctx)
		if err = w.acquire(ctx, p.closing, own != nil && int(own.index) == w.index); err != nil {
			return err
		}
		ok, err = w.push(j, true)
	}
	if !ok {
		return err
	}
	return nil
}

// pick returns the worker of the next task.
func (p *Pool[T]) pick() *worker[T] {
	n := len(p.workers)
	if n == 1 {
		return p.workers[0]
	}
	switch p.opts.Balancing {
	case Random:
		return p.workers[rand.IntN(n)]
	case LeastActive:
		return p.workers[p.leastBy((*worker[T]).unfinished)]
	case LeastTotal:
		return p.workers[p.leastBy((*worker[T]).dispatched)]
	}
	return p.workers[(p.rr.Add(1)-1)%uint64(n)]
}

// leastBy returns the lowest worker index whose value is smallest.
func (p *Pool[T]) leastBy(value func(*worker[T]) int64) int {
	best, bestV := 0, value(p.workers[0])
	for i := 1; i < len(p.workers); i++ {
		if v := value(p.workers[i]); v < bestV {
			best, bestV = i, v
		}
	}
	return best
}
