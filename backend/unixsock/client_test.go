package unixsock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

var connSpecs = []backend.Spec{{Key: "conn", Kind: backend.Resource, Capacity: 1}}

// eventually retries f every few milliseconds until it succeeds or 5s pass.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 5s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUnavailable: with no server, calls fail at once with
// ErrBackendUnavailable; once a server listens, the client connects.
func TestUnavailable(t *testing.T) {
	path := sockPath(t)
	c := dial(t, path, Options{DisableAutoHost: true, MinBackoff: 50 * time.Millisecond})
	for range 3 {
		start := time.Now()
		_, err := c.Open(context.Background(), "x", connSpecs)
		if !errors.Is(err, backend.ErrBackendUnavailable) || !errors.Is(err, concurry.ErrBackendUnavailable) {
			t.Fatalf("no server: got %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("failing took %v", d)
		}
	}
	srv, err := Listen(path, ServerOptions{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	eventually(t, "open after the server started", func() error {
		_, err := c.Open(context.Background(), "x", connSpecs)
		return err
	})
}

// TestServerRestart is a concurryd restart: holdings end with the old
// server, calls fail fast while it is down, and the client reconnects to
// the new one.
func TestServerRestart(t *testing.T) {
	path := sockPath(t)
	srv, err := Listen(path, ServerOptions{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, path, Options{DisableAutoHost: true})
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
		concurry.WithName("restart"), concurry.WithBackend(c))
	if err != nil {
		t.Fatal(err)
	}
	held, err := ls.Acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if _, err := ls.TryAcquire(context.Background(), nil); !errors.Is(err, concurry.ErrBackendUnavailable) {
		t.Fatalf("server down: got %v", err)
	}
	if err := held.Release(); !errors.Is(err, concurry.ErrLeaseLost) {
		t.Fatalf("releasing a lease of the old server: got %v, want ErrLeaseLost", err)
	}
	srv, err = Listen(path, ServerOptions{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	eventually(t, "acquire after the restart", func() error {
		a, err := ls.TryAcquire(context.Background(), nil)
		if err == nil {
			err = a.Release()
		}
		return err
	})
}

// TestClaimGivesBack: a grant that arrives after another set won the claim
// is given back, resources and refundable rate units alike.
func TestClaimGivesBack(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	specs := []backend.Spec{
		{Key: "tokens", Kind: backend.Rate, Algorithm: algorithms.TokenBucket, Window: 1000 * time.Hour, Capacity: 10},
		{Key: "conn", Kind: backend.Resource, Capacity: 1},
	}
	set, err := c.Open(context.Background(), "claim", specs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	held, err := set.Acquire(ctx, []int64{1, 1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claim := new(backend.Claim)
	got := make(chan error, 1)
	go func() {
		_, err := set.Acquire(ctx, []int64{5, 1}, backend.AcquireOptions{Wait: true, Claim: claim})
		got <- err
	}()
	eventually(t, "the claimed request waits", func() error {
		if _, err := set.Acquire(ctx, []int64{1, 0}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrWouldBlock) {
			return errors.New("not queued yet")
		}
		return nil
	})
	claim.TryClaim() // another set wins
	if err := set.Settle(ctx, held, []int64{1, 1}, []int64{-1, 0}, true, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, backend.ErrClaimed) {
		t.Fatalf("got %v, want ErrClaimed", err)
	}
	st, err := set.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Available < 9 || st[1].InUse != 0 {
		t.Fatalf("after giving back: %+v", st)
	}
	if _, err := set.Acquire(ctx, []int64{1, 1}, backend.AcquireOptions{Claim: claim}); !errors.Is(err, backend.ErrClaimed) {
		t.Fatalf("a taken claim: got %v", err)
	}
}

// TestDropReleases: closing a client releases its holdings and its waits,
// and wakes the waiters of other clients.
func TestDropReleases(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	a, b := dial(t, srv.Path(), Options{}), dial(t, srv.Path(), Options{})
	sa, err := a.Open(context.Background(), "drop", connSpecs)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Open(context.Background(), "drop", connSpecs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sa.Acquire(context.Background(), []int64{1}, backend.AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
	waitA := make(chan error, 1)
	go func() {
		_, err := sa.Acquire(context.Background(), []int64{1}, backend.AcquireOptions{Wait: true})
		waitA <- err
	}()
	waitB := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := sb.Acquire(ctx, []int64{1}, backend.AcquireOptions{Wait: true})
		waitB <- err
	}()
	a.Close()
	if err := <-waitA; !errors.Is(err, backend.ErrBackendUnavailable) {
		t.Fatalf("the closed client's waiter: %v", err)
	}
	if err := <-waitB; err != nil {
		t.Fatalf("the other client's waiter: %v", err)
	}
}

// TestRetain: a set nobody has open keeps its definition for Retain, then
// may be defined anew.
func TestRetain(t *testing.T) {
	other := []backend.Spec{{Key: "conn", Kind: backend.Resource, Capacity: 2}}
	for _, retain := range []time.Duration{time.Hour, -1} {
		srv := startServer(t, ServerOptions{Retain: retain})
		c := dial(t, srv.Path(), Options{})
		set, err := c.Open(context.Background(), "r", connSpecs)
		if err != nil {
			t.Fatal(err)
		}
		set.Close()
		c.Close() // the server sees the connection end
		c = dial(t, srv.Path(), Options{})
		eventually(t, "the set is forgotten or kept", func() error {
			_, err = c.Open(context.Background(), "r", other)
			if retain > 0 && errors.Is(err, backend.ErrLimitMismatch) {
				return nil
			}
			return err
		})
	}
}

// TestHungServer: a server that stops answering is detected after Timeout.
func TestHungServer(t *testing.T) {
	c := dial(t, mute(t, wire.Version), Options{DisableAutoHost: true, Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := c.Open(context.Background(), "x", connSpecs)
	if !errors.Is(err, backend.ErrBackendUnavailable) || !errors.Is(err, ErrConnLost) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v to notice", d)
	}
}

func TestSocketFiles(t *testing.T) {
	srv := startServer(t, ServerOptions{Group: "0"})
	fi, err := os.Stat(srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a 0600 socket", fi.Mode())
	}
	if _, err := Listen(srv.Path(), ServerOptions{}); !errors.Is(err, ErrServerRunning) {
		t.Fatalf("second server on the path: %v", err)
	}
	if _, err := Listen(srv.Path()+"x", ServerOptions{Group: "no-such-group-here"}); err == nil {
		t.Fatal("an unknown group was accepted")
	}
	regular := sockPath(t)
	os.WriteFile(regular, nil, 0o600)
	if _, err := Listen(regular, ServerOptions{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listening over a regular file: %v", err)
	}
	srv.Close()
	if _, err := os.Stat(srv.Path()); !os.IsNotExist(err) {
		t.Fatalf("socket left behind after Close: %v", err)
	}
	if _, err := Dial(strings.Repeat("x", 200), Options{}); err == nil {
		t.Fatal("a socket path over 107 bytes was accepted")
	}
	c := dial(t, sockPath(t), Options{})
	if _, err := c.Open(context.Background(), "", connSpecs); !errors.Is(err, backend.ErrNameRequired) {
		t.Fatalf("empty name: %v", err)
	}
}

// TestServe: Serve runs until its context ends and cleans up.
func TestServe(t *testing.T) {
	path := sockPath(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, path, ServerOptions{Logger: testLogger()}) }()
	c := dial(t, path, Options{DisableAutoHost: true})
	eventually(t, "serving", func() error {
		_, err := c.Open(context.Background(), "x", connSpecs)
		return err
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
	if err := Serve(context.Background(), "/nonexistent-dir/s", ServerOptions{Logger: testLogger()}); err == nil {
		t.Fatal("Serve on a bad path succeeded")
	}
}

// TestManySets opens and closes more sets on one connection than it may
// have open at once.
func TestManySets(t *testing.T) {
	srv := startServer(t, ServerOptions{Retain: -1, MaxConnSets: 64})
	c := dial(t, srv.Path(), Options{Conns: 1})
	for i := range 64 + 100 {
		set, err := c.Open(context.Background(), "many", connSpecs)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		set.Close()
	}
	if n := srv.Sets(); n != 0 {
		t.Fatalf("%d sets left after every one was closed", n)
	}
}

func TestSentinelsWrap(t *testing.T) {
	for _, s := range []error{ErrVersionMismatch, ErrPermissionDenied, ErrUntrustedServer, ErrServerRunning, ErrServerLimit, ErrNoName, ErrConnLost} {
		if err := fmt.Errorf("context: %w", s); !errors.Is(err, s) || !strings.HasPrefix(s.Error(), "concurry: ") {
			t.Errorf("%v", s)
		}
	}
}

// TestCloseWhileBusy closes clients while their goroutines connect, acquire
// and wait: nothing deadlocks or leaks (goleak checks the goroutines).
func TestCloseWhileBusy(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	for range 20 {
		c, err := Dial(srv.Path(), Options{Conns: 2})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		for g := range 8 {
			go func() {
				defer func() { done <- struct{}{} }()
				set, err := c.Open(context.Background(), fmt.Sprint("busy", g%3), connSpecs)
				if err != nil {
					return
				}
				for {
					l, err := set.Acquire(context.Background(), []int64{1}, backend.AcquireOptions{Wait: true})
					if err != nil {
						return
					}
					set.Settle(context.Background(), l, []int64{1}, nil, true, nil)
				}
			}()
		}
		c.Close()
		for range 8 {
			<-done
		}
	}
}
