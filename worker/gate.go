package worker

import (
	"context"
	"sync"
)

// gate is a counting semaphore whose blocked acquirers are served first come,
// first served: a freed slot is handed to the oldest waiter, so a stream of
// new submissions never overtakes one that is waiting. It bounds a worker's
// unfinished tasks, and the tasks alive in an OnDemand pool.
type gate struct {
	mu      sync.Mutex
	free    int               // guarded by mu
	waiters ring[*gateWaiter] // guarded by mu
}

type gateWaiter struct {
	ready   chan struct{}
	granted bool // guarded by gate.mu
}

func newGate(n int) *gate { return &gate{free: n} }

// acquire takes a slot, waiting while there is none. It fails with ctx's
// error when ctx ends, and with ErrStopped when stop is closed, first.
func (g *gate) acquire(ctx context.Context, stop <-chan struct{}) error {
	g.mu.Lock()
	if g.free > 0 && g.waiters.len() == 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	w := &gateWaiter{ready: make(chan struct{})}
	g.waiters.push(w)
	g.mu.Unlock()

	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-stop:
		err = ErrStopped
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.granted {
		return nil // the slot came with the cancellation; keep it
	}
	g.waiters.remove(func(x *gateWaiter) bool { return x == w })
	return err
}

// release frees a slot, handing it to the oldest waiter if there is one.
func (g *gate) release() {
	g.mu.Lock()
	if g.waiters.len() == 0 {
		g.free++
		g.mu.Unlock()
		return
	}
	w := g.waiters.pop()
	w.granted = true
	g.mu.Unlock()
	close(w.ready)
}

// ring is a FIFO queue in a circular buffer that grows as needed and shrinks
// when mostly empty. The zero value is an empty queue.
type ring[E any] struct {
	buf  []E
	head int
	n    int
}

func (r *ring[E]) len() int { return r.n }

func (r *ring[E]) push(e E) {
	if r.n == len(r.buf) {
		r.resize(max(8, 2*len(r.buf)))
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
}

func (r *ring[E]) pop() E {
	var zero E
	e := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	if len(r.buf) > 64 && r.n < len(r.buf)/4 {
		r.resize(len(r.buf) / 2)
	}
	return e
}

// remove deletes the first element for which match is true.
func (r *ring[E]) remove(match func(E) bool) {
	for k := range r.n {
		if !match(r.buf[(r.head+k)%len(r.buf)]) {
			continue
		}
		for ; k < r.n-1; k++ {
			r.buf[(r.head+k)%len(r.buf)] = r.buf[(r.head+k+1)%len(r.buf)]
		}
		var zero E
		r.buf[(r.head+r.n-1)%len(r.buf)] = zero
		r.n--
		return
	}
}

func (r *ring[E]) resize(size int) {
	buf := make([]E, size)
	for k := range r.n {
		buf[k] = r.buf[(r.head+k)%len(r.buf)]
	}
	r.buf, r.head = buf, 0
}
