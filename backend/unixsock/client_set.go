package unixsock

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// clientSet is a client's handle on one named set of the server; it
// implements backend.Set and backend.FaultCounter. It is open on one
// connection at a time (the pool slot of its name) and opens itself again on
// a new connection when that one drops. It is safe for concurrent use.
type clientSet struct {
	cl      *Client
	name    string
	specs   []backend.Spec
	slot    int
	closed  atomic.Bool
	lost    atomic.Int64  // holdings that ended with their connection
	opening chan struct{} // holds a token while a goroutine (re)opens or closes the set
	b       atomic.Pointer[binding]
}

// binding is the set as opened on one connection, with the id the server
// gave it there.
type binding struct {
	cc  *clientConn
	sid uint64

	mu   sync.Mutex
	held int64 // guarded by mu; leases granted here and not yet released
	gone bool  // guarded by mu; the connection dropped and held was counted lost
}

var (
	_ backend.Set          = (*clientSet)(nil)
	_ backend.FaultCounter = (*clientSet)(nil)
	_ backend.Backend      = (*Client)(nil)
)

func newClientSet(c *Client, name string, specs []backend.Spec) *clientSet {
	return &clientSet{cl: c, name: name, specs: specs, slot: c.slotOf(name), opening: make(chan struct{}, 1)}
}

// bind returns the set's binding on a live connection, opening the set on
// the slot's connection (reconnecting if need be) when the last one dropped.
func (s *clientSet) bind(ctx context.Context) (*binding, error) {
	if b := s.b.Load(); b != nil && !b.cc.dead.Load() {
		return b, nil
	}
	select {
	case s.opening <- struct{}{}:
	case <-ctx.Done():
		return nil, backend.ContextError(ctx)
	}
	defer func() { <-s.opening }()
	old := s.b.Load()
	if old != nil && !old.cc.dead.Load() {
		return old, nil // another goroutine opened it meanwhile
	}
	if s.closed.Load() {
		return nil, backend.ErrClosed
	}
	if old != nil {
		old.retire(s)
	}
	cc, err := s.cl.conn(ctx, s.slot)
	if err != nil {
		return nil, err
	}
	sid, err := s.openOn(ctx, cc)
	if err != nil {
		return nil, err
	}
	b := &binding{cc: cc, sid: sid}
	s.b.Store(b)
	return b, nil
}

// openOn opens the set on cc and returns its id there.
func (s *clientSet) openOn(ctx context.Context, cc *clientConn) (uint64, error) {
	if err := cc.reserveSet(); err != nil {
		return 0, err
	}
	cl, err := cc.request(ctx, &wire.Msg{Op: wire.OpOpen, Name: s.name, Specs: s.specs})
	if err != nil {
		cc.releaseSet(0)
		return 0, err
	}
	defer cl.free()
	cc.opened(cl.num, s)
	return cl.num, nil
}

// closeOn closes the set of id sid on cc and waits for the answer (which
// the watchdog bounds by Options.Timeout).
func closeOn(cc *clientConn, sid uint64) {
	if cl, err := cc.request(context.Background(), &wire.Msg{Op: wire.OpCloseSet, SetID: sid}); err == nil {
		cl.free()
	}
	cc.releaseSet(sid)
}

// view runs f with a connection the set is open on: its binding, or after
// Close a view of its own, closed again when f returns.
func (s *clientSet) view(ctx context.Context, f func(cc *clientConn, sid uint64) error) error {
	if !s.closed.Load() {
		b, err := s.bind(ctx)
		if !errors.Is(err, backend.ErrClosed) {
			if err != nil {
				return err
			}
			return f(b.cc, b.sid)
		}
	}
	cc, err := s.cl.conn(ctx, s.slot)
	if err != nil {
		return err
	}
	sid, err := s.openOn(ctx, cc)
	if err != nil {
		return err
	}
	defer closeOn(cc, sid)
	return f(cc, sid)
}

// grant records a lease granted on b.
func (b *binding) grant(s *clientSet) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gone {
		s.lost.Add(1)
		return
	}
	b.held++
}

// end records the release of a lease granted on b. It returns false when
// the connection has dropped: the lease was lost (and is counted so).
func (b *binding) end(s *clientSet) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.retireLocked(s)
	if b.gone {
		return false
	}
	b.held--
	return true
}

// retire counts the leases of b lost when its connection has dropped.
func (b *binding) retire(s *clientSet) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.retireLocked(s)
}

// retireLocked is retire. Requires b.mu held.
func (b *binding) retireLocked(s *clientSet) {
	if !b.gone && b.cc.dead.Load() {
		b.gone = true
		s.lost.Add(b.held)
	}
}

// Faults implements backend.FaultCounter: LeasesLost counts the holdings
// that ended because their connection dropped (the server restarted, or
// dropped this client) while their holder still held them.
func (s *clientSet) Faults() backend.Faults {
	if b := s.b.Load(); b != nil {
		b.retire(s)
	}
	return backend.Faults{LeasesLost: s.lost.Load()}
}

