package unixsock

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// leaseBits is how many low bits of a client's lease are the server's lease
// id; the bits above name the connection that holds it.
const leaseBits = 40

// maxSocketPath is the longest path a Unix socket address holds on Linux.
const maxSocketPath = 107

// errClientClosed reports a call on a closed Client.
var errClientClosed = errors.New("concurry: unix-socket client closed")

// Client is a backend.Backend whose sets live in the server at a Unix socket
// path, shared by every process that uses the path:
//
//	client, err := unixsock.Dial("/run/myapp/limits.sock", unixsock.Options{})
//	set, err := concurry.NewLimitSet(limits, concurry.WithName("bedrock/us-east-1"), concurry.WithBackend(client))
//
// Requests from any number of goroutines are pipelined over a few
// connections; all requests on one set name go over the same one. By
// default, when nothing listens at the path, the first client to take the
// lock file PATH.lock starts a server inside its own process and the others
// connect to it; when that process exits, the next client to reconnect takes
// over, with fresh state (see the package doc). When the server cannot be
// reached, calls fail at once with an error matching
// backend.ErrBackendUnavailable, and the next call after a backoff tries to
// reconnect. A Client is safe for concurrent use; Close it when done.
type Client struct {
	path  string
	opts  Options
	log   *slog.Logger
	slots []slot
	cids  atomic.Uint64
	quit  chan struct{}
	wg    sync.WaitGroup // readers and the watchdog

	mu        sync.Mutex
	closed    bool                     // guarded by mu
	retryAt   time.Time                // guarded by mu; no dial before this instant
	backoff   time.Duration            // guarded by mu
	lastErr   error                    // guarded by mu; the last dial failure
	host      *Server                  // guarded by mu; the server this client auto-hosts
	live      map[*clientConn]struct{} // guarded by mu; connections whose reader runs
	instances map[uint64]uint64        // guarded by mu; server instance by connection id
	dropped   bool                     // guarded by mu; a connection was lost since the last connect
}

// slot is one connection of the pool.
type slot struct {
	dialing chan struct{} // holds a token while a goroutine dials the slot
	conn    atomic.Pointer[clientConn]
}

// Dial returns a client of the server at path. It does not connect: the
// first Open does, starting a server in this process if auto-hosting is on
// and nothing listens at path.
func Dial(path string, opts Options) (*Client, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("concurry: socket path %q is longer than %d bytes", path, maxSocketPath)
	}
	opts = opts.withDefaults()
	c := &Client{
		path: path, opts: opts, log: opts.Logger.With("socket", path),
		slots: make([]slot, opts.Conns), quit: make(chan struct{}),
		live: make(map[*clientConn]struct{}), instances: make(map[uint64]uint64),
	}
	for i := range c.slots {
		c.slots[i].dialing = make(chan struct{}, 1)
	}
	c.wg.Add(1)
	go c.watchdog()
	return c, nil
}

// Open implements backend.Backend: it returns the set name of the server,
// defining it with specs if no client has yet. It refuses, before sending
// anything, what the server would: an empty name (backend.ErrNameRequired),
// a name or definition outside the contract (backend.ErrInvalidLimit, see
// backend.CheckName and backend.CheckSpecs), and a set past the server's cap
// per connection (ErrServerLimit). It fails with an error matching
// backend.ErrLimitMismatch when the set exists with other specs, and
// backend.ErrBackendUnavailable when the server cannot be reached.
func (c *Client) Open(ctx context.Context, name string, specs []backend.Spec) (backend.Set, error) {
	if err := backend.CheckName(name); err != nil {
		return nil, err
	}
	if err := backend.CheckSpecs(specs); err != nil {
		return nil, err
	}
	s := newClientSet(c, name, slices.Clone(specs))
	if _, err := s.bind(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Hosting reports whether this client is currently serving the socket from
// inside its process (auto-host).
func (c *Client) Hosting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.host != nil
}

// Close drops the client's connections (the server releases whatever they
// held) and, if the client is hosting, stops its server so that another
// process takes over. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	host := c.host
	c.host = nil
	live := make([]*clientConn, 0, len(c.live))
	for cc := range c.live {
		live = append(live, cc)
	}
	c.mu.Unlock()
	close(c.quit)
	for _, cc := range live {
		cc.fail(errClientClosed)
	}
	c.wg.Wait()
	if host != nil {
		return host.Close()
	}
	return nil
}

