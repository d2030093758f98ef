package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concurry/concurry"
)

// taskScope is what one task runs with: its context and its limiter, both
// this one value (it implements context.Context here and concurry.Limiter in
// limiter.go). The task may keep either past its end, so a scope is never
// reused; it lives inside the task's call.
//
// As a context it is the submitter's context, cancelled with cause
// ErrStopped when the pool halts (stops without draining), and cancelled
// when the task ends. Its value for ownerKey is the scope itself, so that
// Submit can tell a submission from inside a task that could only wait for
// that task. The context.WithCancelCause behind it is made on first use by
// Done, by Value of another key than ownerKey, or by Err once something has
// ended it: a task that never waits on its context costs no allocation for
// it. A cancellation that comes first is applied when the context is made,
// so the task sees the same context either way: the task's end is its slot
// no longer holding the scope, and a halt is kept in state.
type taskScope struct {
	parent context.Context // the submitter's
	c      *core           // the task's pool
	index  int32           // the task's worker index; set by begin

	// state holds, in its low bits, whether halt has ended the context
	// (ctxLive until then) and, in bit scopeTracked, whether the limiter
	// holds acquisitions.
	state atomic.Uint32
	made  atomic.Pointer[madeContext] // nil until the context is made

	held []*concurry.Acquisition // guarded by the slot's mu; see limiter.go
	buf  [1]*concurry.Acquisition
}

// The states of a scope's context, in its state's low bits.
const (
	ctxLive     = iota // not cancelled by halt (the task may have ended: see ended)
	ctxStopping        // halt is deciding whether the task ended first; halt applies what it decides
	ctxStopped         // cancelled because the pool halted while the task ran
	ctxMask     = 3

	scopeTracked = 4 // the scope's limiter holds acquisitions
)

// madeContext is a scope's context.WithCancelCause, once made.
type madeContext struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// ownerKey is the context key of a task's *taskScope.
type ownerKey struct{}

// Deadline returns the submitter's deadline, which the task's context
// shares.
func (s *taskScope) Deadline() (time.Time, bool) { return s.parent.Deadline() }

// Done returns the channel closed when the task's context ends.
func (s *taskScope) Done() <-chan struct{} { return s.context().Done() }

// Err returns why the task's context ended, or nil while it has not.
func (s *taskScope) Err() error {
	if s.made.Load() == nil && s.state.Load()&ctxMask == ctxLive && !s.ended() && s.parent.Err() == nil {
		return nil // nothing has ended it: no need to make it
	}
	return s.context().Err()
}

// Value returns s itself for ownerKey, and the values of the submitter's
// context (and those context.WithCancelCause adds) otherwise.
func (s *taskScope) Value(key any) any {
	if key == (ownerKey{}) {
		return s
	}
	return s.context().Value(key)
}

// context returns the context.WithCancelCause of the submitter's context,
// making it on first use, cancelled already when the task has been.
func (s *taskScope) context() context.Context {
	if m := s.made.Load(); m != nil {
		return m.ctx
	}
	ctx, cancel := context.WithCancelCause(s.parent)
	if !s.made.CompareAndSwap(nil, &madeContext{ctx, cancel}) {
		cancel(nil) // another call made it first: leave the submitter's context
		return s.made.Load().ctx
	}
	// end and halt record what ended the context, then look for it; this
	// looks for what ended it once the context is there. One of the two
	// applies it.
	s.applyCause()
	return ctx
}

// ended reports whether the task has ended: its slot holds it only while
// it runs (the scope reaches no one before).
func (s *taskScope) ended() bool { return s.c.slots[s.index].running.Load() != s }

// stop ends the running task's context with cause ErrStopped, for halt,
// unless the task has ended first. It marks the state first, then looks at
// the slot: if the task still runs, the mark came before its end, which it
// confirms; if not, it takes the mark back, and the end counts.
func (s *taskScope) stop() {
	for {
		st := s.state.Load()
		if st&ctxMask != ctxLive {
			return // stopped already, or another halt is deciding
		}
		if s.state.CompareAndSwap(st, st|ctxStopping) {
			break
		}
	}
	to := uint32(ctxStopped)
	if s.ended() {
		to = ctxLive
	}
	for {
		st := s.state.Load()
		if s.state.CompareAndSwap(st, st&^ctxMask|to) {
			break
		}
	}
	s.applyCause()
}

// applyCause cancels the made context, if it is made, with what ended it:
// ErrStopped when halt did, context.Canceled when the task ended; nothing
// while halt decides (it applies what it decides) or while the task runs.
// Cancelling again does nothing.
func (s *taskScope) applyCause() {
	m := s.made.Load()
	if m == nil {
		return
	}
	switch s.state.Load() & ctxMask {
	case ctxStopped:
		m.cancel(ErrStopped)
	case ctxLive:
		if s.ended() {
			m.cancel(context.Canceled)
		}
	}
}

// ownerOf returns the running task whose context ctx is or derives from, or
// nil.
func ownerOf(ctx context.Context) *taskScope {
	s, _ := ctx.Value(ownerKey{}).(*taskScope)
	if s == nil || s.c == nil || s.c.slots[s.index].running.Load() != s {
		return nil // not a task's, or the task has ended
	}
	return s
}

// taskSlot is where the task running at one worker index leaves its scope,
// so that halt ends its context at once. Each index runs one task at a time:
// a Goroutine worker, an OnDemand slot, the Sync worker.
type taskSlot struct {
	running atomic.Pointer[taskScope] // nil while no task runs
	mu      sync.Mutex                // guards the held acquisitions of the index's scopes
}

// inFlight returns 1 while a task runs at the slot's index, retry waits
// included, and 0 otherwise.
func (s *taskSlot) inFlight() int {
	if s.running.Load() != nil {
		return 1
	}
	return 0
}

// begin registers the task's scope, whose parent and pool are set, in the
// slot of its worker index, so that halt can end its context. Call end after
// the task.
func (s *taskScope) begin(index int) {
	s.index = int32(index)
	s.c.slots[index].running.Store(s)
}

// end unregisters the task, which ends its context (see ended), and
// cancels the context if it is made; contexts derived from it may outlive
// it.
func (s *taskScope) end() {
	s.c.slots[s.index].running.Store(nil)
	s.applyCause()
}

// halt makes the pool start no more tasks, and ends the contexts of those
// running, with cause ErrStopped, before it returns.
func (c *core) halt() {
	c.halting.Store(true)
	for i := range c.slots {
		if s := c.slots[i].running.Load(); s != nil {
			s.stop() // a task that has ended since ignores it
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
