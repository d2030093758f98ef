package unixsock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// Server hosts named limit sets in memory (with package memory, so every
// algorithm, refund and FIFO rule is the same as in one process) and serves
// them to the clients of one Unix socket. Everything a connection holds is
// released when it drops. What clients can make it hold is capped (see
// ServerOptions); a request past a cap is refused alone. Create one with
// Listen or Serve; a Server is safe for concurrent use.
type Server struct {
	path     string
	opts     ServerOptions
	log      *slog.Logger
	ln       *net.UnixListener
	lock     *os.File // holds the flock on path+".lock"
	reg      *registry
	claims   *claimRegistry
	auth     authorizer
	instance uint64 // random: tells a client a new server from the one it knew

	mu     sync.Mutex
	conns  map[*serverConn]struct{} // guarded by mu
	closed bool                     // guarded by mu

	waits     atomic.Int64   // acquisitions waiting, over every connection
	refusals  logLimiter     // warnings of requests refused
	turnedOff logLimiter     // warnings of connections refused
	quit      chan struct{}  // closed by Close
	wg        sync.WaitGroup // the accept loop and every connection
	done      chan struct{}  // closed when the accept loop ends
	acceptErr error          // set before done is closed
	served    atomic.Int64   // connections accepted, for stats
}

// Listen takes the lock file PATH.lock, creates the socket at path (removing
// a stale socket left by a dead server) and starts serving in background
// goroutines until Close. It fails with ErrServerRunning when another server
// holds the lock.
func Listen(path string, opts ServerOptions) (*Server, error) {
	opts = opts.withDefaults()
	auth, gid, err := newAuthorizer(opts)
	if err != nil {
		return nil, err
	}
	lock, err := lockPath(path+".lock", opts.Mode, gid)
	if err != nil {
		return nil, err
	}
	ln, err := listenSocket(path, opts.Mode, gid)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s := &Server{
		path: path, opts: opts, log: opts.Logger.With("socket", path), ln: ln, lock: lock,
		reg: newRegistry(opts), claims: newClaimRegistry(), auth: auth, instance: rand.Uint64(),
		conns: make(map[*serverConn]struct{}), quit: make(chan struct{}), done: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	s.log.Info("concurry limit server listening", "pid", os.Getpid(), "mode", fmt.Sprintf("%#o", opts.Mode))
	return s, nil
}

// Serve runs a server on path until ctx ends, then shuts it down gracefully:
// it stops accepting, closes every connection (releasing their holdings) and
// removes the socket. It returns nil after ctx ends, or the error that
// stopped it. Use it to host the limits in a parent process that then starts
// its workers.
func Serve(ctx context.Context, path string, opts ServerOptions) error {
	s, err := Listen(path, opts)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.done:
	}
	s.Close()
	return s.acceptErr
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Done returns a channel closed when the server stops accepting connections:
// after Close, or when accepting failed for good (Serve then returns the
// error).
func (s *Server) Done() <-chan struct{} { return s.done }

// Close stops the server: it stops accepting, drops every connection, waits
// for their goroutines, removes the socket and releases the lock file. It is
// idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	close(s.quit)
	s.ln.Close()
	for _, c := range conns {
		c.c.Close()
	}
	s.wg.Wait()
	s.reg.close()
	s.lock.Close()
	s.log.Info("concurry limit server stopped", "connections_served", s.served.Load())
	return nil
}

// acceptLoop accepts connections until Close. Failures a busy machine
// causes (out of file descriptors or memory) are retried after a backoff
// from 5ms doubling up to 1s, as net/http does; any other failure stops it.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	defer close(s.done)
	var delay time.Duration
	for {
		c, err := s.ln.AcceptUnix()
		if err == nil {
			delay = 0
			s.served.Add(1)
			s.start(c)
			continue
		}
		select {
		case <-s.quit:
			return
		default:
		}
		if !temporary(err) {
			s.acceptErr = err
			s.log.Error("accept failed; server stopping", "err", err)
			return
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		s.log.Warn("accept failed; retrying", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.quit:
			t.Stop()
			return
		}
	}
}

// temporary reports whether an accept error is a shortage that passes.
func temporary(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// start registers and serves one accepted connection, or refuses it past
// MaxConns.
func (s *Server) start(c *net.UnixConn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	if len(s.conns) >= s.opts.MaxConns {
		s.mu.Unlock()
		s.refuse(c)
		return
	}
	sc := newServerConn(s, c)
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		sc.serve()
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
	}()
}

// refuse tells a connection past MaxConns so, and closes it.
func (s *Server) refuse(c *net.UnixConn) {
	attrs := []any{"max_conns", s.opts.MaxConns}
	if cred, err := peerCred(c); err == nil {
		attrs = append(attrs, "peer_pid", cred.Pid, "peer_uid", cred.Uid)
	}
	if held, ok := s.turnedOff.note(time.Now()); ok {
		s.log.Warn("connection refused: the server serves MaxConns connections already", append(attrs, "refused_since_last_log", held)...)
	}
	err := fmt.Errorf("%w: the server at %s serves %d connections already (MaxConns)", ErrServerLimit, s.path, s.opts.MaxConns)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	c.Write((&wire.Msg{Op: wire.OpError, Code: wire.CodeLimit, Text: err.Error()}).Append(nil))
	c.Close()
}

// Sets returns the number of named sets the server holds.
func (s *Server) Sets() int { return s.reg.len() }