// unavailable wraps err in backend.ErrBackendUnavailable.
func (c *Client) unavailable(err error) error {
	if errors.Is(err, backend.ErrBackendUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", backend.ErrBackendUnavailable, c.path, err)
}

// slotOf returns the pool slot of the set name: every request of this client
// on one set travels on one connection, so the server handles them in the
// order they were made.
func (c *Client) slotOf(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(len(c.slots)))
}

// conn returns the live connection of slot i, connecting it if needed. A
// caller waiting for another goroutine's dial gives up when ctx ends.
func (c *Client) conn(ctx context.Context, i int) (*clientConn, error) {
	s := &c.slots[i]
	if cc := s.conn.Load(); cc != nil && !cc.dead.Load() {
		return cc, nil
	}
	select {
	case s.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, backend.ContextError(ctx)
	}
	defer func() { <-s.dialing }()
	if cc := s.conn.Load(); cc != nil && !cc.dead.Load() {
		return cc, nil
	}
	cc, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	s.conn.Store(cc)
	return cc, nil
}

// instance returns the server instance connection id was made to, 0 when
// unknown.
func (c *Client) instance(id uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.instances[id]
}

// connect dials the server, hosting it first when allowed and nothing
// listens. Failures start a backoff during which calls fail at once.
func (c *Client) connect(ctx context.Context) (*clientConn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, c.unavailable(errClientClosed)
	}
	if time.Now().Before(c.retryAt) {
		err := c.lastErr
		c.mu.Unlock()
		return nil, c.unavailable(fmt.Errorf("reconnecting after backoff: %w", err))
	}
	c.mu.Unlock()
	cc, err := c.dial(ctx)
	if err != nil && !c.opts.DisableAutoHost && noServer(err) {
		cc, err = c.hostAndDial(ctx)
	}
	c.mu.Lock()
	if err == nil && c.closed {
		c.mu.Unlock()
		cc.c.Close() // its reader never started
		return nil, c.unavailable(errClientClosed)
	}
	defer c.mu.Unlock()
	if err != nil && ctx.Err() != nil {
		return nil, backend.ContextError(ctx) // the caller gave up: not the server's failure
	}
	if err != nil {
		c.backoff = min(max(2*c.backoff, c.opts.MinBackoff), c.opts.MaxBackoff)
		c.retryAt, c.lastErr = time.Now().Add(c.backoff), err
		return nil, c.unavailable(err)
	}
	if c.dropped {
		c.dropped = false
		c.log.Info("reconnected to the limit server", "server_pid", cc.server.pid)
	}
	c.backoff, c.retryAt = 0, time.Time{}
	c.live[cc] = struct{}{}
	c.instances[cc.id] = cc.server.instance
	c.wg.Add(1)
	go cc.background()
	return cc, nil
}

// lost takes cc, which has ended, off the live connections, and logs the
// loss unless the client is closing.
func (c *Client) lost(cc *clientConn, cause error) {
	c.mu.Lock()
	delete(c.live, cc)
	closed := c.closed
	if !closed {
		c.dropped = true
	}
	c.mu.Unlock()
	if !closed {
		c.log.Warn("connection to the limit server lost", "server_pid", cc.server.pid, "err", cause)
	}
}

// noServer reports whether err means nothing listens at the path.
func noServer(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// dial connects, checks the server's user and exchanges hellos.
func (c *Client) dial(ctx context.Context) (*clientConn, error) {
	d := net.Dialer{Timeout: c.opts.Timeout}
	nc, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, err
	}
	uc := nc.(*net.UnixConn)
	if err := checkServer(uc, c.opts.AllowServerUIDs); err != nil {
		uc.Close()
		return nil, err
	}
	r := wire.NewReader(uc, clientMaxFrame)
	info, err := hello(ctx, uc, r, c.opts.Timeout)
	if err != nil {
		uc.Close()
		if ctx.Err() != nil {
			return nil, backend.ContextError(ctx)
		}
		return nil, err
	}
	return newClientConn(c, uc, r, c.cids.Add(1)&(1<<(64-leaseBits)-1), info), nil
}

