package provider

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryURL is the URL of a Server made by New, which has no socket: it is
// reachable only through its Transport, which routes a request by its path
// and its host's first label, whatever the rest of the host.
const MemoryURL = "http://provider.invalid"

// Server is a simulated LLM provider: an http.Handler serving the APIs of
// the package comment for every (region, account) of its Options, each
// enforcing its Quota with its own accounting. New makes one reachable
// through its in-memory Transport; Start also serves it on a loopback
// socket. Safe for concurrent use.
type Server struct {
	// URL is the base URL of the server: "http://127.0.0.1:port" for a
	// Server from Start, MemoryURL for one from New.
	URL string

	opts     Options
	accounts map[string]*account // by region + "/" + account
	order    []*account          // regions, then accounts, in Options order
	ids      atomic.Uint64       // the last call's id

	// ctx is the parent of every handler's context; abort ends it when
	// Close stops waiting for them.
	ctx   context.Context
	abort context.CancelFunc

	mu     sync.Mutex
	closed bool           // guarded by mu
	active sync.WaitGroup // handlers running; Add is called under mu while not closed

	http     *http.Server  // nil without a socket
	served   chan struct{} // closed when http's Serve returns
	serveErr error         // why Serve returned; read after served is closed
}

// New returns a Server for o with no socket: reach it with Transport or
// Client. Every quota starts full now. It fails with ErrInvalidOptions for
// options that can never run. Close it when done.
func New(o Options) (*Server, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{URL: MemoryURL, opts: o, accounts: map[string]*account{}}
	s.ctx, s.abort = context.WithCancel(context.Background())
	now := time.Now()
	for _, r := range o.Regions {
		for _, a := range o.Accounts {
			acct := newAccount(r, a, o, now)
			s.accounts[r+"/"+a] = acct
			s.order = append(s.order, acct)
		}
	}
	return s, nil
}

// Start returns a Server for o serving on a random port of 127.0.0.1 (its
// URL), and reachable through Transport too. Close it when done.
func Start(o Options) (*Server, error) {
	s, err := New(o)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.abort()
		return nil, err
	}
	s.URL = "http://" + ln.Addr().String()
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
	}()
	return s, nil
}

// BaseURL returns the URL prefix of a (region, account): URL/region/account.
func (s *Server) BaseURL(region, account string) string { return s.URL + "/" + region + "/" + account }

// OpenAIBaseURL returns the base URL an OpenAI client of a (region,
// account) needs: BaseURL + "/v1/".
func (s *Server) OpenAIBaseURL(region, account string) string {
	return s.BaseURL(region, account) + "/v1/"
}

// AnthropicBaseURL returns the base URL an Anthropic client of a (region,
// account) needs: BaseURL + "/".
func (s *Server) AnthropicBaseURL(region, account string) string {
	return s.BaseURL(region, account) + "/"
}

// InvokeURL returns the URL of the plain endpoint of a (region, account):
// BaseURL + "/invoke".
func (s *Server) InvokeURL(region, account string) string {
	return s.BaseURL(region, account) + "/invoke"
}

// Client returns an HTTP client whose calls go through Transport.
func (s *Server) Client() *http.Client { return &http.Client{Transport: s.Transport()} }

// ServeHTTP serves one call, or 503 once the Server is closed. The call
// ends when r's context does, or when Close cuts the calls in flight off.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "provider closed", http.StatusServiceUnavailable)
		return
	}
	defer s.active.Done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	s.serve(w, r.WithContext(ctx))
}

// enter counts a handler in, unless the Server is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active.Add(1)
	return true
}

// Close stops the Server: it takes no more calls, and waits for those in
// flight to end — streams included — until ctx ends; then it cuts them off
// (their contexts end, their writes fail), waits for their handlers to
// return, and returns ctx's error. A socket that stopped serving before
// Close is reported too. Later calls of Close return at once.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	s.mu.Unlock()
	var err error
	if s.http != nil && first {
		if err = s.http.Shutdown(ctx); err != nil {
			s.abort()
			_ = s.http.Close()
		}
		<-s.served
		err = errors.Join(err, s.serveErr)
	}
	done := make(chan struct{})
	go func() {
		s.active.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.abort()
		<-done
		err = ctx.Err()
	}
	s.abort()
	return err
}
