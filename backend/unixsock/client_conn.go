package unixsock

import (
	"errors"
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
// goroutines go out through one frameWriter, and one reader goroutine hands each
// reply to the call waiting for it.
type clientConn struct {
	cl   *Client
	c    *net.UnixConn
	r    *wire.Reader
	id   uint64 // names the connection in the leases it grants
	out  frameWriter
	dead atomic.Bool

	lastRead atomic.Int64 // Unix ns of the last frame read

	mu     sync.Mutex
	calls  map[uint64]*call // guarded by mu; by request id
	nextID uint64           // guarded by mu
	err    error            // guarded by mu; why the connection ended
	prompt int              // guarded by mu; calls owed an answer at once
	since  int64            // guarded by mu; Unix ns prompt last rose from 0
	sets   map[*Set]uint64  // guarded by mu; server set ids opened here
}

// call is one request awaiting its reply. The reader (or fail) fills in the
// result and then signals ch exactly once.
type call struct {
	ch     chan struct{}
	prompt bool

	op    wire.Op
	num   uint64 // Granted: the lease; Opened: the set id
	code  wire.Code
	text  string
	vals  []int64
	stats []backend.SpecStats
	err   error
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan struct{}, 1)} }}

func newClientConn(cl *Client, c *net.UnixConn, r *wire.Reader, id uint64) *clientConn {
	cc := &clientConn{
		cl: cl, c: c, r: r, id: id,
		out:   frameWriter{c: c, timeout: cl.opts.Timeout, limit: clientOutLimit},
		calls: make(map[uint64]*call), sets: make(map[*Set]uint64),
	}
	cc.lastRead.Store(time.Now().UnixNano())
	return cc
}

// start registers a call for m, gives m its id and sends it. prompt marks a
// request the server answers without waiting.
func (cc *clientConn) start(m *wire.Msg, prompt bool) (*call, error) {
	cl := callPool.Get().(*call)
	cl.prompt, cl.err, cl.text = prompt, nil, ""
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		callPool.Put(cl)
		return nil, err
	}
	cc.nextID++
	m.ID = cc.nextID
	cc.calls[m.ID] = cl
	if prompt {
		cc.promptLocked()
	}
	cc.mu.Unlock()
	if err := cc.out.send(m); err != nil {
		cc.fail(err)
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
	if !errors.Is(cause, backend.ErrBackendUnavailable) {
		cause = fmt.Errorf("%w: %w: %w", backend.ErrBackendUnavailable, ErrConnLost, cause)
	}
	cc.err = cause
	cc.dead.Store(true)
	calls := cc.calls
	cc.calls = nil
	cc.mu.Unlock()
	cc.out.fail(cause)
	cc.c.Close()
	cc.cl.mu.Lock()
	delete(cc.cl.live, cc)
	cc.cl.mu.Unlock()
	for _, cl := range calls {
		cl.err = cause
		cl.ch <- struct{}{}
	}
}

// stuck reports whether a prompt answer is overdue at now.
func (cc *clientConn) stuck(now int64, timeout time.Duration) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.prompt > 0 && now-max(cc.since, cc.lastRead.Load()) > int64(timeout)
}

// watchdog drops connections whose server stopped answering, so no call
// waits forever on a hung server.
func (c *Client) watchdog() {
	defer c.wg.Done()
	t := time.NewTicker(max(c.opts.Timeout/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case now := <-t.C:
			for i := range c.slots {
				cc := c.slots[i].conn.Load()
				if cc != nil && !cc.dead.Load() && cc.stuck(now.UnixNano(), c.opts.Timeout) {
					cc.fail(fmt.Errorf("no answer from the server for %v", c.opts.Timeout))
				}
			}
		}
	}
}
