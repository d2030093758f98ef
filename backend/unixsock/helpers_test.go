package unixsock

import (
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/concurry/concurry/backend/unixsock/internal/wire"
	"github.com/concurry/concurry/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

// testLogger discards the server's log unless CONCURRY_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("CONCURRY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// sockPath returns a socket path in a fresh short directory.
func sockPath(t testing.TB) string { return testutil.SocketPath(t) }

// startServer listens on a fresh path and stops the server when the test ends.
func startServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	s, err := Listen(sockPath(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dial returns a client of path, closed when the test ends.
func dial(t testing.TB, path string, opts Options) *Client {
	t.Helper()
	if opts.Server.Logger == nil {
		opts.Server.Logger = testLogger()
	}
	c, err := Dial(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

// mute listens on a fresh path as a fake server that answers the first
// client's hello with the given protocol version, then reads and never
// answers again. It returns the path; the listener closes when the test ends.
func mute(t *testing.T, version uint64) string {
	t.Helper()
	path := sockPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		wire.NewReader(s, 0).Next()
		s.Write((&wire.Msg{Op: wire.OpHelloOK, Version: version, ConnSets: 10, ConnWaits: 10}).Append(nil))
		io.Copy(io.Discard, s)
	}()
	return path
}
