package unixsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

const (
	// clientMaxFrame is the longest reply a client accepts. Every reply a
	// server sends is shorter (an Error's text is cut to wire.MaxText), and
	// it fits the reader's buffer, so that a read interrupted inside a
	// reply resumes without loss.
	clientMaxFrame = wire.BufferSize
	clientOutLimit = 64 << 20
	// releaseMark marks the id of a pipelined release (a quiet final
	// Settle), whose low bits are the id of its set on the connection: the
	// server echoes it only when the release fails, naming the set.
	releaseMark = 1 << 63
)

// clientConn is the client side of one connection: requests from many
// goroutines go out through one frameWriter, and replies are read by one
// goroutine at a time — the holder of the read turn. A caller awaiting its
// reply takes the turn when no one holds it and reads for itself, so that a
// reply reaches its caller without a hand-off between goroutines; a holder
// that leaves while other calls are outstanding hands the turn to the
// connection's background reader, which delivers their replies (see
// client_read.go).
type clientConn struct {
	cl     *Client
	c      *net.UnixConn
	r      *wire.Reader // used by the holder of the read turn
	in     wire.Msg     // used by the holder of the read turn
	id     uint64       // names the connection in the leases it grants
	server serverInfo
	out    frameWriter
	dead   atomic.Bool
	wake   chan struct{} // wakes the background reader, which was given the turn

	lastRead atomic.Int64 // Unix ns of the last frame read

	mu     sync.Mutex
	calls  map[uint64]*call      // guarded by mu; by request id
	sets   map[uint64]*clientSet // guarded by mu; the sets open here, by id
	nextID uint64                // guarded by mu
	err    error                 // guarded by mu; why the connection ended
	prompt int                   // guarded by mu; calls owed an answer at once
	since  int64                 // guarded by mu; Unix ns prompt last rose from 0
	nsets  int64                 // guarded by mu; sets open (or opening) here
	waits  int64                 // guarded by mu; waiting acquisitions sent and not answered
	turn   readTurn              // guarded by mu
}

// callKind says how the server answers a request.
type callKind uint8

const (
	callPrompt callKind = iota // answered at once; overdue after Options.Timeout
	callWait                   // a waiting Acquire: answered when granted or abandoned
)

// call is one request awaiting its reply. The reader (or fail) fills in the
// result and then signals ch exactly once; a waiting Acquire the server
// queued is told so first, on queued, at most once.
type call struct {
	ch       chan struct{}
	queued   chan struct{}
	prompt   bool
	wait     bool
	notified bool // guarded by the connection's mu: queued was signalled

	op      wire.Op
	num     uint64 // Granted: the lease; Opened: the set id
	code    wire.Code
	text    string
	spec    int64 // Queued, Refused: the spec that blocks the request
	refusal backend.RefusalError
	vals    []int64
	stats   []backend.SpecStats
	err     error
}

var callPool = sync.Pool{New: func() any {
	return &call{ch: make(chan struct{}, 1), queued: make(chan struct{}, 1)}
}}

// outcome returns the error a finished call ended with: the connection's
// failure (matching backend.ErrBackendUnavailable and ErrConnLost), a
// refusal as a *backend.RefusalError, the server's Error reply as a
// *wire.RemoteError matching its sentinel, or nil.
func (cl *call) outcome() error {
	switch {
	case cl.err != nil:
		return cl.err
	case cl.op == wire.OpRefused:
		r := cl.refusal
		return &r
	case cl.op == wire.OpError:
		return &wire.RemoteError{Code: cl.code, Text: cl.text}
	}
	return nil
}

// free returns a finished call to the pool.
func (cl *call) free() {
	select {
	case <-cl.queued: // a Queued notice its caller did not take
	default:
	}
	callPool.Put(cl)
}

func newClientConn(cl *Client, c *net.UnixConn, r *wire.Reader, id uint64, server serverInfo) *clientConn {
	cc := &clientConn{
		cl: cl, c: c, r: r, id: id, server: server, wake: make(chan struct{}, 1),
		calls: make(map[uint64]*call), sets: make(map[uint64]*clientSet),
	}
	cc.out.init(c, cl.opts.Timeout, clientOutLimit, cc.dropped)
	cc.lastRead.Store(time.Now().UnixNano())
	return cc
}

