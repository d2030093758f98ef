package unixsock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// Per-connection bounds that are not options: a client past them is broken
// or hostile.
const (
	maxLeasesPerConn = 1 << 20
	maxServerLease   = 1<<leaseBits - 1
	serverOutLimit   = 8 << 20
)

// serverConn is the server side of one client connection: the sets it
// opened, the leases it holds and its waiting acquisitions. One goroutine
// reads and handles its frames; each waiting Acquire runs in a goroutine of
// its own.
type serverConn struct {
	srv *Server
	c   *net.UnixConn
	log *slog.Logger
	out frameWriter

	ctx    context.Context // ends when the connection does; parent of every wait
	cancel context.CancelFunc

	// Owned by the reading goroutine.
	delta, refunded []int64

	closing atomic.Bool // set when cleanup begins: waits that end need not report

	mu        sync.Mutex
	dead      bool                          // guarded by mu
	sets      map[uint64]*serverSet         // guarded by mu; open sets by id
	nextSet   uint64                        // guarded by mu
	leases    map[uint64]*lease             // guarded by mu
	nextLease uint64                        // guarded by mu
	waits     map[uint64]context.CancelFunc // guarded by mu; by request id
	wg        sync.WaitGroup                // waiting acquisitions
}

// errProtocol wraps a reason a client is disconnected for.
var errProtocol = errors.New("protocol violation")

func violation(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

func newServerConn(s *Server, c *net.UnixConn) *serverConn {
	ctx, cancel := context.WithCancel(context.Background())
	sc := &serverConn{
		srv: s, c: c, log: s.log, ctx: ctx, cancel: cancel,
		leases: make(map[uint64]*lease), waits: make(map[uint64]context.CancelFunc), sets: make(map[uint64]*serverSet),
	}
	sc.out.init(c, s.opts.WriteTimeout, serverOutLimit, nil)
	return sc
}

// serve runs the connection until it ends, then releases its holdings.
func (sc *serverConn) serve() {
	defer sc.cleanup()
	cred, ok, err := sc.srv.auth.check(sc.c)
	if err != nil {
		sc.log.Warn("cannot read peer credentials; closing", "err", err)
		return
	}
	sc.log = sc.log.With("peer_pid", cred.Pid, "peer_uid", cred.Uid)
	r := wire.NewReader(sc.c, sc.srv.opts.MaxFrame)
	var m wire.Msg
	if err := sc.hello(r, &m, ok); err != nil {
		if errors.Is(err, io.EOF) {
			sc.log.Debug("connection closed before its hello")
		} else {
			sc.log.Warn("connection refused", "reason", err)
		}
		return
	}
	sc.log.Debug("client connected")
	r.SetFrameTimeout(sc.c, sc.srv.opts.FrameTimeout)
	for {
		if !r.Ready() {
			sc.flush() // the replies to the frames handled so far, before waiting for more
		}
		body, err := r.Next()
		if err == nil {
			if err = m.Decode(body); err == nil {
				err = sc.handle(&m)
			}
		}
		if err != nil {
			sc.closeWith(err)
			return
		}
	}
}

// closeWith logs why the connection ends and, for a protocol error, tells
// the client. A client that goes away is not a warning; one that misbehaves
// (breaks the protocol, stalls inside a frame, stops reading) is.
func (sc *serverConn) closeWith(err error) {
	werr := sc.out.failure()
	switch {
	case errors.Is(werr, errSlowPeer), errors.Is(werr, os.ErrDeadlineExceeded):
		sc.log.Warn("dropping a client that does not read its replies", "reason", werr)
	case errors.Is(err, os.ErrDeadlineExceeded):
		sc.log.Warn("dropping a client that stalled inside a frame", "frame_timeout", sc.srv.opts.FrameTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET):
		sc.log.Debug("client disconnected")
	case errors.Is(err, wire.ErrMalformed), errors.Is(err, errProtocol), errors.Is(err, io.ErrUnexpectedEOF):
		sc.log.Warn("closing connection", "reason", err)
		sc.send(&wire.Msg{Op: wire.OpError, Code: wire.CodeMalformed, Text: err.Error()})
		sc.flush()
	default:
		sc.log.Warn("connection failed", "err", err)
	}
}

// hello reads the client's Hello and answers it with the caps that hold
// per connection.
func (sc *serverConn) hello(r *wire.Reader, m *wire.Msg, allowed bool) error {
	defer sc.flush()
	opts := &sc.srv.opts
	if err := sc.c.SetReadDeadline(time.Now().Add(opts.HelloTimeout)); err != nil {
		return err
	}
	body, err := r.Next()
	if err == nil {
		err = m.Decode(body)
	}
	switch {
	case err != nil:
		return fmt.Errorf("no valid hello: %w", err)
	case m.Op != wire.OpHello:
		return fmt.Errorf("first frame is %v, not Hello", m.Op)
	case m.Version != wire.Version:
		err = fmt.Errorf("%w: the server speaks version %d, the client %d", ErrVersionMismatch, wire.Version, m.Version)
		sc.send(&wire.Msg{Op: wire.OpError, ID: m.ID, Code: wire.CodeVersion, Text: err.Error()})
		return err
	case !allowed:
		err = fmt.Errorf("%w: uid not allowed by the server at %s", ErrPermissionDenied, sc.srv.path)
		sc.send(&wire.Msg{Op: wire.OpError, ID: m.ID, Code: wire.CodePermission, Text: err.Error()})
		return err
	}
	sc.send(&wire.Msg{
		Op: wire.OpHelloOK, ID: m.ID, Version: wire.Version, PID: uint64(os.Getpid()), Instance: sc.srv.instance,
		ConnSets: uint64(opts.MaxConnSets), ConnWaits: uint64(opts.MaxConnWaits),
	})
	return sc.c.SetReadDeadline(time.Time{})
}

// send queues m, to be written at the next flush: the reading goroutine
// flushes before it waits for more frames, so that the replies to frames
// that arrived together share a write; any other goroutine flushes after
// its send. A failure closes the connection, which ends the read loop.
func (sc *serverConn) send(m *wire.Msg) { _ = sc.out.sendLazy(m) }

// flush writes the replies queued by send.
func (sc *serverConn) flush() { _ = sc.out.flush() }

func (sc *serverConn) sendErr(id uint64, err error) {
	sc.send(&wire.Msg{Op: wire.OpError, ID: id, Code: wire.CodeOf(err), Text: err.Error()})
}

// cleanup ends every wait and releases every lease and set of the
// connection: a client that dies holds nothing. It closes the connection's
// handles first, which fails all their waiters in one pass over each queue,
// and returns its holdings before it waits for the waits' goroutines, so
// that a client dropping many waits does not hold up the grants of others.
func (sc *serverConn) cleanup() {
	sc.closing.Store(true)
	sc.mu.Lock()
	sc.dead = true // from now on, a wait that is granted gives its grant back
	sets, leases := sc.sets, sc.leases
	sc.sets, sc.leases = nil, nil
	sc.mu.Unlock()
	sc.out.fail(net.ErrClosed)
	sc.c.Close()
	for _, ss := range sets {
		ss.h.Close()
	}
	for _, l := range leases {
		_ = l.set.h.Settle(context.Background(), 0, l.amounts, nil, true, nil)
	}
	sc.cancel()
	sc.wg.Wait()
	for _, ss := range sets {
		sc.srv.reg.release(ss.name, ss.e)
	}
	if len(leases) > 0 {
		sc.log.Debug("released the holdings of a closed connection", "leases", len(leases))
	}
}