// serverInfo is what a server says of itself in its HelloOK.
type serverInfo struct {
	pid, instance uint64
	sets, waits   int64 // caps per connection
}

// hello sends the client's Hello and checks the server's answer.
func hello(ctx context.Context, uc *net.UnixConn, r *wire.Reader, timeout time.Duration) (serverInfo, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := uc.SetDeadline(deadline); err != nil {
		return serverInfo{}, err
	}
	stop := context.AfterFunc(ctx, func() { _ = uc.SetDeadline(aLongTimeAgo) })
	defer stop()
	_, werr := uc.Write((&wire.Msg{Op: wire.OpHello, Version: wire.Version}).Append(nil))
	var m wire.Msg
	body, err := r.Next() // even when the write failed: a server refusing us may have said why, and closed
	if err == nil {
		err = m.Decode(body)
	}
	switch {
	case werr != nil && (err != nil || m.Op != wire.OpError):
		return serverInfo{}, werr
	case err != nil:
		return serverInfo{}, fmt.Errorf("hello: %w", err)
	case m.Op == wire.OpError && m.Code == wire.CodeVersion:
		return serverInfo{}, fmt.Errorf("%w: %s", ErrVersionMismatch, m.Text)
	case m.Op == wire.OpError && m.Code == wire.CodePermission:
		return serverInfo{}, fmt.Errorf("%w: %s", ErrPermissionDenied, m.Text)
	case m.Op == wire.OpError:
		return serverInfo{}, &wire.RemoteError{Code: m.Code, Text: m.Text}
	case m.Op != wire.OpHelloOK:
		return serverInfo{}, fmt.Errorf("hello: unexpected %v: %s", m.Op, m.Text)
	case m.Version != wire.Version:
		return serverInfo{}, fmt.Errorf("%w: server version %d, client %d", ErrVersionMismatch, m.Version, wire.Version)
	}
	info := serverInfo{
		pid: m.PID, instance: m.Instance,
		sets: int64(min(m.ConnSets, 1<<40)), waits: int64(min(m.ConnWaits, 1<<40)),
	}
	return info, uc.SetDeadline(time.Time{})
}

// watchdogTick is the longest period of the watchdog.
const watchdogTick = 250 * time.Millisecond

// watchdog drops connections whose server stopped answering, so no call
// waits forever on a hung server; writes lazy frames that no later request
// carried; has idle connections watched, so that a drop is noticed at once
// (see readTurn); and stops a server this client hosts that stopped
// accepting, so that it gives up the lock to a process that can serve.
func (c *Client) watchdog() {
	defer c.wg.Done()
	t := time.NewTicker(max(min(c.opts.Timeout/4, watchdogTick), time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case now := <-t.C:
			for i := range c.slots {
				cc := c.slots[i].conn.Load()
				switch {
				case cc == nil || cc.dead.Load():
				case cc.stuck(now.UnixNano(), c.opts.Timeout):
					cc.fail(fmt.Errorf("no answer from the server for %v", c.opts.Timeout))
				default:
					if err := cc.out.flush(); err != nil {
						cc.fail(err)
					}
					cc.watch()
				}
			}
			c.dropFailedHost()
		}
	}
}

// dropFailedHost closes the server this client hosts once it has stopped
// accepting connections.
func (c *Client) dropFailedHost() {
	c.mu.Lock()
	host := c.host
	if host == nil {
		c.mu.Unlock()
		return
	}
	select {
	case <-host.Done():
		c.host = nil
	default:
		host = nil
	}
	c.mu.Unlock()
	if host != nil {
		c.log.Warn("the limit server hosted here stopped accepting; giving up the socket to another process", "err", host.acceptErr)
		host.Close()
	}
}