// start registers a call for m, gives m its id and sends it. It refuses a
// wait past the server's cap per connection with ErrServerLimit, sending
// nothing; the connection's failure comes back wrapped in
// backend.ErrBackendUnavailable.
func (cc *clientConn) start(m *wire.Msg, kind callKind) (*call, error) {
	cl := callPool.Get().(*call)
	cl.prompt, cl.wait, cl.notified, cl.err, cl.text, cl.spec = kind == callPrompt, kind == callWait, false, nil, "", -1
	cc.mu.Lock()
	var err error
	switch {
	case cc.err != nil:
		err = cc.err
	case cl.wait && cc.waits >= cc.server.waits:
		err = fmt.Errorf("%w: %d acquisitions already wait on one connection (the server's MaxConnWaits)", ErrServerLimit, cc.waits)
	}
	if err != nil {
		cc.mu.Unlock()
		cl.free()
		return nil, err
	}
	cc.nextID = (cc.nextID + 1) &^ releaseMark
	m.ID = cc.nextID
	cc.calls[m.ID] = cl
	if cl.prompt {
		cc.promptLocked()
	}
	if cl.wait {
		cc.waits++
	}
	cc.stopWatchLocked() // a reply is coming: the background reader need not keep the turn
	cc.mu.Unlock()
	if err := cc.out.send(m); err != nil {
		cc.fail(err)
	}
	return cl, nil
}

// request sends m, which the server answers promptly, and waits for the
// answer or ctx. It returns the answered call, to be freed by the caller, or
// the error: the connection's, ctx's, or the server's Error reply. A call
// abandoned to ctx is left to the garbage collector.
func (cc *clientConn) request(ctx context.Context, m *wire.Msg) (*call, error) {
	cl, err := cc.start(m, callPrompt)
	if err != nil {
		return nil, err
	}
	if err := cc.await(ctx, cl); err != nil {
		return nil, err
	}
	if err := cl.outcome(); err != nil {
		cl.free()
		return nil, err
	}
	return cl, nil
}

// await waits for the reply of the prompt call cl, reading it itself when
// no one else reads. It returns ctx's error, abandoning cl, when ctx ends
// first.
func (cc *clientConn) await(ctx context.Context, cl *call) error {
	switch cc.readFor(ctx, cl) {
	case turnAnswered:
		return nil
	case turnCtxDone:
		return backend.ContextError(ctx)
	}
	select {
	case <-cl.ch:
		return nil
	case <-ctx.Done():
		return backend.ContextError(ctx)
	}
}

// release sends m, a final Settle, with no reply unless it fails: quiet and
// marked with its set's id sid, so that a failure is counted on the set.
// A lazy release (it changes nothing another process can see) waits for the
// next frame; one that charges usage returns only once it is written, with
// the error of the write; any other is sent at once.
func (cc *clientConn) release(m *wire.Msg, sid uint64, lazy, charges bool) error {
	m.Flags |= wire.FlagQuiet
	m.ID = releaseMark | sid
	var err error
	switch {
	case lazy:
		err = cc.out.sendLazy(m)
	case charges:
		err = cc.out.sendWait(m)
	default:
		err = cc.out.send(m)
	}
	if err != nil {
		cc.fail(err)
	}
	return err
}

// promptLocked counts one more call owed a prompt answer. Requires mu held.
func (cc *clientConn) promptLocked() {
	if cc.prompt == 0 {
		cc.since = time.Now().UnixNano()
	}
	cc.prompt++
}

// reserveSet counts one more set open on the connection, refusing with
// ErrServerLimit past the server's cap.
func (cc *clientConn) reserveSet() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.nsets >= cc.server.sets {
		return fmt.Errorf("%w: %d sets already open on one connection (the server's MaxConnSets)", ErrServerLimit, cc.nsets)
	}
	cc.nsets++
	return nil
}

// opened records set s open here under id sid.
func (cc *clientConn) opened(sid uint64, s *clientSet) {
	cc.mu.Lock()
	if cc.sets != nil {
		cc.sets[sid] = s
	}
	cc.mu.Unlock()
}

// releaseSet counts one set fewer open on the connection: the set of id
// sid, 0 when it never opened.
func (cc *clientConn) releaseSet(sid uint64) {
	cc.mu.Lock()
	cc.nsets--
	delete(cc.sets, sid)
	cc.mu.Unlock()
}

// cancel asks the server to abandon the waiting call of request id; the
// server still answers it, promptly.
func (cc *clientConn) cancel(cl *call, id uint64) {
	cc.mu.Lock()
	pending := cc.calls[id] == cl
	if pending && !cl.prompt {
		cl.prompt = true
		cc.promptLocked()
	}
	cc.mu.Unlock()
	if pending {
		if err := cc.out.send(&wire.Msg{Op: wire.OpCancel, ID: id}); err != nil {
			cc.fail(err)
		}
	}
}

