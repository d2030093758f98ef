package unixsock

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// serverSet is a set as one connection opened it. Its leases keep it after
// the connection closes it.
type serverSet struct {
	name  string
	specs []backend.Spec
	h     backend.Set
	e     *entry
}

// lease is one granted acquisition: what it holds and the rate usage charged.
type lease struct {
	set       *serverSet
	amounts   []int64
	accounted []int64 // owned by the reading goroutine
}

var leasePool = sync.Pool{New: func() any { return new(lease) }}

// newLease returns a lease of a copy of amounts on ss.
func newLease(ss *serverSet, amounts []int64) *lease {
	l := leasePool.Get().(*lease)
	n := len(amounts)
	if cap(l.amounts) < n {
		vals := make([]int64, 2*n)
		l.amounts, l.accounted = vals[:0:n], vals[n:n]
	}
	l.set = ss
	l.amounts = append(l.amounts[:0], amounts...)
	l.accounted = append(l.accounted[:0], amounts...)
	return l
}

// free returns an ended lease to the pool.
func (l *lease) free() {
	l.set = nil
	leasePool.Put(l)
}

// handle serves one request. A request the server refuses is answered with
// an Error; only a violation of the protocol is returned, and closes the
// connection.
func (sc *serverConn) handle(m *wire.Msg) error {
	switch m.Op {
	case wire.OpOpen:
		return sc.open(m)
	case wire.OpAcquire:
		return sc.acquire(m)
	case wire.OpCancel:
		sc.mu.Lock()
		cancel := sc.waits[m.ID]
		sc.mu.Unlock()
		if cancel != nil {
			cancel() // the wait replies; an unknown id has been answered already
		}
		return nil
	case wire.OpSettle:
		return sc.settle(m)
	case wire.OpCharge:
		return sc.charge(m)
	case wire.OpStats:
		ss, err := sc.set(m.SetID)
		if err != nil {
			return sc.answer(m.ID, err)
		}
		st, _ := ss.h.Stats(context.Background())
		sc.send(&wire.Msg{Op: wire.OpStatsOK, ID: m.ID, Stats: st})
		return nil
	case wire.OpCloseSet:
		return sc.closeSet(m)
	case wire.OpPause, wire.OpLower:
		return sc.feedback(m)
	}
	return violation("unexpected %v frame", m.Op)
}

// errSetClosed answers a request on a set this connection has closed.
var errSetClosed = fmt.Errorf("%w (on this connection)", backend.ErrClosed)

// set returns the connection's set of the given id; errSetClosed (answered,
// not fatal) when it was closed, a violation when it was never opened.
func (sc *serverConn) set(id uint64) (*serverSet, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if ss := sc.sets[id]; ss != nil {
		return ss, nil
	}
	if id != 0 && id <= sc.nextSet {
		return nil, errSetClosed // a request that crossed the set's CloseSet
	}
	return nil, violation("unknown set id %d", id)
}

// answer replies err to request id when it is errSetClosed, and returns any
// other error (a violation) to close the connection.
func (sc *serverConn) answer(id uint64, err error) error {
	if err == errSetClosed {
		sc.sendErr(id, err)
		return nil
	}
	return err
}

// refuse answers request id with err, a cap reached or a definition outside
// the contract, and logs it (at most once a second, with a count of those
// not logged).
func (sc *serverConn) refuse(id uint64, err error) {
	if n, ok := sc.srv.refusals.note(time.Now()); ok {
		sc.log.Warn("request refused", "reason", err, "refused_since_last_log", n)
	}
	sc.sendErr(id, err)
}

func (sc *serverConn) open(m *wire.Msg) error {
	err := backend.CheckName(m.Name)
	if err == nil {
		err = backend.CheckSpecs(m.Specs)
	}
	sc.mu.Lock()
	n := len(sc.sets)
	sc.mu.Unlock()
	if err == nil && n >= sc.srv.opts.MaxConnSets {
		err = fmt.Errorf("%w: %d sets open on this connection (MaxConnSets)", ErrServerLimit, n)
	}
	if err != nil {
		sc.refuse(m.ID, err)
		return nil
	}
	specs := slices.Clone(m.Specs)
	h, e, err := sc.srv.reg.open(m.Name, specs)
	if errors.Is(err, ErrServerLimit) {
		sc.refuse(m.ID, err)
		return nil
	}
	if err != nil {
		sc.sendErr(m.ID, err)
		return nil
	}
	sc.mu.Lock()
	sc.nextSet++
	id := sc.nextSet
	sc.sets[id] = &serverSet{name: m.Name, specs: specs, h: h, e: e}
	sc.mu.Unlock()
	sc.send(&wire.Msg{Op: wire.OpOpened, ID: m.ID, SetID: id})
	return nil
}

