package unixsock

import (
	"context"
	"errors"
	"fmt"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// errOldConn is the cause of a lease lost with a connection the set has
// since replaced.
var errOldConn = errors.New("the connection that held it dropped")

// Settle implements backend.Set. Non-final deltas of zero cost nothing. A
// final Settle that has no refund to report back is pipelined: it returns
// once the request is on its way, and every later request of this client on
// the set is handled after it (they share a connection).
//
// When the lease's connection has dropped, the server has already released
// what it held, and Settle returns an error matching backend.ErrLeaseLost
// (and ErrConnLost): another holder may have had its resources meanwhile. It
// first charges the reported rate usage to the set of the same name,
// reconnecting if need be — the overage when the same server still runs,
// all of the usage when a new server took over (it never saw the grant) —
// and the error says whether that was done; if it could not be, the error
// also wraps the reason.
func (s *clientSet) Settle(ctx context.Context, lease backend.Lease, held, delta []int64, final bool, refunded []int64) error {
	charge, change, refund := false, false, false
	for _, d := range delta {
		charge, change, refund = charge || d > 0, change || d != 0, refund || d < 0
	}
	if !final && !change {
		return nil
	}
	connID := uint64(lease) >> leaseBits
	b := s.b.Load()
	switch {
	case b == nil || b.cc.id != connID:
		return s.settleLost(ctx, connID, held, delta, errOldConn)
	case final && !b.end(s):
		return s.settleLost(ctx, connID, held, delta, b.cc.failure())
	case !final && b.cc.dead.Load():
		b.retire(s)
		return s.settleLost(ctx, connID, held, delta, b.cc.failure())
	}
	m := wire.Msg{Op: wire.OpSettle, Lease: uint64(lease) & (1<<leaseBits - 1), Values: delta}
	if final {
		m.Flags = wire.FlagFinal
		if refunded == nil || !refund {
			m.Flags |= wire.FlagQuiet
			if err := b.cc.post(&m); err != nil {
				s.lost.Add(1)
				return s.settleLost(ctx, connID, held, delta, err)
			}
			return nil
		}
	}
	cl, err := b.cc.request(ctx, &m)
	if errors.Is(err, ErrConnLost) {
		if final {
			s.lost.Add(1)
		}
		return s.settleLost(ctx, connID, held, delta, err)
	}
	if err != nil {
		return err
	}
	defer cl.free()
	if refunded != nil {
		copy(refunded, cl.vals)
	}
	return nil
}

// settleLost reports a lease lost with connection connID, charging its
// reported rate usage to the set on a live connection first.
func (s *clientSet) settleLost(ctx context.Context, connID uint64, held, delta []int64, cause error) error {
	lost := fmt.Errorf("%w: %w: %v", backend.ErrLeaseLost, ErrConnLost, cause)
	usage := false
	for i, n := range held {
		usage = usage || (s.specs[i].Kind == backend.Rate && (n > 0 || delta != nil && delta[i] > 0))
	}
	if !usage {
		return fmt.Errorf("%w; the server released what it held", lost)
	}
	was, charged := s.cl.instance(connID), false
	err := s.view(ctx, func(cc *clientConn, sid uint64) error {
		amounts := make([]int64, len(s.specs))
		for i, n := range held {
			d := int64(0)
			if delta != nil {
				d = delta[i]
			}
			switch {
			case s.specs[i].Kind != backend.Rate:
			case cc.server.instance == was:
				amounts[i] = max(d, 0) // the server still counts the grant
			default:
				amounts[i] = max(n+d, 0) // a new server: all of the usage
			}
			charged = charged || amounts[i] > 0
		}
		if !charged {
			return nil
		}
		cl, err := cc.request(ctx, &wire.Msg{Op: wire.OpCharge, SetID: sid, Values: amounts})
		if err == nil {
			cl.free()
		}
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("%w; the reported usage was not charged: %w", lost, err)
	case charged:
		return fmt.Errorf("%w; the reported usage was charged to %q on reconnect", lost, s.name)
	}
	return fmt.Errorf("%w; the server released what it held and still counts the usage", lost)
}

// Stats implements backend.Set: it reports the server's view, which covers
// every process. It works after Close too.
func (s *clientSet) Stats(ctx context.Context) ([]backend.SpecStats, error) {
	var out []backend.SpecStats
	err := s.view(ctx, func(cc *clientConn, sid uint64) error {
		cl, err := cc.request(ctx, &wire.Msg{Op: wire.OpStats, SetID: sid})
		if err != nil {
			return err
		}
		defer cl.free()
		out = append([]backend.SpecStats(nil), cl.stats...)
		return nil
	})
	return out, err
}

// Close implements backend.Set: the server wakes this client's waiters on
// the set with backend.ErrClosed; later acquisitions fail with it. Granted
// leases can still be settled. Waiters of other clients are not affected.
func (s *clientSet) Close() error {
	s.opening <- struct{}{} // bounded: an open in progress ends within Options.Timeout
	defer func() { <-s.opening }()
	if s.closed.Swap(true) {
		return nil
	}
	if b := s.b.Load(); b != nil && !b.cc.dead.Load() {
		closeOn(b.cc, b.sid)
	}
	return nil
}

// CheckLease reports whether this process still holds lease: nil while the
// connection it was granted on is live (and for a lease of a set closed
// meanwhile), an error matching backend.ErrLeaseLost and ErrConnLost once
// that connection has dropped, since the server then released what it held
// and another process may have it. Usage reported to the lease is still
// charged when it is settled. CheckLease does no I/O; the root package's
// Update can call it to tell a holder early.
func (s *clientSet) CheckLease(lease backend.Lease) error {
	b := s.b.Load()
	if b != nil && b.cc.id == uint64(lease)>>leaseBits && !b.cc.dead.Load() {
		return nil
	}
	if b != nil {
		b.retire(s)
	}
	return fmt.Errorf("%w: %w: the connection to the server at %s that held it dropped; its resources may be held by another process; usage reported before Release is still charged",
		backend.ErrLeaseLost, ErrConnLost, s.cl.path)
}
