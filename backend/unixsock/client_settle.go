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
// final Settle is Release, except that it waits for the server's answer
// when it has a refund to report in refunded.
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
	if final {
		return s.end(ctx, lease, held, delta, refunded)
	}
	change := false
	for _, d := range delta {
		change = change || d != 0
	}
	if !change {
		return nil
	}
	connID := uint64(lease) >> leaseBits
	b := s.b.Load()
	switch {
	case b == nil || b.cc.id != connID:
		return s.settleLost(ctx, connID, held, delta, errOldConn)
	case b.cc.dead.Load():
		b.retire(s)
		return s.settleLost(ctx, connID, held, delta, b.cc.failure())
	}
	cl, err := b.cc.request(ctx, &wire.Msg{Op: wire.OpSettle, Lease: uint64(lease) & (1<<leaseBits - 1), Values: delta})
	if errors.Is(err, ErrConnLost) {
		return s.settleLost(ctx, connID, held, delta, err)
	}
	if err == nil {
		cl.free()
	}
	return err
}

// Release implements backend.Releaser: it ends the lease, applying the
// final usage delta and returning the resources in held, without waiting
// for the server. It is pipelined: every later request of this client on
// the set is handled after it (they share a connection). A release that
// changes nothing another process could see (rate limits only, exactly the
// usage granted) does not even cost a write of its own: it goes out with
// the next request, or within a tick of the client's watchdog (250ms at
// most). One that charges overage returns once it is written, so that a
// failure reaches the holder; a refund lost with its connection is counted
// in Faults (LeasesLost) and logged. Errors are those of Settle.
func (s *clientSet) Release(ctx context.Context, lease backend.Lease, held, delta []int64) error {
	return s.end(ctx, lease, held, delta, nil)
}

// Pipelined implements backend.Pipeliner: Release does not wait for the
// server.
func (s *clientSet) Pipelined() bool { return true }

// end ends a lease, pipelined unless refunded asks for the units refunded.
func (s *clientSet) end(ctx context.Context, lease backend.Lease, held, delta, refunded []int64) error {
	connID := uint64(lease) >> leaseBits
	b := s.b.Load()
	switch {
	case b == nil || b.cc.id != connID:
		return s.settleLost(ctx, connID, held, delta, errOldConn)
	case !b.end(s):
		return s.settleLost(ctx, connID, held, delta, b.cc.failure())
	}
	charge, refund := false, false
	for _, d := range delta {
		charge, refund = charge || d > 0, refund || d < 0
	}
	m := wire.Msg{Op: wire.OpSettle, Lease: uint64(lease) & (1<<leaseBits - 1), Flags: wire.FlagFinal, Values: delta}
	if refunded == nil || !refund {
		lazy := !charge && !refund && !s.holdsResources(held)
		if err := b.cc.release(&m, b.sid, lazy, charge); err != nil {
			s.lost.Add(1)
			return s.settleLost(ctx, connID, held, delta, err)
		}
		return nil
	}
	cl, err := b.cc.request(ctx, &m)
	if errors.Is(err, ErrConnLost) {
		s.lost.Add(1)
		return s.settleLost(ctx, connID, held, delta, err)
	}
	if err != nil {
		return err
	}
	copy(refunded, cl.vals)
	cl.free()
	return nil
}

// holdsResources reports whether held has units of a Resource spec.
func (s *clientSet) holdsResources(held []int64) bool {
	for i, n := range held {
		if n > 0 && s.specs[i].Kind == backend.Resource {
			return true
		}
	}
	return false
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
		return fmt.Errorf("%w; %w: %w", lost, backend.ErrUsageNotCharged, err)
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
