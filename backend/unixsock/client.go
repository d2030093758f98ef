package unixsock

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
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
// connections; all requests on one set name go over the same one. By default, when nothing listens at the path, the first
// client to take the lock file PATH.lock starts a server inside its own
// process and the others connect to it; when that process exits, the next
// client to reconnect takes over, with fresh state (see the package doc).
// When the server cannot be reached, calls fail at once with an error
// matching backend.ErrBackendUnavailable, and the next call after a backoff
// tries to reconnect. A Client is safe for concurrent use; Close it when done.
type Client struct {
	path  string
	opts  Options
	slots []slot
	cids  atomic.Uint64
	quit  chan struct{}
	wg    sync.WaitGroup // readers and the watchdog

	mu      sync.Mutex
	closed  bool                     // guarded by mu
	retryAt time.Time                // guarded by mu; no dial before this instant
	backoff time.Duration            // guarded by mu
	lastErr error                    // guarded by mu; the last dial failure
	host    *Server                  // guarded by mu; the server this client auto-hosts
	live    map[*clientConn]struct{} // guarded by mu; connections whose reader runs
}

// slot is one connection of the pool; dialing it is serialized by mu.
type slot struct {
	mu   sync.Mutex
	conn atomic.Pointer[clientConn]
}

// Dial returns a client of the server at path. It does not connect: the
// first Open does, starting a server in this process if auto-hosting is on
// and nothing listens at path.
func Dial(path string, opts Options) (*Client, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("concurry: socket path %q is longer than %d bytes", path, maxSocketPath)
	}
	opts = opts.withDefaults()
	c := &Client{path: path, opts: opts, slots: make([]slot, opts.Conns), quit: make(chan struct{}), live: make(map[*clientConn]struct{})}
	c.wg.Add(1)
	go c.watchdog()
	return c, nil
}

// Open implements backend.Backend: it returns the set name of the server,
// defining it with specs if no client has yet. It fails with an error
// matching backend.ErrLimitMismatch when the set exists with other specs,
// ErrNoName for an empty name, and backend.ErrBackendUnavailable when the
// server cannot be reached.
func (c *Client) Open(ctx context.Context, name string, specs []backend.Spec) (backend.Set, error) {
	if name == "" {
		return nil, ErrNoName
	}
	s := &Set{cl: c, name: name, specs: slices.Clone(specs), slot: c.slotOf(name)}
	if _, _, err := s.conn(ctx); err != nil {
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

// conn returns the live connection of slot i, connecting it if needed.
func (c *Client) conn(ctx context.Context, i int) (*clientConn, error) {
	s := &c.slots[i]
	if cc := s.conn.Load(); cc != nil && !cc.dead.Load() {
		return cc, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
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

// connByID returns the live connection of the given id, nil if it is gone.
func (c *Client) connByID(id uint64) *clientConn {
	for i := range c.slots {
		if cc := c.slots[i].conn.Load(); cc != nil && cc.id == id {
			if cc.dead.Load() {
				return nil
			}
			return cc
		}
	}
	return nil
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
	if err != nil {
		c.backoff = min(max(2*c.backoff, c.opts.MinBackoff), c.opts.MaxBackoff)
		c.retryAt, c.lastErr = time.Now().Add(c.backoff), err
		return nil, c.unavailable(err)
	}
	c.backoff, c.retryAt = 0, time.Time{}
	c.live[cc] = struct{}{}
	c.wg.Add(1)
	go cc.readLoop()
	return cc, nil
}

// noServer reports whether err means nothing listens at the path.
func noServer(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// dial connects and exchanges hellos.
func (c *Client) dial(ctx context.Context) (*clientConn, error) {
	d := net.Dialer{Timeout: c.opts.Timeout}
	nc, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, err
	}
	uc := nc.(*net.UnixConn)
	r := wire.NewReader(uc, clientMaxFrame)
	if err := hello(uc, r, c.opts.Timeout); err != nil {
		uc.Close()
		return nil, err
	}
	return newClientConn(c, uc, r, c.cids.Add(1)&(1<<(64-leaseBits)-1)), nil
}

// hello sends the client's Hello and checks the server's answer.
func hello(uc *net.UnixConn, r *wire.Reader, timeout time.Duration) error {
	if err := uc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := uc.Write((&wire.Msg{Op: wire.OpHello, Version: wire.Version}).Append(nil)); err != nil {
		return err
	}
	var m wire.Msg
	body, err := r.Next()
	if err == nil {
		err = m.Decode(body)
	}
	switch {
	case err != nil:
		return fmt.Errorf("hello: %w", err)
	case m.Op == wire.OpError && m.Code == wire.CodeVersion:
		return fmt.Errorf("%w: %s", ErrVersionMismatch, m.Text)
	case m.Op == wire.OpError && m.Code == wire.CodePermission:
		return fmt.Errorf("%w: %s", ErrPermissionDenied, m.Text)
	case m.Op != wire.OpHelloOK:
		return fmt.Errorf("hello: unexpected %v: %s", m.Op, m.Text)
	case m.Version != wire.Version:
		return fmt.Errorf("%w: server version %d, client %d", ErrVersionMismatch, m.Version, wire.Version)
	}
	return uc.SetDeadline(time.Time{})
}
