package worker

import (
	"context"
	"sync"
)

// gate is a counting semaphore whose blocked acquirers are served first come,
// first served: a freed slot is handed to the oldest waiter, so a stream of
// new submissions never overtakes one that is waiting. It bounds the tasks
// alive in an OnDemand pool. (A Goroutine worker bounds its queue with its
// state word instead; see worker.)
type gate struct {
	mu      sync.Mutex
	free    int               // guarded by mu
	waiters ring[*gateWaiter] // guarded by mu
}

type gateWaiter struct {
	ready   chan struct{}
	granted bool // guarded by the lock of what grants it: gate.mu, or worker.mu
}

// newGate returns a gate of n slots.
func newGate(n int) *gate { return &gate{free: n} }

// tryLocked takes a slot if one is free and nobody waits for one. Requires
// g.mu held.
func (g *gate) tryLocked() bool {
	if g.free > 0 && g.waiters.len() == 0 {
		g.free--
		return true
	}
	return false
}

// acquire takes a slot, waiting while there is none. It fails with ctx's
// error when ctx ends, and with ErrStopped when stop is closed, first. When
// noWait is set, the caller holds what must free a slot (it is a task of the
// gate's own worker), so it fails with ErrDeadlock instead of waiting.
func (g *gate) acquire(ctx context.Context, stop <-chan struct{}, noWait bool) error {
	g.mu.Lock()
	if g.tryLocked() {
		g.mu.Unlock()
		return nil
	}
	if noWait {
		g.mu.Unlock()
		return ErrDeadlock
	}
	return waitSlot(ctx, &g.mu, &g.waiters, stop, nil)
}

// waitSlot queues a waiter on waiters, guarded by mu, unlocks mu, and waits
// until the waiter is granted a slot (nil), ctx ends (ctx's error) or stop
// is closed (ErrStopped). A waiter that gives up leaves the queue, and then
// left, when not nil, runs under mu; one granted a slot meanwhile keeps it
// and returns nil. Requires mu held; returns with it unlocked. The gate and
// a Goroutine worker's queue bound both wait with it.
func waitSlot(ctx context.Context, mu *sync.Mutex, waiters *ring[*gateWaiter], stop <-chan struct{}, left func()) error {
	w := &gateWaiter{ready: make(chan struct{})}
	waiters.push(w)
	mu.Unlock()

	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-stop:
		err = ErrStopped
	}
	mu.Lock()
	defer mu.Unlock()
	if w.granted {
		return nil // the slot came with the cancellation; keep it
	}
	waiters.remove(func(x *gateWaiter) bool { return x == w })
	if left != nil {
		left()
	}
	return err
}

// release frees a slot, handing it to the oldest waiter if there is one.
func (g *gate) release() {
	g.mu.Lock()
	w := g.releaseLocked()
	g.mu.Unlock()
	if w != nil {
		close(w.ready)
	}
}

// releaseLocked frees a slot. When it grants the slot to a waiter, it
// returns the waiter, whose ready the caller must close after unlocking.
// Requires g.mu held.
func (g *gate) releaseLocked() *gateWaiter {
	if g.waiters.len() == 0 {
		g.free++
		return nil
	}
	w := g.waiters.pop()
	w.granted = true
	return w
}
