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
// Its state word counts its unfinished tasks (queued, handed over or
// running, and slots granted to a submitter about to push) with flags
// beside. A submission to an idle worker with a free slot, and the end of
// a task when no other is unfinished and no submitter waits, each change
// the word with one compare-and-swap and take no lock; everything else
// takes mu. While wWaiting is set, the count changes only under mu.
type worker[T any] struct {
	env[T]
	fullAt int64 // state >= fullAt when every slot is taken (MaxQueuedTasks); math.MaxInt64 when unbounded

	state atomic.Int64 // wIdle, wStopping, wWaiting, and wOne times the unfinished tasks

	mu      sync.Mutex
	queue   ring[job[T]]      // guarded by mu; submitted, not started
	waiters ring[*gateWaiter] // guarded by mu; submitters waiting for a slot, oldest first
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
	wWaiting              // submitters wait for a slot (set exactly while waiters is not empty)
	wOne                  // one unfinished task
)

// startWorkers starts every worker and waits until each has built its value.
func (p *Pool[T]) startWorkers(ctx context.Context) error {
	ready := make(chan error, p.opts.MaxWorkers)
	p.workers = make([]*worker[T], p.opts.MaxWorkers)
	for i := range p.workers {
		w := &worker[T]{
			env:    env[T]{c: &p.core, index: i, st: &p.counters[i]},
			fullAt: math.MaxInt64,
			wake:   make(chan job[T], 1),
		}
		if n := p.opts.MaxQueuedTasks; n > 0 {
			w.fullAt = int64(n) * wOne
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

// finished frees the slot of a task that has ended, on the worker's
// goroutine; when nothing is queued the worker goes idle at once.
func (w *worker[T]) finished() {
	if w.state.CompareAndSwap(wOne, wIdle) { // the only unfinished task, no one waits: go idle
		w.asleep = true
		return
	}
	w.mu.Lock()
	granted := w.releaseLocked()
	if w.queue.len() == 0 {
		w.asleep = w.idleLocked()
	}
	w.mu.Unlock()
	if granted != nil {
		close(granted.ready)
	}
}

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
// slot unless the caller holds one (slotHeld). It reports false, and gives
// nothing, when the worker is stopping (err ErrStopped; the slot is freed)
// or has no free slot (err nil).
func (w *worker[T]) push(j job[T], slotHeld bool) (ok bool, err error) {
	for {
		s := w.state.Load()
		if s&wStopping != 0 {
			if slotHeld {
				w.releaseSlot()
			}
			return false, ErrStopped
		}
		n := s
		if !slotHeld {
			if s&wWaiting != 0 || s >= w.fullAt {
				return false, nil
			}
			n += wOne
		}
		if s&wIdle != 0 { // the queue is empty: hand j over directly
			if w.state.CompareAndSwap(s, n&^wIdle) {
				w.wake <- j
				return true, nil
			}
			continue
		}
		if n == s || w.state.CompareAndSwap(s, n) {
			break
		}
	}
	// The worker was busy: queue j, unless it has gone idle or begun to
	// stop since.
	w.mu.Lock()
	for {
		s := w.state.Load()
		if s&wStopping != 0 {
			granted := w.releaseLocked()
			w.mu.Unlock()
			if granted != nil {
				close(granted.ready)
			}
			return false, ErrStopped
		}
		if s&wIdle == 0 {
			w.queue.push(j)
			w.mu.Unlock()
			return true, nil
		}
		if w.state.CompareAndSwap(s, s&^wIdle) {
			w.mu.Unlock()
			w.wake <- j
			return true, nil
		}
	}
}

// acquire takes a slot, waiting while there is none, first come first
// served. It fails with ctx's error when ctx ends, and with ErrStopped when
// stop is closed, first. When noWait is set the caller is a task of this
// worker, which must end to free a slot, so it fails with ErrDeadlock
// instead of waiting.
func (w *worker[T]) acquire(ctx context.Context, stop <-chan struct{}, noWait bool) error {
	w.mu.Lock()
	w.state.Or(wWaiting) // from now on the count changes only under mu
	if w.waiters.len() == 0 {
		if w.state.Load() < w.fullAt { // a slot is free
			w.state.Add(wOne - wWaiting)
			w.mu.Unlock()
			return nil
		}
		if noWait {
			w.state.And(^int64(wWaiting))
			w.mu.Unlock()
			return ErrDeadlock
		}
	} else if noWait {
		w.mu.Unlock()
		return ErrDeadlock
	}
	g := &gateWaiter{ready: make(chan struct{})}
	w.waiters.push(g)
	w.mu.Unlock()

	var err error
	select {
	case <-g.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-stop:
		err = ErrStopped
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if g.granted {
		return nil // the slot came with the cancellation; keep it
	}
	w.waiters.remove(func(x *gateWaiter) bool { return x == g })
	if w.waiters.len() == 0 {
		w.state.And(^int64(wWaiting))
	}
	return err
}

// releaseSlot frees a slot, handing it to the oldest waiter if there is one.
func (w *worker[T]) releaseSlot() {
	w.mu.Lock()
	granted := w.releaseLocked()
	w.mu.Unlock()
	if granted != nil {
		close(granted.ready)
	}
}

// releaseLocked frees a slot. When it grants the slot to a waiter, the
// count stays and it returns the waiter, whose ready the caller must close
// after unlocking. Requires mu held.
func (w *worker[T]) releaseLocked() *gateWaiter {
	if w.waiters.len() == 0 {
		w.state.Add(-wOne)
		return nil
	}
	g := w.waiters.pop()
	g.granted = true
	if w.waiters.len() == 0 {
		w.state.And(^int64(wWaiting))
	}
	return g
}

// unfinished returns the worker's unfinished tasks: queued, handed over,
// running, or about to be pushed by a submitter holding a slot.
func (w *worker[T]) unfinished() int64 { return w.state.Load() / wOne }

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
	w.st.dispatched.Add(1)
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
		return p.workers[p.leastActive()]
	case LeastTotal:
		return p.workers[p.least(func(c *counters) int64 { return c.dispatched.Load() })]
	}
	return p.workers[(p.rr.Add(1)-1)%uint64(n)]
}

// leastActive returns the lowest worker index with the fewest unfinished
// tasks.
func (p *Pool[T]) leastActive() int {
	best, bestV := 0, p.workers[0].unfinished()
	for i := 1; i < len(p.workers); i++ {
		if v := p.workers[i].unfinished(); v < bestV {
			best, bestV = i, v
		}
	}
	return best
}

// least returns the lowest worker index whose counter is smallest.
func (c *core) least(value func(*counters) int64) int {
	best, bestV := 0, value(&c.counters[0])
	for i := 1; i < len(c.counters); i++ {
		if v := value(&c.counters[i]); v < bestV {
			best, bestV = i, v
		}
	}
	return best
}