func (sc *serverConn) acquire(m *wire.Msg) error {
	ss, err := sc.set(m.SetID)
	if err != nil {
		return sc.answer(m.ID, err)
	}
	if err := backend.CheckAmounts(ss.specs, m.Values); err != nil {
		return sc.answer(m.ID, err) // one error for this request: the connection's holdings stay
	}
	token := m.Claim
	var claim *backend.Claim
	if m.Flags&wire.FlagCheck != 0 {
		// a check takes nothing: it is answered CodeClaimed when the
		// request would be granted (the client holds the real claim)
		token, claim = 0, backend.NewCheckClaim()
	} else {
		claim = sc.srv.claims.get(token)
	}
	var rep backend.AcquireReport
	_, err = ss.h.Acquire(context.Background(), m.Values, backend.AcquireOptions{Claim: claim, Report: &rep})
	if errors.Is(err, backend.ErrWouldBlock) && m.Flags&wire.FlagWait != 0 {
		return sc.startWait(m.ID, ss, slices.Clone(m.Values), m.Deadline, token, claim)
	}
	sc.srv.claims.put(token)
	if err != nil {
		sc.sendRefusal(m.ID, err, rep.Blocker)
		return nil
	}
	sc.grant(m.ID, ss, m.Values)
	return nil
}

// grant records a lease of amounts and tells the client; on a connection
// already dead it gives the amounts straight back.
func (sc *serverConn) grant(id uint64, ss *serverSet, amounts []int64) {
	l := newLease(ss, amounts)
	sc.mu.Lock()
	if sc.dead || len(sc.leases) >= maxLeasesPerConn || sc.nextLease >= maxServerLease {
		dead := sc.dead
		sc.mu.Unlock()
		_ = ss.h.Settle(context.Background(), 0, l.amounts, nil, true, nil)
		l.free()
		if !dead {
			sc.refuse(id, fmt.Errorf("%w: too many leases on one connection", ErrServerLimit))
		}
		return
	}
	sc.nextLease++
	lid := sc.nextLease
	sc.leases[lid] = l
	sc.mu.Unlock()
	sc.send(&wire.Msg{Op: wire.OpGranted, ID: id, Lease: lid})
}

// startWait runs a blocking acquisition in its own goroutine, so one
// client's wait never holds up its other requests or other clients. A wait
// past MaxConnWaits or MaxWaits is refused alone. The wait holds the claim
// of token until it ends.
func (sc *serverConn) startWait(id uint64, ss *serverSet, amounts []int64, deadline int64, token uint64, claim *backend.Claim) error {
	ctx, cancel := context.WithCancel(sc.ctx)
	if deadline != 0 {
		var cancelDeadline context.CancelFunc
		ctx, cancelDeadline = context.WithDeadline(ctx, time.Unix(0, deadline))
		cancelParent := cancel
		cancel = func() { cancelDeadline(); cancelParent() }
	}
	opts := &sc.srv.opts
	sc.mu.Lock()
	_, dup := sc.waits[id]
	var err error
	switch {
	case dup:
		err = violation("request id %d is already waiting", id)
	case sc.dead:
	case len(sc.waits) >= opts.MaxConnWaits:
		err = fmt.Errorf("%w: %d acquisitions wait on this connection (MaxConnWaits)", ErrServerLimit, len(sc.waits))
	case sc.srv.waits.Add(1) > int64(opts.MaxWaits):
		sc.srv.waits.Add(-1)
		err = fmt.Errorf("%w: %d acquisitions wait in the server (MaxWaits)", ErrServerLimit, opts.MaxWaits)
	default:
		sc.waits[id] = cancel
		sc.wg.Add(1)
		sc.mu.Unlock()
		go sc.wait(ctx, cancel, id, ss, amounts, token, claim)
		return nil
	}
	sc.mu.Unlock()
	cancel()
	sc.srv.claims.put(token)
	if errors.Is(err, ErrServerLimit) {
		sc.refuse(id, err)
		return nil
	}
	return err
}

// wait is the goroutine of one waiting acquisition.
func (sc *serverConn) wait(ctx context.Context, cancel context.CancelFunc, id uint64, ss *serverSet, amounts []int64, token uint64, claim *backend.Claim) {
	defer sc.wg.Done()
	defer sc.srv.waits.Add(-1)
	defer sc.srv.claims.put(token)
	defer cancel()
	var rep backend.AcquireReport
	queued := func(spec int) {
		sc.send(&wire.Msg{Op: wire.OpQueued, ID: id, Spec: specIndex(spec)})
		sc.flush()
	}
	_, err := ss.h.Acquire(ctx, amounts, backend.AcquireOptions{Wait: true, Claim: claim, Report: &rep, OnWait: queued})
	if err != nil && sc.closing.Load() {
		return // the connection is going: no one to answer, and its map goes with it
	}
	sc.mu.Lock()
	delete(sc.waits, id)
	sc.mu.Unlock()
	if err != nil {
		sc.sendRefusal(id, err, rep.Blocker)
	} else {
		sc.grant(id, ss, amounts)
	}
	sc.flush()
}

