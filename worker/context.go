package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// taskContext is the context a task runs under: the submitter's context,
// cancelled with cause ErrStopped when the pool halts (stops without
// draining), and cancelled when the task ends. Its value for ownerKey names
// the task's pool and worker, so that Submit can tell a submission from
// inside a task that could only wait for that task. It lives inside the
// task's call.
//
// The context.WithCancelCause behind it is made on first use by Done, by
// Value of another key than ownerKey, or by Err once something has ended
// it: a task that never waits on its context costs no allocation for it.
// A cancellation that comes first is kept in state and applied when the
// context is made, so the task sees the same context either way.
type taskContext struct {
	parent context.Context // the submitter's
	owner  taskOwner
	ended  atomic.Bool // the task has returned

	state  atomic.Uint32           // ctxLive, ctxCanceled or ctxStopped until made, then ctxMade
	mu     sync.Mutex              // held while making the context
	ctx    context.Context         // written once before state becomes ctxMade
	cancel context.CancelCauseFunc // written once before state becomes ctxMade
}

// The states of a taskContext.
const (
	ctxLive     = iota // not made, not cancelled
	ctxCanceled        // not made, cancelled because the task ended
	ctxStopped         // not made, cancelled because the pool halted
	ctxMade            // ctx and cancel are set
)

// taskOwner names the worker a task runs on.
type taskOwner struct {
	c     *core // the task's pool
	index int   // the task's worker index
}

// ownerKey is the context key of a task's *taskContext.
type ownerKey struct{}

// Deadline returns the submitter's deadline, which the task's context
// shares.
func (tc *taskContext) Deadline() (time.Time, bool) { return tc.parent.Deadline() }

// Done returns the channel closed when the task's context ends.
func (tc *taskContext) Done() <-chan struct{} { return tc.context().Done() }

// Err returns why the task's context ended, or nil while it has not.
func (tc *taskContext) Err() error {
	if tc.state.Load() == ctxLive && tc.parent.Err() == nil {
		return nil // nothing has ended it: no need to make it
	}
	return tc.context().Err()
}

// Value returns tc itself for ownerKey, and the values of the submitter's
// context (and those context.WithCancelCause adds) otherwise.
func (tc *taskContext) Value(key any) any {
	if key == (ownerKey{}) {
		return tc
	}
	return tc.context().Value(key)
}

// context returns the context.WithCancelCause of the submitter's context,
// making it on first use, cancelled already when the task has been.
func (tc *taskContext) context() context.Context {
	if tc.state.Load() == ctxMade {
		return tc.ctx
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.state.Load() == ctxMade {
		return tc.ctx
	}
	tc.ctx, tc.cancel = context.WithCancelCause(tc.parent)
	for {
		// Only cancelWith changes state meanwhile, and only from ctxLive.
		s := tc.state.Load()
		if tc.state.CompareAndSwap(s, ctxMade) {
			switch s {
			case ctxCanceled:
				tc.cancel(context.Canceled)
			case ctxStopped:
				tc.cancel(ErrStopped)
			}
			return tc.ctx
		}
	}
}

// cancelWith ends the task's context, unless it has ended already: with
// cause ErrStopped when stopped, and context.Canceled otherwise.
func (tc *taskContext) cancelWith(stopped bool) {
	cause, s := error(context.Canceled), uint32(ctxCanceled)
	if stopped {
		cause, s = ErrStopped, ctxStopped
	}
	if !tc.state.CompareAndSwap(ctxLive, s) && tc.state.Load() == ctxMade {
		tc.cancel(cause)
	}
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

// taskSlot is where the task running at one worker index leaves its
// context, so that halt ends it at once. Each index runs one task at a time:
// a Goroutine worker, an OnDemand slot, the Sync worker.
type taskSlot struct {
	running atomic.Pointer[taskContext] // nil while no task runs
}

// inFlight returns 1 while a task runs at the slot's index, retry waits
// included, and 0 otherwise.
func (s *taskSlot) inFlight() int {
	if s.running.Load() != nil {
		return 1
	}
	return 0
}

// begin sets up the task's context, whose parent is set, and registers it in
// the slot of its worker index. It fails with ErrStopped, and the task must
// not run, when the pool has halted. Call end after the task.
func (tc *taskContext) begin(c *core, index int) error {
	tc.owner = taskOwner{c: c, index: index}
	s := &c.slots[index]
	s.running.Store(tc)
	// halt sets halting, then reads the slots; begin writes the slot, then
	// reads halting. So either halt sees this task, or this task sees halt.
	if c.halting.Load() {
		return ErrStopped
	}
	return nil
}

// end unregisters the task and cancels its context; contexts derived from it
// may outlive it.
func (tc *taskContext) end() {
	tc.ended.Store(true)
	tc.owner.c.slots[tc.owner.index].running.Store(nil)
	tc.cancelWith(false)
}

// halt makes the pool start no more tasks, and ends the contexts of those
// running, with cause ErrStopped, before it returns.
func (c *core) halt() {
	c.halting.Store(true)
	for i := range c.slots {
		if tc := c.slots[i].running.Load(); tc != nil {
			tc.cancelWith(true) // a task that has ended since ignores it
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