// deliver hands m to its call. A Queued notice leaves the call waiting for
// its reply.
func (cc *clientConn) deliver(m *wire.Msg) {
	if m.ID&releaseMark != 0 {
		cc.releaseFailed(m)
		return
	}
	cc.mu.Lock()
	cl := cc.calls[m.ID]
	if cl != nil && m.Op == wire.OpQueued {
		first := !cl.notified
		cl.notified = true
		cc.mu.Unlock()
		if first { // a second notice changes nothing
			cl.spec = m.Spec
			cl.queued <- struct{}{}
		}
		return
	}
	if cl != nil {
		delete(cc.calls, m.ID)
		if cl.prompt {
			cc.prompt--
		}
		if cl.wait {
			cc.waits--
		}
	}
	cc.mu.Unlock()
	if cl == nil {
		return // the caller gave up on it
	}
	cl.fill(m)
	cl.ch <- struct{}{}
}

// fill copies the reply m into cl.
func (cl *call) fill(m *wire.Msg) {
	cl.op, cl.num, cl.code = m.Op, m.Lease, m.Code
	switch m.Op {
	case wire.OpOpened:
		cl.num = m.SetID
	case wire.OpError:
		cl.text = m.Text
	case wire.OpRefused:
		cl.spec = m.Spec
		cl.refusal = backend.RefusalError{
			Key: m.Key, RetryAfter: time.Duration(m.RetryAfter),
			Deadline: m.Flags&wire.RefusedDeadline != 0, Queued: m.Flags&wire.RefusedQueued != 0,
		}
	}
	cl.vals = append(cl.vals[:0], m.Values...)
	cl.stats = append(cl.stats[:0], m.Stats...)
}

// releaseFailed counts, on its set, a pipelined release the server refused
// (it did not hold the lease), and logs it: the holder has moved on.
func (cc *clientConn) releaseFailed(m *wire.Msg) {
	cc.mu.Lock()
	s := cc.sets[m.ID&^releaseMark]
	cc.mu.Unlock()
	name := ""
	if s != nil {
		s.lost.Add(1)
		name = s.name
	}
	cc.cl.log.Warn("the limit server refused a release; the holding is counted lost", "set", name, "reason", m.Text)
}

// dropped counts, on their sets, the pipelined releases with a refund that
// a failure of the connection dropped unwritten: the server released their
// holdings when the connection dropped, without the refund. (A release that
// charges usage is never dropped silently: its holder gets the error; one
// with neither changes nothing the server's own release does not.)
func (cc *clientConn) dropped(frames []byte) {
	var m wire.Msg
	for len(frames) >= 4 {
		n := 4 + int(uint32(frames[0])<<24|uint32(frames[1])<<16|uint32(frames[2])<<8|uint32(frames[3]))
		if n > len(frames) || m.Decode(frames[4:n]) != nil {
			return
		}
		frames = frames[n:]
		if m.Op != wire.OpSettle || m.ID&releaseMark == 0 || !refundsOnly(m.Values) {
			continue
		}
		cc.mu.Lock()
		s := cc.sets[m.ID&^releaseMark]
		cc.mu.Unlock()
		if s != nil {
			s.lost.Add(1)
			cc.cl.log.Warn("a release was lost with its connection; its refund was not applied", "set", s.name)
		}
	}
}

// refundsOnly reports whether deltas refund something and charge nothing.
func refundsOnly(deltas []int64) bool {
	refund := false
	for _, d := range deltas {
		if d > 0 {
			return false
		}
		refund = refund || d < 0
	}
	return refund
}

// fail ends the connection: every pending call fails with an error matching
// backend.ErrBackendUnavailable and ErrConnLost.
func (cc *clientConn) fail(cause error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	err := cc.cl.unavailable(fmt.Errorf("%w: %w", ErrConnLost, cause))
	cc.err = err
	cc.dead.Store(true)
	calls := cc.calls
	cc.calls = nil
	cc.mu.Unlock()
	cc.out.fail(err)
	cc.c.Close()
	cc.cl.lost(cc, cause)
	for _, cl := range calls {
		cl.err = err
		cl.ch <- struct{}{}
	}
	select {
	case cc.wake <- struct{}{}: // the background reader ends
	default:
	}
}

// stuck reports whether a prompt answer is overdue at now.
func (cc *clientConn) stuck(now int64, timeout time.Duration) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.prompt > 0 && now-max(cc.since, cc.lastRead.Load()) > int64(timeout)
}

// failure returns why the connection ended, nil while it is live.
func (cc *clientConn) failure() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