func (sc *serverConn) settle(m *wire.Msg) error {
	final := m.Flags&wire.FlagFinal != 0
	sc.mu.Lock()
	l := sc.leases[m.Lease]
	if l != nil && final {
		delete(sc.leases, m.Lease)
	}
	sc.mu.Unlock()
	if l == nil {
		sc.send(&wire.Msg{Op: wire.OpError, ID: m.ID, Code: wire.CodeUnknownLease,
			Text: fmt.Sprintf("concurry: lease %d is not held by this connection", m.Lease)})
		return nil
	}
	n := len(l.amounts)
	if len(m.Values) != 0 && len(m.Values) != n {
		return violation("%d deltas for a lease of %d limits", len(m.Values), n)
	}
	sc.delta, sc.refunded = resize(sc.delta, n), resize(sc.refunded, n)
	for i, d := range m.Values {
		if l.set.specs[i].Kind == backend.Resource {
			continue
		}
		// Refund no more than was charged; charge no more than int64 holds.
		d = max(d, -l.accounted[i])
		if d > 0 && l.accounted[i] > math.MaxInt64-d {
			d = math.MaxInt64 - l.accounted[i]
		}
		l.accounted[i] += d
		sc.delta[i] = d
	}
	_ = l.set.h.Settle(context.Background(), 0, l.amounts, sc.delta, final, sc.refunded)
	if final {
		l.free()
	}
	if m.Flags&wire.FlagQuiet != 0 {
		return nil
	}
	sc.send(&wire.Msg{Op: wire.OpSettled, ID: m.ID, Values: sc.refunded})
	return nil
}

// charge applies usage reported for a lease this client lost with an
// earlier connection: rate units only, taken as overage.
func (sc *serverConn) charge(m *wire.Msg) error {
	ss, err := sc.set(m.SetID)
	if err != nil {
		return sc.answer(m.ID, err)
	}
	if len(m.Values) != len(ss.specs) {
		return violation("%d charges for a set of %d limits", len(m.Values), len(ss.specs))
	}
	sc.delta = resize(sc.delta, len(ss.specs))
	for i, d := range m.Values {
		if d < 0 {
			return violation("negative charge %d of %q", d, ss.specs[i].Key)
		}
		if ss.specs[i].Kind == backend.Rate {
			sc.delta[i] = d
		}
	}
	_ = ss.h.Settle(context.Background(), 0, nil, sc.delta, false, nil)
	sc.send(&wire.Msg{Op: wire.OpSettled, ID: m.ID})
	return nil
}

// sendRefusal answers Acquire id with err: a Refused frame with its facts
// when err is a *backend.RefusalError (blocker is the spec that blocked the
// request), an Error otherwise.
func (sc *serverConn) sendRefusal(id uint64, err error, blocker int) {
	var r *backend.RefusalError
	if !errors.As(err, &r) {
		sc.sendErr(id, err)
		return
	}
	var flags uint8
	if r.Deadline {
		flags |= wire.RefusedDeadline
	}
	if r.Queued {
		flags |= wire.RefusedQueued
	}
	sc.send(&wire.Msg{Op: wire.OpRefused, ID: id, Flags: flags, Spec: specIndex(blocker),
		RetryAfter: int64(max(r.RetryAfter, 0)), Key: r.Key})
}

// specIndex returns spec as a frame carries it: -1 when it names no spec.
func specIndex(spec int) int64 {
	if spec < 0 || spec >= wire.MaxValues {
		return -1
	}
	return int64(spec)
}

// feedback applies a Pause or Lower to the set, for every connection that
// shares it, and answers Applied, or the set's error.
func (sc *serverConn) feedback(m *wire.Msg) error {
	ss, err := sc.set(m.SetID)
	if err != nil {
		return sc.answer(m.ID, err)
	}
	f, ok := ss.h.(backend.Feedback)
	switch {
	case !ok:
		err = errors.New("concurry: the server's sets take no feedback")
	case m.Op == wire.OpPause:
		err = f.Pause(context.Background(), int(m.Spec), m.Until)
	default:
		err = f.Lower(context.Background(), int(m.Spec), m.Remaining, m.AsOf)
	}
	if err != nil {
		sc.sendErr(m.ID, err)
		return nil
	}
	sc.send(&wire.Msg{Op: wire.OpApplied, ID: m.ID})
	return nil
}

// resize returns s with length n, zeroed.
func resize(s []int64, n int) []int64 {
	if cap(s) < n {
		return make([]int64, n)
	}
	s = s[:n]
	clear(s)
	return s
}

func (sc *serverConn) closeSet(m *wire.Msg) error {
	sc.mu.Lock()
	ss := sc.sets[m.SetID]
	delete(sc.sets, m.SetID)
	sc.mu.Unlock()
	if ss == nil {
		_, err := sc.set(m.SetID)
		return sc.answer(m.ID, err)
	}
	ss.h.Close()
	sc.srv.reg.release(ss.name, ss.e)
	sc.send(&wire.Msg{Op: wire.OpSetClosed, ID: m.ID})
	return nil
}
