package worker

import (
	"context"
	"sync"
	"sync/atomic"
)

// taskContext is the context a task runs under: the submitter's context,
// cancelled with cause ErrStopped when the pool halts (stops without
// draining), and cancelled when the task ends. Its value for ownerKey names
// the task's pool and worker, so that Submit can tell a submission from
// inside a task that could only wait for that task. It lives inside the
// task's call.
type taskContext struct {
	context.Context // context.WithCancelCause of the submitter's context
	owner           taskOwner
	cancel          context.CancelCauseFunc
	ended           atomic.Bool // the task has returned
}

// taskOwner names the worker a task runs on.
type taskOwner struct {
	c     *core // the task's pool
	index int   // the task's worker index
}

// ownerKey is the context key of a task's *taskContext.
type ownerKey struct{}

// Value returns tc itself for ownerKey, and the submitter's values
// otherwise.
func (tc *taskContext) Value(key any) any {
	if key == (ownerKey{}) {
		return tc
	}
	return tc.Context.Value(key)
}

// ownerOf returns the running task whose context ctx is or derives from, or
// nil.
func ownerOf(ctx context.Context) *taskOwner {
	tc, _ := ctx.Value(ownerKey{}).(*taskContext)
	if tc == nil || tc.ended.Load() {
		return nil
	}
	return &tc.owner
}

// taskSlot is where the task running at one worker index leaves the cancel
// of its context, so that halt ends it at once. Each index runs one task at
// a time: a Goroutine worker, an OnDemand slot, the Sync worker.
type taskSlot struct {
	mu     sync.Mutex
	cancel context.CancelCauseFunc // guarded by mu; nil while no task runs
}

// begin derives the task's context from the submitter's and registers it in
// the slot of its worker index. It fails with ErrStopped, and the task must
// not run, when the pool has halted. Call end after the task.
func (tc *taskContext) begin(submitter context.Context, c *core, index int) error {
	ctx, cancel := context.WithCancelCause(submitter)
	tc.Context, tc.owner, tc.cancel = ctx, taskOwner{c: c, index: index}, cancel
	s := &c.slots[index]
	s.mu.Lock()
	halted := c.halting.Load() // read under mu: halt sets it before visiting the slots
	if !halted {
		s.cancel = cancel
	}
	s.mu.Unlock()
	if halted {
		return ErrStopped
	}
	return nil
}

// end unregisters the task and cancels its context; contexts derived from it
// may outlive it.
func (tc *taskContext) end() {
	tc.ended.Store(true)
	s := &tc.owner.c.slots[tc.owner.index]
	s.mu.Lock()
	s.cancel = nil
	s.mu.Unlock()
	tc.cancel(nil)
}

// halt makes the pool start no more tasks, and ends the contexts of those
// running, with cause ErrStopped, before it returns.
func (c *core) halt() {
	c.halting.Store(true)
	for i := range c.slots {
		s := &c.slots[i]
		s.mu.Lock()
		cancel := s.cancel
		s.mu.Unlock()
		if cancel != nil {
			cancel(ErrStopped) // a task that has ended since ignores it
		}
	}
}

// halted returns ErrStopped once the pool has halted, and ctxErr(ctx)
// otherwise.
func (c *core) halted(ctx context.Context) error {
	if c.halting.Load() {
		return ErrStopped
	}
	return ctxErr(ctx)
}

// ctxErr returns ErrStopped when ctx ended because its pool stopped, and
// ctx.Err() otherwise (nil while ctx is live).
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if err != nil && context.Cause(ctx) == ErrStopped {
		return ErrStopped
	}
	return err
}
