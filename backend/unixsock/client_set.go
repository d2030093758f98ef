package unixsock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// Set is a client's handle on one named set of the server; it implements
// backend.Set. It is opened lazily on each connection of the client's pool.
// A Set is safe for concurrent use.
type Set struct {
	cl     *Client
	name   string
	specs  []backend.Spec
	slot   int // the pool slot all requests on the set use
	closed atomic.Bool
	mu     sync.Mutex // serializes opening the set on a connection, and Close
}

var _ backend.Set = (*Set)(nil)
var _ backend.Backend = (*Client)(nil)

// conn returns a connection of the pool and the set's id on it, opening the
// set there first if needed.
func (s *Set) conn(ctx context.Context) (*clientConn, uint64, error) {
	cc, err := s.cl.conn(ctx, s.slot)
	if err != nil {
		return nil, 0, err
	}
	cc.mu.Lock()
	sid := cc.sets[s]
	cc.mu.Unlock()
	if sid != 0 {
		return cc, sid, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, 0, backend.ErrClosed
	}
	cc.mu.Lock()
	sid = cc.sets[s]
	cc.mu.Unlock()
	if sid != 0 {
		return cc, sid, nil
	}
	if sid, err = s.openOn(cc); err != nil {
		return nil, 0, err
	}
	cc.mu.Lock()
	cc.sets[s] = sid
	cc.mu.Unlock()
	return cc, sid, nil
}

// openOn opens the set on cc and returns its id there.
func (s *Set) openOn(cc *clientConn) (uint64, error) {
	cl, err := cc.start(&wire.Msg{Op: wire.OpOpen, Name: s.name, Specs: s.specs}, true)
	if err != nil {
		return 0, s.cl.unavailable(err)
	}
	<-cl.ch
	defer callPool.Put(cl)
	switch {
	case cl.err != nil:
		return 0, s.cl.unavailable(cl.err)
	case cl.op == wire.OpError:
		return 0, &wire.RemoteError{Code: cl.code, Text: cl.text}
	}
	return cl.num, nil
}

// closeOn closes the set of id sid on cc and waits for the answer.
func closeOn(cc *clientConn, sid uint64) {
	if cl, err := cc.start(&wire.Msg{Op: wire.OpCloseSet, SetID: sid}, true); err == nil {
		<-cl.ch
		callPool.Put(cl)
	}
}

// Acquire implements backend.Set. A waiting Acquire waits in the server; when
// ctx ends it sends a cancellation and returns ctx's error once the server
// confirms, so nothing stays taken. With a Claim, a grant that arrives after
// another set won the claim is given back and ErrClaimed returned.
func (s *Set) Acquire(ctx context.Context, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	if s.closed.Load() {
		return 0, backend.ErrClosed
	}
	if opts.Claim != nil && opts.Claim.Taken() {
		return 0, backend.ErrClaimed
	}
	cc, sid, err := s.conn(ctx)
	if err != nil {
		return 0, err
	}
	m := wire.Msg{Op: wire.OpAcquire, SetID: sid, Values: amounts}
	if opts.Wait {
		m.Flags = wire.FlagWait
		if d, ok := ctx.Deadline(); ok {
			m.Deadline = d.UnixNano()
		}
	}
	cl, err := cc.start(&m, !opts.Wait)
	if err != nil {
		return 0, s.cl.unavailable(err)
	}
	select {
	case <-cl.ch:
	case <-ctx.Done():
		cc.cancel(cl, m.ID)
		<-cl.ch
	}
	defer callPool.Put(cl)
	switch {
	case cl.err != nil:
		return 0, s.cl.unavailable(cl.err)
	case cl.op == wire.OpError:
		if (cl.code == wire.CodeCanceled || cl.code == wire.CodeDeadlineExceeded) && ctx.Err() != nil {
			return 0, backend.ContextError(ctx)
		}
		return 0, &wire.RemoteError{Code: cl.code, Text: cl.text}
	}
	lease := backend.Lease(cc.id<<leaseBits | cl.num)
	if opts.Claim != nil && !opts.Claim.TryClaim() {
		s.giveBack(lease, amounts)
		return 0, backend.ErrClaimed
	}
	return lease, nil
}

// giveBack ends a lease granted too late: resources return and rate units
// are refunded where the algorithm refunds.
func (s *Set) giveBack(lease backend.Lease, amounts []int64) {
	delta := make([]int64, len(amounts))
	for i, n := range amounts {
		if s.specs[i].Kind == backend.Rate {
			delta[i] = -n
		}
	}
	_ = s.Settle(context.Background(), lease, amounts, delta, true, nil)
}

