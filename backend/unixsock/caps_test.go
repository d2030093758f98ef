package unixsock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
	"github.com/concurry/concurry/internal/testutil"
)

// TestServerCaps: past MaxConns a connection is refused at its hello, past
// MaxSets a new name — each with ErrServerLimit for the offending request
// alone, while the clients already served go on.
func TestServerCaps(t *testing.T) {
	var log testutil.SyncBuffer
	srv := startServer(t, ServerOptions{MaxConns: 2, MaxSets: 3, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	a := dial(t, srv.Path(), Options{DisableAutoHost: true, Conns: 1})
	b := dial(t, srv.Path(), Options{DisableAutoHost: true, Conns: 1})
	for _, open := range []struct {
		c    *Client
		name string
	}{{a, "a"}, {b, "b"}, {a, "a2"}, {b, "a"}} { // three names; the fourth open is of a name held already
		if _, err := open.c.Open(context.Background(), open.name, connSpecs); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, srv.Path(), Options{DisableAutoHost: true, Conns: 1})
	if _, err := c.Open(context.Background(), "c", connSpecs); !errors.Is(err, ErrServerLimit) || !errors.Is(err, backend.ErrBackendUnavailable) {
		t.Fatalf("a third connection past MaxConns 2: %v, want ErrServerLimit", err)
	}
	if _, err := a.Open(context.Background(), "a3", connSpecs); !errors.Is(err, ErrServerLimit) {
		t.Fatalf("a fourth set past MaxSets 3: %v, want ErrServerLimit", err)
	}
	if _, err := b.Open(context.Background(), "a2", connSpecs); err != nil {
		t.Fatalf("the clients served go on: %v", err)
	}
	for _, want := range []string{"MaxConns", "request refused"} { // refusals are logged at most once a second
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log does not mention %q:\n%s", want, log.String())
		}
	}
}

// TestMaxWaits: past MaxWaits, over all connections, a wait is refused with
// ErrServerLimit, and the waits and holdings already there are kept.
func TestMaxWaits(t *testing.T) {
	srv := startServer(t, ServerOptions{MaxWaits: 2})
	var sets []backend.Set
	var leases []backend.Lease
	for range 2 {
		c := dial(t, srv.Path(), Options{DisableAutoHost: true, Conns: 1})
		s, err := c.Open(context.Background(), "w", []backend.Spec{{Key: "conn", Kind: backend.Resource, Capacity: 2}})
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.Acquire(context.Background(), []int64{1}, backend.AcquireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sets, leases = append(sets, s), append(leases, l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waits := make(chan error, 2)
	for _, s := range sets {
		go func() {
			_, err := s.Acquire(ctx, []int64{1}, backend.AcquireOptions{Wait: true})
			waits <- err
		}()
	}
	eventually(t, "two acquisitions wait", func() error {
		if n := srv.waits.Load(); n != 2 {
			return fmt.Errorf("%d wait", n)
		}
		return nil
	})
	if _, err := sets[0].Acquire(context.Background(), []int64{1}, backend.AcquireOptions{Wait: true}); !errors.Is(err, ErrServerLimit) {
		t.Fatalf("a third wait past MaxWaits 2: %v, want ErrServerLimit", err)
	}
	cancel()
	for range 2 {
		if err := <-waits; !errors.Is(err, context.Canceled) {
			t.Fatalf("waiter: %v", err)
		}
	}
	for i, s := range sets {
		if err := s.Settle(context.Background(), leases[i], []int64{1}, nil, true, nil); err != nil {
			t.Fatalf("a holding after the refusal: %v", err)
		}
	}
}

// TestFrameTimeout: a connection that stalls inside a frame is dropped after
// FrameTimeout; one that idles between frames for longer is not.
func TestFrameTimeout(t *testing.T) {
	var log testutil.SyncBuffer
	srv := startServer(t, ServerOptions{FrameTimeout: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	idle := rawConn(t, srv.Path())
	openRaw(t, idle, wire.Msg{Op: wire.OpOpen, ID: 2, Name: "idle", Specs: connSpecs})
	stalled := rawConn(t, srv.Path())
	rawHello(t, stalled)
	start := time.Now()
	stalled.Write((&wire.Msg{Op: wire.OpStats, ID: 2, SetID: 1}).Append(nil)[:6])
	wantClosed(t, stalled)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("dropped after %v, before the frame timeout", d)
	}
	writeMsg(t, idle, wire.Msg{Op: wire.OpStats, ID: 3, SetID: 1}) // idle longer than FrameTimeout
	if m := readMsg(t, idle); m.Op != wire.OpStatsOK {
		t.Fatalf("the idle connection: %v %q", m.Op, m.Text)
	}
	if !strings.Contains(log.String(), "stalled inside a frame") {
		t.Errorf("no warning of the stalled client:\n%s", log.String())
	}
}

// TestIdleSetForgotten: a set nobody has open is kept while it is not full
// (forgetting it would reset its limits), and forgotten once it is full
// again, long before its longest window (an hour) has passed.
func TestIdleSetForgotten(t *testing.T) {
	srv := startServer(t, ServerOptions{IdleCheck: 20 * time.Millisecond})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	// 36,000 an hour: a unit back every 100ms; 5 taken are back in 500ms.
	specs := []backend.Spec{{Key: "calls", Window: time.Hour, Capacity: 36_000}}
	set, err := c.Open(context.Background(), "idle", specs)
	if err != nil {
		t.Fatal(err)
	}
	l, err := set.Acquire(context.Background(), []int64{5}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Settle(context.Background(), l, []int64{5}, nil, true, nil); err != nil {
		t.Fatal(err)
	}
	set.Close()
	if n := srv.Sets(); n != 1 {
		t.Fatalf("%d sets held right after the last close, want 1: it is not full yet", n)
	}
	eventually(t, "the full idle set is forgotten", func() error {
		if n := srv.Sets(); n != 0 {
			return fmt.Errorf("%d sets held", n)
		}
		return nil
	})
	resource, err := c.Open(context.Background(), "resource", connSpecs)
	if err != nil {
		t.Fatal(err)
	}
	resource.Close()
	if n := srv.Sets(); n != 0 {
		t.Fatalf("%d sets held after closing a free resource set, want 0: it was full at once", n)
	}
}
