package unixsock

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

const (
	clientMaxFrame = 1 << 20
	clientOutLimit = 64 << 20
)

// clientConn is the client side of one connection: requests from many
// goroutines go out through one frameWriter, and one reader goroutine hands
// each reply to the call waiting for it.
type clientConn struct {
	cl     *Client
	c      *net.UnixConn
	r      *wire.Reader
	id     uint64 // names the connection in the leases it grants
	server serverInfo
	out    frameWriter
	dead   atomic.Bool

	lastRead atomic.Int64 // Unix ns of the last frame read

	mu     sync.Mutex
	calls  map[uint64]*call // guarded by mu; by request id
	nextID uint64           // guarded by mu
	err    error            // guarded by mu; why the connection ended
	prompt int              // guarded by mu; calls owed an answer at once
	since  int64            // guarded by mu; Unix ns prompt last rose from 0
	sets   int64            // guarded by mu; sets open (or opening) here
	waits  int64            // guarded by mu; waiting acquisitions sent and not answered
}

// callKind says how the server answers a request.
type callKind uint8

const (
	callPrompt callKind = iota // answered at once; overdue after Options.Timeout
	callWait                   // a waiting Acquire: answered when granted or abandoned
)

// call is one request awaiting its reply. The reader (or fail) fills in the
// result and then signals ch exactly once.
type call struct {
	ch     chan struct{}
	prompt bool
	wait   bool

	op    wire.Op
	num   uint64 // Granted: the lease; Opened: the set id
	code  wire.Code
	text  string
	vals  []int64
	stats []backend.SpecStats
	err   error
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan struct{}, 1)} }}

// outcome returns the error a finished call ended with: the connection's
// failure (matching backend.ErrBackendUnavailable and ErrConnLost), the
// server's Error reply as a *wire.RemoteError matching its sentinel, or nil.
func (cl *call) outcome() error {
	switch {
	case cl.err != nil:
		return cl.err
	case cl.op == wire.OpError:
		return &wire.RemoteError{Code: cl.code, Text: cl.text}
	}
	return nil
}

// free returns a finished call to the pool.
func (cl *call) free() { callPool.Put(cl) }

func newClientConn(cl *Client, c *net.UnixConn, r *wire.Reader, id uint64, server serverInfo) *clientConn {
	cc := &clientConn{
		cl: cl, c: c, r: r, id: id, server: server,
		out:   frameWriter{c: c, timeout: cl.opts.Timeout, limit: clientOutLimit},
		calls: make(map[uint64]*call),
	}
	cc.lastRead.Store(time.Now().UnixNano())
	return cc
}

// start registers a call for m, gives m its id and sends it. It refuses a
// wait past the server's cap per connection with ErrServerLimit, sending
// nothing; the connection's failure comes back wrapped in
// backend.ErrBackendUnavailable.
func (cc *clientConn) start(m *wire.Msg, kind callKind) (*call, error) {
	cl := callPool.Get().(*call)
	cl.prompt, cl.wait, cl.err, cl.text = kind == callPrompt, kind == callWait, nil, ""
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
	cc.nextID++
	m.ID = cc.nextID
	cc.calls[m.ID] = cl
	if cl.prompt {
		cc.promptLocked()
	}
	if cl.wait {
		cc.waits++
	}
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
	select {
	case <-cl.ch:
	case <-ctx.Done():
		return nil, backend.ContextError(ctx)
	}
	if err := cl.outcome(); err != nil {
		cl.free()
		return nil, err
	}
	return cl, nil
}

// post sends m, which expects no reply.
func (cc *clientConn) post(m *wire.Msg) error {
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		return err
	}
	cc.nextID++
	m.ID = cc.nextID
	cc.mu.Unlock()
	err := cc.out.send(m)
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
	if cc.sets >= cc.server.sets {
		return fmt.Errorf("%w: %d sets already open on one connection (the server's MaxConnSets)", ErrServerLimit, cc.sets)
	}
	cc.sets++
	return nil
}

// releaseSet counts one set fewer open on the connection.
func (cc *clientConn) releaseSet() {
	cc.mu.Lock()
	cc.sets--
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

// readLoop delivers replies until the connection ends.
func (cc *clientConn) readLoop() {
	defer cc.cl.wg.Done()
	var m wire.Msg
	for {
		body, err := cc.r.Next()
		if err == nil {
			cc.lastRead.Store(time.Now().UnixNano())
			err = m.Decode(body)
		}
		if err == nil && m.ID == 0 && m.Op == wire.OpError {
			err = fmt.Errorf("server closed the connection: %s", m.Text)
		}
		if err != nil {
			cc.fail(err)
			return
		}
		cc.deliver(&m)
	}
}

// deliver hands m to its call.
func (cc *clientConn) deliver(m *wire.Msg) {
	cc.mu.Lock()
	cl := cc.calls[m.ID]
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
	cl.op, cl.num, cl.code = m.Op, m.Lease, m.Code
	if m.Op == wire.OpOpened {
		cl.num = m.SetID
	}
	if m.Op == wire.OpError {
		cl.text = m.Text
	}
	cl.vals = append(cl.vals[:0], m.Values...)
	cl.stats = append(cl.stats[:0], m.Stats...)
	cl.ch <- struct{}{}
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