// Settle implements backend.Set. Non-final deltas of zero cost nothing. A
// final Settle that has no refund to report back is pipelined: it returns
// once the request is on its way, and every later request of this client on
// the set is handled after it (they share a connection). When the lease's
// connection has dropped, the server has already released what it held: a
// final Settle then returns nil unless it had overage to charge.
func (s *Set) Settle(ctx context.Context, lease backend.Lease, held, delta []int64, final bool, refunded []int64) error {
	charge, change, refund := false, false, false
	for _, d := range delta {
		charge, change, refund = charge || d > 0, change || d != 0, refund || d < 0
	}
	if !final && !change {
		return nil
	}
	lost := func(err error) error {
		if final && !charge {
			return nil
		}
		return s.cl.unavailable(fmt.Errorf("%w; usage not charged: %w", ErrConnLost, err))
	}
	cc := s.cl.connByID(uint64(lease) >> leaseBits)
	if cc == nil {
		return lost(errors.New("lease of a closed connection"))
	}
	m := wire.Msg{Op: wire.OpSettle, Lease: uint64(lease) & (1<<leaseBits - 1), Values: delta}
	if final {
		m.Flags = wire.FlagFinal
		if refunded == nil || !refund {
			m.Flags |= wire.FlagQuiet
			if err := cc.post(&m); err != nil {
				return lost(err)
			}
			return nil
		}
	}
	cl, err := cc.start(&m, true)
	if err != nil {
		return lost(err)
	}
	if err := s.await(ctx, cl); err != nil {
		return err
	}
	defer callPool.Put(cl)
	switch {
	case cl.err != nil:
		return lost(cl.err)
	case cl.op == wire.OpError:
		return &wire.RemoteError{Code: cl.code, Text: cl.text}
	}
	if refunded != nil {
		copy(refunded, cl.vals)
	}
	return nil
}

// await waits for a prompt reply or ctx; a call abandoned to ctx is left to
// the garbage collector.
func (s *Set) await(ctx context.Context, cl *call) error {
	select {
	case <-cl.ch:
		return nil
	case <-ctx.Done():
		return backend.ContextError(ctx)
	}
}

// Stats implements backend.Set: it reports the server's view, which covers
// every process. It works after Close too.
func (s *Set) Stats(ctx context.Context) ([]backend.SpecStats, error) {
	if s.closed.Load() {
		cc, err := s.cl.conn(ctx, s.slot)
		if err != nil {
			return nil, err
		}
		sid, err := s.openOn(cc) // a view of its own, closed again at once
		if err != nil {
			return nil, err
		}
		defer closeOn(cc, sid)
		return s.statsOn(ctx, cc, sid)
	}
	cc, sid, err := s.conn(ctx)
	if err != nil {
		return nil, err
	}
	return s.statsOn(ctx, cc, sid)
}

func (s *Set) statsOn(ctx context.Context, cc *clientConn, sid uint64) ([]backend.SpecStats, error) {
	cl, err := cc.start(&wire.Msg{Op: wire.OpStats, SetID: sid}, true)
	if err != nil {
		return nil, s.cl.unavailable(err)
	}
	if err := s.await(ctx, cl); err != nil {
		return nil, err
	}
	defer callPool.Put(cl)
	switch {
	case cl.err != nil:
		return nil, s.cl.unavailable(cl.err)
	case cl.op == wire.OpError:
		return nil, &wire.RemoteError{Code: cl.code, Text: cl.text}
	}
	return append([]backend.SpecStats(nil), cl.stats...), nil
}

// Close implements backend.Set: the server wakes this client's waiters on
// the set with backend.ErrClosed; later acquisitions fail with it. Granted
// leases can still be settled. Waiters of other clients are not affected.
func (s *Set) Close() error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	type opened struct {
		cc  *clientConn
		sid uint64
	}
	var open []opened
	for i := range s.cl.slots {
		cc := s.cl.slots[i].conn.Load()
		if cc == nil || i != s.slot {
			continue
		}
		cc.mu.Lock()
		if sid := cc.sets[s]; sid != 0 {
			open = append(open, opened{cc, sid})
			delete(cc.sets, s)
		}
		cc.mu.Unlock()
	}
	s.mu.Unlock()
	for _, o := range open {
		closeOn(o.cc, o.sid)
	}
	return nil
}
