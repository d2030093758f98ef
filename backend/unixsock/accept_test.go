package unixsock

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry/backend"
)

// TestAcceptOutOfFiles runs a server process with a low limit of open files
// and connects more clients than it can accept: it logs the EMFILE, backs
// off, and serves again once the connections are gone (it used to stop
// accepting for good).
func TestAcceptOutOfFiles(t *testing.T) {
	path := sockPath(t)
	srv := startChild(t, "", "serve", nil, "CQ_SOCK="+path, "CQ_NOFILE=32")
	srv.expect(t, "SERVING", 10*time.Second)
	var conns []net.Conn
	for range 64 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for !strings.Contains(srv.expect(t, "LOG ", 10*time.Second), "accept failed") {
	}
	for _, c := range conns {
		c.Close()
	}
	c := dial(t, path, Options{DisableAutoHost: true, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	eventually(t, "served again", func() error {
		set, err := c.Open(context.Background(), "after", connSpecs)
		if err == nil {
			set.Close()
		}
		return err
	})
}

// TestAutoHostGivesUpLock: when the server a client hosts stops accepting
// for good, the client closes it, so that the lock is free for a process
// that can serve (it used to keep the flock while serving nothing).
func TestAutoHostGivesUpLock(t *testing.T) {
	path := sockPath(t)
	c := dial(t, path, Options{Timeout: 100 * time.Millisecond})
	if _, err := c.Open(context.Background(), "x", connSpecs); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	host := c.host
	c.mu.Unlock()
	if host == nil {
		t.Fatal("the client does not host")
	}
	host.ln.Close() // accept fails with an error no retry helps
	var srv *Server
	eventually(t, "another server takes the path", func() error {
		var err error
		srv, err = Listen(path, ServerOptions{Logger: testLogger()})
		return err
	})
	defer srv.Close()
	if c.Hosting() {
		t.Fatal("the client still says it hosts")
	}
	other := dial(t, path, Options{DisableAutoHost: true})
	if _, err := other.Open(context.Background(), "x", connSpecs); err != nil && !errors.Is(err, backend.ErrLimitMismatch) {
		t.Fatalf("the new server: %v", err)
	}
}
