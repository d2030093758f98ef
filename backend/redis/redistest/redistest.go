// Package redistest starts throwaway redis-server processes for tests: a
// single node or a 3-master Redis Cluster, on free loopback ports, in
// temporary directories, killed when the test ends.
//
// When redis-server is not installed, tests skip, unless the environment
// variable CI is set: then they fail, so CI cannot pass by running nothing.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a server or cluster may take to come up.
const startTimeout = 15 * time.Second

// Require returns the path of the redis-server binary. When it is missing
// it skips the test, or fails it when the environment variable CI is set.
func Require(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("redistest: redis-server is required in CI: %v", err)
	}
	t.Skipf("redistest: redis-server not installed: %v", err)
	return ""
}

// Server is one redis-server process on 127.0.0.1. Its methods are safe for
// concurrent use.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	args []string
	// Addr is host:port of the server.
	Addr string

	mu  sync.Mutex
	cmd *exec.Cmd // guarded by mu; nil while stopped
}

// Start starts a redis-server on a free loopback port and stops it when the
// test ends. args are extra server options, such as "--appendonly", "yes".
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: Require(t), dir: t.TempDir(), args: args}
	s.Addr = "127.0.0.1:" + strconv.Itoa(freePort(t, false))
	t.Cleanup(s.Kill)
	t.Cleanup(s.Resume) // runs first: a paused server answers the clients closing
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Client returns a new client of the server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Restart starts the server again (on the same port and directory) if it
// is stopped, and waits until it answers PING.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--dir", s.dir, "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log")}, s.args...)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	s.cmd = cmd
	if err := waitPing(s.Addr); err != nil {
		return fmt.Errorf("%w; log:\n%s", err, s.log())
	}
	return nil
}

// Stop shuts the server down cleanly (SHUTDOWN, so an append-only file is
// complete) and waits for the process to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	_ = c.Shutdown(context.Background()).Err()
	_ = c.Close()
	s.wait()
}

// Kill kills the server with SIGKILL, if it is running.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	s.wait()
}

// Pause stops the server with SIGSTOP, as a stall would: it keeps its
// connections and accepts new ones, but answers nothing until Resume. The
// server is resumed when the test ends, before it is killed.
func (s *Server) Pause() {
	s.signal(syscall.SIGSTOP)
}

// Resume continues a server stopped by Pause (SIGCONT).
func (s *Server) Resume() {
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Errorf("redistest: %v: %v", sig, err)
	}
}

// wait reaps the process, killing it if it has not exited in time. Requires
// mu held.
func (s *Server) wait() {
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(startTimeout):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}

// waitPing waits until addr answers PING.
func waitPing(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	var err error
	for time.Now().Before(deadline) {
		if err = c.Ping(context.Background()).Err(); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond) // the server is starting: nothing to wait on but its port
	}
	return fmt.Errorf("redistest: %s did not answer PING: %w", addr, err)
}

// freePort returns a loopback TCP port that is free now; with bus, port+10000
// (the cluster bus) is free too.
func freePort(t testing.TB, bus bool) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: no free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !bus {
			return port
		}
		if port+10000 > 65535 {
			continue
		}
		if l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			_ = l2.Close()
			return port
		}
	}
	t.Fatal("redistest: no free port pair for a cluster node")
	return 0
}

// isOK reports whether CLUSTER INFO says the cluster serves every slot.
func isOK(info string) bool { return strings.Contains(info, "cluster_state:ok") }
