package unixsock

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// TestServerRefusesOneRequest speaks the protocol on a connection that holds
// a resource, and sends requests the server refuses: a definition outside
// the contract, and one set more than MaxConnSets. Each is answered with an
// error for that request alone; the connection and its holding stay.
func TestServerRefusesOneRequest(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := rawConn(t, srv.Path())
	openRaw(t, c, wire.Msg{Op: wire.OpOpen, ID: 2, Name: "held", Specs: connSpecs})
	writeMsg(t, c, wire.Msg{Op: wire.OpAcquire, ID: 3, SetID: 1, Values: []int64{1}})
	if m := readMsg(t, c); m.Op != wire.OpGranted {
		t.Fatalf("acquire answered with %v %q", m.Op, m.Text)
	}
	long := strings.Repeat("x", backend.MaxNameLen+1)
	many := make([]backend.Spec, backend.MaxSpecs+1)
	for i := range many {
		many[i] = backend.Spec{Key: strings.Repeat("k", i+1), Kind: backend.Resource, Capacity: 1}
	}
	refused := map[string]struct {
		m    wire.Msg
		code wire.Code
	}{
		"long name":   {wire.Msg{Op: wire.OpOpen, Name: long, Specs: connSpecs}, wire.CodeInvalid},
		"long key":    {wire.Msg{Op: wire.OpOpen, Name: "k", Specs: []backend.Spec{{Key: long[:backend.MaxKeyLen+1], Kind: backend.Resource, Capacity: 1}}}, wire.CodeInvalid},
		"many limits": {wire.Msg{Op: wire.OpOpen, Name: "m", Specs: many}, wire.CodeInvalid},
		"window":      {wire.Msg{Op: wire.OpOpen, Name: "w", Specs: []backend.Spec{{Key: "k", Window: backend.MaxWindow + 1, Capacity: 1}}}, wire.CodeInvalid},
		"no name":     {wire.Msg{Op: wire.OpOpen, Specs: connSpecs}, wire.CodeNameRequired},
	}
	id := uint64(10)
	for what, r := range refused {
		id++
		r.m.ID = id
		writeMsg(t, c, r.m)
		if m := readMsg(t, c); m.Op != wire.OpError || m.Code != r.code || m.ID != id {
			t.Fatalf("%s: answered with %v %d %q, want an error of code %d", what, m.Op, m.Code, m.Text, r.code)
		}
	}
	openPastCap(t, c, 4096) // the held set is open too
	// The holding survived: another client cannot take it, and it releases.
	other := dial(t, srv.Path(), Options{DisableAutoHost: true})
	set, err := other.Open(context.Background(), "held", connSpecs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.Acquire(context.Background(), []int64{1}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrWouldBlock) {
		t.Fatalf("the refused requests cost the holding: another client took it (%v)", err)
	}
	writeMsg(t, c, wire.Msg{Op: wire.OpSettle, ID: 9000, Lease: 1, Flags: wire.FlagFinal})
	if m := readMsg(t, c); m.Op != wire.OpSettled {
		t.Fatalf("release answered with %v %q", m.Op, m.Text)
	}
}

// openPastCap pipelines n opens on c, one more than the connection may have
// (its other sets count too), and checks that only the last is refused.
func openPastCap(t *testing.T, c net.Conn, n int) {
	t.Helper()
	var frames []byte
	for i := range n {
		frames = (&wire.Msg{Op: wire.OpOpen, ID: uint64(100 + i), Name: "many", Specs: connSpecs}).Append(frames)
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(c, 0)
	for i := range n {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		body, err := r.Next()
		if err != nil {
			t.Fatalf("open %d: the server closed the connection: %v", i, err)
		}
		var m wire.Msg
		if err := m.Decode(body); err != nil {
			t.Fatal(err)
		}
		if want := i < n-1; (m.Op == wire.OpOpened) != want || !want && m.Code != wire.CodeLimit {
			t.Fatalf("open %d of %d answered with %v %d %q", i+1, n, m.Op, m.Code, m.Text)
		}
	}
}

// TestClientRefusesPastServerCaps: the client learns the server's caps per
// connection at hello and refuses a set or a wait past them itself, with
// ErrServerLimit; what it holds is kept.
func TestClientRefusesPastServerCaps(t *testing.T) {
	srv := startServer(t, ServerOptions{MaxConnSets: 3, MaxConnWaits: 2})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true, Conns: 1})
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
		concurry.WithName("capped"), concurry.WithBackend(c))
	if err != nil {
		t.Fatal(err)
	}
	held, err := ls.Acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := c.Open(context.Background(), "other"+string(rune('a'+i)), connSpecs); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Open(context.Background(), "one too many", connSpecs)
	if !errors.Is(err, ErrServerLimit) || errors.Is(err, backend.ErrBackendUnavailable) {
		t.Fatalf("a fourth set on a connection capped at 3: %v, want ErrServerLimit alone", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waits := make(chan error, 2)
	for range 2 {
		go func() { _, err := ls.Acquire(ctx, nil); waits <- err }()
	}
	eventually(t, "two acquisitions wait", func() error {
		if n := srv.waits.Load(); n != 2 {
			return errors.New("not yet")
		}
		return nil
	})
	if _, err := ls.Acquire(context.Background(), nil); !errors.Is(err, ErrServerLimit) {
		t.Fatalf("a third wait on a connection capped at 2: %v, want ErrServerLimit", err)
	}
	cancel()
	for range 2 {
		if err := <-waits; !errors.Is(err, context.Canceled) {
			t.Fatalf("waiter: %v", err)
		}
	}
	if st, err := ls.Stats(context.Background()); err != nil || st.Limits[0].InUse != 1 {
		t.Fatalf("the holding after the refusals: %+v %v", st, err)
	}
	if err := held.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
}
