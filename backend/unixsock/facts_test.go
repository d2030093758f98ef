package unixsock

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// callsAndConn is a set of a rate limit (spec 0) and a resource of one
// unit (spec 1).
var callsAndConn = []backend.Spec{
	{Key: "calls", Kind: backend.Rate, Window: time.Hour, Capacity: 1000},
	{Key: "conn", Kind: backend.Resource, Capacity: 1},
}

// TestQueuedOnlyWhenWaiting: the server answers a waiting Acquire it can
// grant at once with its Granted alone (no frame more than a TryAcquire
// costs), and one it must queue with a Queued frame naming the limit that
// blocks it, before the Granted that follows the release.
func TestQueuedOnlyWhenWaiting(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := rawConn(t, srv.Path())
	rawHello(t, c)
	writeMsg(t, c, wire.Msg{Op: wire.OpOpen, ID: 2, Name: "queued", Specs: callsAndConn})
	if m := readMsg(t, c); m.Op != wire.OpOpened {
		t.Fatalf("open answered with %v %q", m.Op, m.Text)
	}
	writeMsg(t, c, wire.Msg{Op: wire.OpAcquire, ID: 3, SetID: 1, Flags: wire.FlagWait, Values: []int64{1, 1}})
	first := readMsg(t, c)
	if first.Op != wire.OpGranted || first.ID != 3 {
		t.Fatalf("a waiting Acquire granted at once: got %v for id %d, want Granted alone", first.Op, first.ID)
	}
	writeMsg(t, c, wire.Msg{Op: wire.OpAcquire, ID: 4, SetID: 1, Flags: wire.FlagWait, Values: []int64{1, 1}})
	if m := readMsg(t, c); m.Op != wire.OpQueued || m.ID != 4 || m.Spec != 1 {
		t.Fatalf("a waiting Acquire the server queued: got %v for id %d, spec %d; want Queued, spec 1 (conn)", m.Op, m.ID, m.Spec)
	}
	writeMsg(t, c, wire.Msg{Op: wire.OpSettle, ID: 5, Lease: first.Lease, Flags: wire.FlagFinal | wire.FlagQuiet})
	if m := readMsg(t, c); m.Op != wire.OpGranted || m.ID != 4 {
		t.Fatalf("after the release: got %v for id %d, want Granted for 4", m.Op, m.ID)
	}
}

// TestWaitFacts: through the client, a request granted at once reports no
// wait and calls no OnWait; one the server queues calls OnWait once with
// the limit that blocks it and reports the wait; a TryAcquire refused
// carries the key that refused it.
func TestWaitFacts(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	set, err := dial(t, srv.Path(), Options{DisableAutoHost: true}).Open(context.Background(), "facts", callsAndConn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	onWait := make(chan int, 2)
	var rep backend.AcquireReport
	opts := backend.AcquireOptions{Wait: true, Report: &rep, OnWait: func(spec int) { onWait <- spec }}
	held, err := set.Acquire(ctx, []int64{1, 1}, opts)
	if err != nil || rep != (backend.AcquireReport{Blocker: -1}) || len(onWait) != 0 {
		t.Fatalf("granted at once: %v, report %+v, %d OnWait calls; want no wait", err, rep, len(onWait))
	}
	_, err = set.Acquire(ctx, []int64{1, 1}, backend.AcquireOptions{Report: &rep})
	var refusal *backend.RefusalError
	if !errors.As(err, &refusal) || !errors.Is(err, backend.ErrWouldBlock) || refusal.Key != "conn" ||
		refusal.RetryAfter != 0 || rep.Blocker != 1 || rep.Waited {
		t.Fatalf("TryAcquire of a held resource: %v (%+v), report %+v; want a refusal by conn, RetryAfter 0", err, refusal, rep)
	}
	type result struct {
		rep backend.AcquireReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		var rep backend.AcquireReport
		opts := backend.AcquireOptions{Wait: true, Report: &rep, OnWait: func(spec int) { onWait <- spec }}
		l, err := set.Acquire(ctx, []int64{1, 1}, opts)
		if err == nil {
			err = set.Settle(ctx, l, []int64{1, 1}, nil, true, nil)
		}
		done <- result{rep, err}
	}()
	select {
	case spec := <-onWait:
		if spec != 1 {
			t.Fatalf("OnWait(%d), want 1: conn blocks the request", spec)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnWait was not called for a request the server queued")
	}
	if err := set.Settle(ctx, held, []int64{1, 1}, nil, true, nil); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || !r.rep.Waited || r.rep.Blocker != 1 || r.rep.Duration <= 0 || len(onWait) != 0 {
		t.Fatalf("a queued request: %v, report %+v, %d more OnWait calls; want granted after a wait on conn", r.err, r.rep, len(onWait))
	}
}

// TestOnWaitContained: a panic in OnWait costs nothing (the wait goes on and
// is granted); an OnWait that ends its goroutine (runtime.Goexit) abandons
// the wait, and nothing of it stays taken in the server.
func TestOnWaitContained(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	set, err := dial(t, srv.Path(), Options{DisableAutoHost: true}).Open(context.Background(), "contained", callsAndConn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, hook := range []string{"panic", "goexit"} {
		held, err := set.Acquire(ctx, []int64{1, 1}, backend.AcquireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		called, done := make(chan struct{}), make(chan string, 1)
		go func() {
			outcome := "exited"
			defer func() { done <- outcome }()
			l, err := set.Acquire(ctx, []int64{1, 1}, backend.AcquireOptions{Wait: true, OnWait: func(int) {
				close(called)
				if hook == "panic" {
					panic("a hook that panics")
				}
				runtime.Goexit()
			}})
			if err == nil {
				outcome = "granted"
				err = set.Settle(ctx, l, []int64{1, 1}, nil, true, nil)
			}
			if err != nil {
				t.Error(err)
			}
		}()
		select {
		case <-called:
		case <-time.After(10 * time.Second):
			t.Fatal("OnWait was not called for a request the server queued")
		}
		if err := set.Settle(ctx, held, []int64{1, 1}, nil, true, nil); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"panic": "granted", "goexit": "exited"}[hook]
		if got := <-done; got != want {
			t.Fatalf("OnWait that calls %s: the waiter %s, want %s", hook, got, want)
		}
		eventually(t, "the resource is free after an OnWait that "+hook+"s", func() error {
			st, err := set.Stats(ctx)
			if err == nil && st[1].InUse != 0 {
				err = errors.New("conn still in use")
			}
			return err
		})
	}
}
