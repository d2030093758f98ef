// Package testutil holds small helpers shared by the tests of several
// packages. It is for tests only.
package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// SocketPath returns a socket path in a fresh short directory under the
// system's temporary directory, removed when the test ends: t.TempDir can
// exceed the 108 bytes a Unix socket address holds.
func SocketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// SyncBuffer is a bytes.Buffer safe for concurrent use, for capturing logs.
// The zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitOrFail waits for wg, failing the test with msg if that takes longer
// than any correct run could (10 s): a hang fails the test instead of the
// whole run's timeout.
func WaitOrFail(t testing.TB, wg *sync.WaitGroup, msg string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal(msg)
	}
}
