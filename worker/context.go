package worker

import (
	"context"
	"time"
)

// stopCtx is the context of a task submitted with a context that never ends
// (such as context.Background): the submitter's values, and the pool's stop
// signal as Done. It saves the allocations of WithCancel and AfterFunc on the
// hot path.
//
// Its Value hands out the pool's cancelCtx for the context package's private
// key (the pool's context holds no other value), so context.Cause reports
// ErrStopped and contexts derived from it register with the pool's context
// instead of starting a goroutine.
type stopCtx struct {
	parent context.Context // the submitter's; Done() == nil
	stop   context.Context // the pool's; cancelled with ErrStopped
}

func (c *stopCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }
func (c *stopCtx) Done() <-chan struct{}       { return c.stop.Done() }
func (c *stopCtx) Err() error                  { return c.stop.Err() }

func (c *stopCtx) Value(key any) any {
	if v := c.stop.Value(key); v != nil {
		return v
	}
	return c.parent.Value(key)
}

func (c *stopCtx) String() string { return "worker.taskContext" }

// taskContext returns the context a task runs under: parent, ended also when
// the pool stops without draining, with cause ErrStopped. The caller calls
// release, when not nil, after the task. store is where the cheap form lives.
func taskContext(parent, stop context.Context, store *stopCtx) (ctx context.Context, release func()) {
	if parent.Done() == nil {
		*store = stopCtx{parent: parent, stop: stop}
		return store, nil
	}
	ctx, cancel := context.WithCancelCause(parent)
	unhook := context.AfterFunc(stop, func() { cancel(ErrStopped) })
	return ctx, func() {
		unhook()
		cancel(nil)
	}
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
