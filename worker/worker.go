package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
)

// worker is one actor of a Goroutine pool: a goroutine that owns its value
// and runs the tasks of its queue one at a time, in order.
type worker[T any] struct {
	env[T]
	gate *gate // bounds unfinished tasks, under mu; nil when the queue is unbounded

	mu       sync.Mutex
	queue    ring[job[T]] // guarded by mu; submitted, not started
	idle     bool         // guarded by mu; the goroutine waits on wake, the queue empty
	stopping bool         // guarded by mu; take no more tasks, exit when empty
	// wake ends an idle spell: it carries the task submitted to the idle
	// worker, handed over without the queue, or nil when the worker is to
	// look at its state (it is stopping). One send per idle spell, so it
	// never blocks.
	wake chan job[T]
	// asleep is set, by the worker's goroutine only, when it went idle as
	// it freed its last task's slot: its next look for a task waits on wake.
	asleep bool
}

// startWorkers starts every worker and waits until each has built its value.
func (p *Pool[T]) startWorkers(ctx context.Context) error {
	ready := make(chan error, p.opts.MaxWorkers)
	p.workers = make([]*worker[T], p.opts.MaxWorkers)
	for i := range p.workers {
		w := &worker[T]{
			env:  env[T]{c: &p.core, index: i, st: &p.counters[i]},
			wake: make(chan job[T], 1),
		}
		if n := p.opts.MaxQueuedTasks; n > 0 {
			w.gate = newGate(n, &w.mu)
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
// goroutine; when nothing is queued the worker goes idle at once, in the
// same critical section.
func (w *worker[T]) finished() {
	w.st.unfinished.Add(-1)
	var granted *gateWaiter
	w.mu.Lock()
	if w.gate != nil {
		granted = w.gate.releaseLocked()
	}
	if w.queue.len() == 0 && !w.stopping {
		w.idle, w.asleep = true, true
	}
	w.mu.Unlock()
	if granted != nil {
		close(granted.ready)
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
		if w.stopping {
			w.mu.Unlock()
			return nil
		}
		w.idle = true
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

// push appends j to the queue, taking a slot of the gate unless the caller
// holds one (slotHeld). It reports false, and queues nothing, when the
// worker is stopping (err ErrStopped) or has no free slot (err nil).
func (w *worker[T]) push(j job[T], slotHeld bool) (ok bool, err error) {
	w.mu.Lock()
	if w.stopping {
		w.mu.Unlock()
		return false, ErrStopped
	}
	if !slotHeld && w.gate != nil && !w.gate.tryLocked() {
		w.mu.Unlock()
		return false, nil
	}
	w.st.unfinished.Add(1)
	idle := w.idle
	if idle { // the queue is empty: hand j over directly
		w.idle = false
	} else {
		w.queue.push(j)
	}
	w.mu.Unlock()
	if idle {
		w.wake <- j
	}
	return true, nil
}

// stop makes the worker exit once its queue is empty.
func (w *worker[T]) stop() {
	w.mu.Lock()
	w.stopping = true
	wake := w.idle
	w.idle = false
	w.mu.Unlock()
	if wake {
		w.wake <- nil
	}
}

// enqueue gives j to the worker the balancing picks, waiting for room. own
// is the task of p submitting j, or nil: a task that submits to its own full
// worker could only wait for itself, so it fails with ErrDeadlock.
func (p *Pool[T]) enqueue(ctx context.Context, j job[T], own *taskScope) error {
	w := p.pick()
	ok, err := w.push(j, false)
	if !ok && err == nil { // full: wait for a slot, first come first served
		if err = w.gate.acquire(ctx, p.closing, own != nil && int(own.index) == w.index); err != nil {
			return err
		}
		if ok, err = w.push(j, true); !ok {
			w.gate.release()
		}
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
		return p.workers[p.least(func(c *counters) int64 { return c.unfinished.Load() })]
	case LeastTotal:
		return p.workers[p.least(func(c *counters) int64 { return c.dispatched.Load() })]
	}
	return p.workers[(p.rr.Add(1)-1)%uint64(n)]
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
