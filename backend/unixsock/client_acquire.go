package unixsock

import (
	"context"
	"slices"
	"time"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// acquireCall is one Acquire sent to the server, awaiting its reply.
type acquireCall struct {
	s        *clientSet
	b        *binding // the set as open on the connection the request went over
	cl       *call
	id       uint64
	amounts  []int64
	opts     backend.AcquireOptions
	queuedAt time.Time // when the server said it queued the request; zero if it did not
}

// finish waits for the reply (see Acquire) and turns it into the result.
func (a *acquireCall) finish(ctx context.Context) (backend.Lease, error) {
	if !a.await(ctx) {
		// ctx ended and the server did not answer the cancellation within
		// cancelGrace (it is stalled): return by the deadline, and leave
		// the answer to a goroutine that gives back a grant that comes all
		// the same.
		a.amounts = slices.Clone(a.amounts) // the caller's, reused once it returns
		go a.abandonCanceled()
		return 0, backend.ContextError(ctx)
	}
	cl := a.cl
	defer cl.free()
	if r := a.opts.Report; r != nil {
		if !a.queuedAt.IsZero() {
			r.Waited, r.Duration = true, time.Since(a.queuedAt)
		}
		if cl.err == nil && cl.op == wire.OpRefused || r.Waited {
			r.Blocker = int(cl.spec)
		}
	}
	if err := cl.outcome(); err != nil {
		if cl.err == nil && (cl.code == wire.CodeCanceled || cl.code == wire.CodeDeadlineExceeded) && ctx.Err() != nil {
			return 0, backend.ContextError(ctx)
		}
		return 0, err
	}
	lease := backend.Lease(a.b.cc.id<<leaseBits | cl.num)
	a.b.grant(a.s)
	switch {
	case a.opts.Wait && ctx.Err() != nil && a.s.refundable(a.amounts):
		// ctx ended while the grant was on its way, perhaps before a release
		// of this client that made the grant possible overtook the
		// cancellation: the waiter takes nothing. A grant of a limit that
		// never refunds (SlidingWindow, FixedWindow, LeakyBucket) could not
		// be given back without spending it: the server granted before it
		// heard of the cancellation, so the caller gets the grant, as if it
		// had come first.
		a.s.giveBack(lease, a.amounts)
		return 0, backend.ContextError(ctx)
	case a.opts.Claim != nil && !a.opts.Claim.TryClaim():
		a.s.giveBack(lease, a.amounts)
		return 0, backend.ErrClaimed
	}
	return lease, nil
}

// await waits until the call is answered: reading the reply itself when no
// other goroutine reads, taking the server's Queued notice on the way, and
// cancelling the request in the server when ctx ends first. It returns
// false when the server leaves that cancellation unanswered for cancelGrace.
func (a *acquireCall) await(ctx context.Context) bool {
	res := a.b.cc.readFor(ctx, a.cl)
	done := ctx.Done()
	var grace <-chan time.Time
	for res != turnAnswered && res != turnFailed {
		switch res {
		case turnQueued:
			a.queued()
		case turnCtxDone:
			a.b.cc.cancel(a.cl, a.id)
			done = nil
			t := time.NewTimer(cancelGrace)
			defer t.Stop()
			grace = t.C
		}
		select {
		case <-a.cl.ch:
			res = turnAnswered
		case <-a.cl.queued:
			res = turnQueued
		case <-done:
			res = turnCtxDone
		case <-grace:
			return false
		}
	}
	if res == turnFailed {
		<-a.cl.ch
	}
	select {
	case <-a.cl.queued: // queued, then answered before the notice was taken
		a.queued()
	default:
	}
	return true
}

// cancelGrace is how long a call whose ctx ended waits for the server to
// answer its cancellation before it returns all the same.
const cancelGrace = 50 * time.Millisecond

// abandonCanceled waits for the answer of a request cancelled by its
// caller's ctx and gives back a grant that arrives all the same.
func (a *acquireCall) abandonCanceled() {
	<-a.cl.ch
	if a.cl.outcome() == nil {
		a.b.grant(a.s)
		a.s.giveBack(backend.Lease(a.b.cc.id<<leaseBits|a.cl.num), a.amounts)
	}
	a.cl.free()
}

// queued records that the server queued the request and calls OnWait.
func (a *acquireCall) queued() {
	a.queuedAt = time.Now()
	if a.opts.OnWait == nil {
		return
	}
	returned := false
	defer func() {
		if !returned { // OnWait called runtime.Goexit: nobody will take the grant
			a.abandon()
		}
	}()
	func() {
		defer func() { _ = recover() }() // a hook's panic does not cost the wait
		a.opts.OnWait(int(a.cl.spec))
	}()
	returned = true
}

// abandon ends a wait whose caller is gone: it cancels the request and
// gives back a grant that arrives all the same.
func (a *acquireCall) abandon() {
	a.b.cc.cancel(a.cl, a.id)
	<-a.cl.ch
	if a.cl.outcome() == nil {
		a.b.grant(a.s)
		a.s.giveBack(backend.Lease(a.b.cc.id<<leaseBits|a.cl.num), a.amounts)
	}
	a.cl.free()
}
