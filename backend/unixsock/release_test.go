package unixsock

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// rateSpecs is a set of two rate limits.
var rateSpecs = []backend.Spec{
	{Key: "calls", Kind: backend.Rate, Window: time.Hour, Capacity: 1000},
	{Key: "tokens", Kind: backend.Rate, Window: time.Hour, Capacity: 1 << 40},
}

// serverLeases returns the leases the server's connections hold.
func serverLeases(srv *Server) int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	n := 0
	for sc := range srv.conns {
		sc.mu.Lock()
		n += len(sc.leases)
		sc.mu.Unlock()
	}
	return n
}

// pending returns the bytes a client connection has yet to write.
func pending(cc *clientConn) int {
	cc.out.mu.Lock()
	defer cc.out.mu.Unlock()
	return len(cc.out.buf)
}

// TestReleaseIsPipelined: Release waits for no reply. A release that
// changes nothing another process could see (rate limits only, the usage
// granted) waits for the next frame, and the watchdog writes it within a
// tick when none comes; one that returns a resource or refunds is written
// at once.
func TestReleaseIsPipelined(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	ctx := context.Background()
	rates, err := c.Open(ctx, "rates", rateSpecs)
	if err != nil {
		t.Fatal(err)
	}
	r := rates.(backend.Releaser)
	l, err := rates.Acquire(ctx, []int64{1, 100}, backend.AcquireOptions{Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx, l, []int64{1, 100}, nil); err != nil {
		t.Fatal(err)
	}
	cc := rates.(*clientSet).b.Load().cc
	if pending(cc) == 0 {
		t.Fatal("a release that changes nothing was written at once; it should wait for the next frame")
	}
	eventually(t, "the watchdog writes the lazy release", func() error {
		if n := serverLeases(srv); n != 0 {
			return fmt.Errorf("the server holds %d leases", n)
		}
		return nil
	})
	for name, rel := range map[string]struct {
		specs        []backend.Spec
		amount, used []int64
	}{
		"resource": {callsAndConn, []int64{1, 1}, nil},
		"refund":   {rateSpecs, []int64{1, 100}, []int64{0, -40}},
	} {
		set, err := c.Open(ctx, name, rel.specs)
		if err != nil {
			t.Fatal(err)
		}
		l, err := set.Acquire(ctx, rel.amount, backend.AcquireOptions{Wait: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := set.(backend.Releaser).Release(ctx, l, rel.amount, rel.used); err != nil {
			t.Fatal(err)
		}
		if n := pending(set.(*clientSet).b.Load().cc); n != 0 {
			t.Errorf("a release with a %s left %d bytes unwritten", name, n)
		}
	}
}

// TestRefusedReleaseCounted: a pipelined release the server refuses (it
// does not hold the lease) is not dropped silently: the set counts it in
// LeasesLost once the refusal is read.
func TestRefusedReleaseCounted(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	ctx := context.Background()
	set, err := c.Open(ctx, "refused", callsAndConn)
	if err != nil {
		t.Fatal(err)
	}
	cc := set.(*clientSet).b.Load().cc
	bogus := backend.Lease(cc.id<<leaseBits | 12345)
	if err := set.(backend.Releaser).Release(ctx, bogus, []int64{1, 1}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the refused release is counted", func() error {
		if _, err := set.Stats(ctx); err != nil {
			return err
		}
		if f := set.(backend.FaultCounter).Faults(); f.LeasesLost != 1 {
			return fmt.Errorf("Faults %+v, want one lease lost", f)
		}
		return nil
	})
}

// TestDroppedRefundCounted: a release with a refund that a failure of its
// connection dropped unwritten is counted in LeasesLost (the server
// released the holding without the refund); one that charges usage is not
// (its holder was told), nor one with neither (it changes nothing).
func TestDroppedRefundCounted(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	set, err := dial(t, srv.Path(), Options{DisableAutoHost: true}).Open(context.Background(), "dropped", rateSpecs)
	if err != nil {
		t.Fatal(err)
	}
	b := set.(*clientSet).b.Load()
	var frames []byte
	for _, delta := range [][]int64{{0, -40}, {0, 40}, nil, {-1, -1}} {
		m := wire.Msg{Op: wire.OpSettle, ID: releaseMark | b.sid, Lease: 1, Flags: wire.FlagFinal | wire.FlagQuiet, Values: delta}
		frames = m.Append(frames)
	}
	b.cc.dropped(frames)
	if f := set.(backend.FaultCounter).Faults(); f.LeasesLost != 2 {
		t.Fatalf("Faults %+v after two refunds dropped, want 2 leases lost", f)
	}
}

// writes returns how many writes the server's connections have made.
func writes(srv *Server) uint64 {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var n uint64
	for sc := range srv.conns {
		sc.out.mu.Lock()
		n += sc.out.written
		sc.out.mu.Unlock()
	}
	return n
}

// TestRepliesShareAWrite: the server answers requests that arrived
// together in one write, not a write each.
func TestRepliesShareAWrite(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := rawConn(t, srv.Path())
	rawHello(t, c)
	writeMsg(t, c, wire.Msg{Op: wire.OpOpen, ID: 2, Name: "batched", Specs: rateSpecs})
	readMsg(t, c)
	before := writes(srv)
	var frames []byte
	for id := range uint64(8) {
		frames = (&wire.Msg{Op: wire.OpAcquire, ID: 10 + id, SetID: 1, Values: []int64{1, 1}}).Append(frames)
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(c, 0)
	for range 8 {
		body, err := r.Next()
		var m wire.Msg
		if err == nil {
			err = m.Decode(body)
		}
		if err != nil || m.Op != wire.OpGranted {
			t.Fatalf("reply %v, %v; want Granted", m.Op, err)
		}
	}
	if n := writes(srv) - before; n != 1 {
		t.Fatalf("the server made %d writes for 8 requests that arrived together, want 1", n)
	}
}