// Acquire implements backend.Set. A waiting Acquire waits in the server; when
// ctx ends it sends a cancellation and returns ctx's error once the server
// confirms, so nothing stays taken. A grant the server made before the
// cancellation reached it is given back when every rate limit it took
// refunds; otherwise giving it back would spend it, so Acquire returns the
// grant, as if it had come before ctx ended. With a Claim, the server grants at most
// one of the requests sharing it, over all of its connections, so a losing
// set spends nothing. A Claim shared with sets of other backends
// (Claim.AcrossBackends: a LimitPool over several servers, or over memory
// and a server) is one the server cannot see taken: the server is then
// asked only whether the request fits, taking nothing, and the claim is
// taken here before the request is made, so that a losing set spends
// nothing either (see acquireChecked).
//
// A refusal carries the server's facts: a request that cannot be granted
// now (without Wait) or before ctx's deadline fails with a
// *backend.RefusalError naming the key that blocks it and how long until it
// would fit. When the server queues a waiting request, it says so in one
// frame (a request granted at once costs none): opts.Report then says the
// request waited and which limit blocked it, and opts.OnWait is called, in
// the caller's goroutine and outside every lock (a panic in it is
// recovered; if it ends the goroutine, the wait is abandoned and nothing
// stays taken).
func (s *clientSet) Acquire(ctx context.Context, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	if opts.Report != nil {
		*opts.Report = backend.AcquireReport{Blocker: -1}
	}
	if s.closed.Load() {
		return 0, backend.ErrClosed
	}
	if opts.Claim != nil && opts.Claim.Taken() {
		return 0, backend.ErrClaimed
	}
	// The server would refuse amounts outside the set: refuse them here,
	// for this request alone.
	if err := backend.CheckAmounts(s.specs, amounts); err != nil {
		return 0, err
	}
	if opts.Claim != nil && opts.Claim.AcrossBackends {
		return s.acquireChecked(ctx, amounts, opts)
	}
	return s.send(ctx, amounts, opts, 0)
}

// acquireChecked is Acquire with a claim shared with sets of other
// backends. The server answers a check (wire.FlagCheck: it takes nothing)
// with ErrClaimed when the request would be granted; then the claim is taken
// here, and only then the request made. A set that loses the claim has taken
// nothing. One whose units went to another request between the check and
// the request keeps waiting for them (when opts.Wait), holding the claim, so
// no other set of the pool grants meanwhile.
func (s *clientSet) acquireChecked(ctx context.Context, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	check := opts
	check.Claim = nil
	switch lease, err := s.send(ctx, amounts, check, wire.FlagCheck); {
	case err == nil: // a check is never granted; were it, it is a grant under the claim
		if opts.Claim.TryClaim() {
			return lease, nil
		}
		s.giveBack(lease, amounts)
		return 0, backend.ErrClaimed
	case !errors.Is(err, backend.ErrClaimed):
		return 0, err
	}
	if !opts.Claim.TryClaim() {
		return 0, backend.ErrClaimed
	}
	then := opts
	then.Claim, then.Report, then.OnWait = nil, nil, nil // the check reported the wait, if any
	return s.send(ctx, amounts, then, 0)
}

// send sends one Acquire request with flags (besides FlagWait, set from
// opts.Wait) and waits for its outcome.
func (s *clientSet) send(ctx context.Context, amounts []int64, opts backend.AcquireOptions, flags uint8) (backend.Lease, error) {
	b, err := s.bind(ctx)
	if err != nil {
		return 0, err
	}
	m := wire.Msg{Op: wire.OpAcquire, SetID: b.sid, Values: amounts, Flags: flags}
	kind := callPrompt
	if opts.Wait {
		m.Flags, kind = m.Flags|wire.FlagWait, callWait
		if d, ok := ctx.Deadline(); ok {
			m.Deadline = d.UnixNano()
		}
	}
	if opts.Claim != nil {
		m.Claim = tokenOf(opts.Claim)
	}
	cl, err := b.cc.start(&m, kind)
	if err != nil {
		return 0, err
	}
	a := acquireCall{s: s, b: b, cl: cl, id: m.ID, amounts: amounts, opts: opts}
	return a.finish(ctx)
}

// refundable reports whether giving back a grant of amounts leaves the set
// as if it had never been made: every rate limit it took refunds.
func (s *clientSet) refundable(amounts []int64) bool {
	for i, n := range amounts {
		if n > 0 && s.specs[i].Kind == backend.Rate && !s.specs[i].Algorithm.Refunds() {
			return false
		}
	}
	return true
}

// giveBack ends a lease granted too late: resources return and rate units
// are refunded where the algorithm refunds.
func (s *clientSet) giveBack(lease backend.Lease, amounts []int64) {
	delta := make([]int64, len(amounts))
	for i, n := range amounts {
		if s.specs[i].Kind == backend.Rate {
			delta[i] = -n
		}
	}
	_ = s.Settle(context.Background(), lease, amounts, delta, true, nil)
}
