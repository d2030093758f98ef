package unixsock

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
)

// TestLeaseLostOnServerKill kills the server process (SIGKILL) while this
// process holds, and starts a new one: the holder's Release returns an error
// matching ErrLeaseLost that says its reported usage was charged, the usage
// is charged to the new server's set of the same name, and Stats counts the
// lost holding.
func TestLeaseLostOnServerKill(t *testing.T) {
	path := sockPath(t)
	first := startChild(t, "", "serve", nil, "CQ_SOCK="+path)
	first.expect(t, "SERVING", 10*time.Second)
	c := dial(t, path, Options{DisableAutoHost: true, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: 1000 * time.Hour, Capacity: 1000},
		concurry.ResourceLimit{Key: "conn", Capacity: 1},
	}, concurry.WithName("lost"), concurry.WithBackend(c))
	if err != nil {
		t.Fatal(err)
	}
	held, err := ls.Acquire(context.Background(), concurry.Amounts{"tokens": 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.stop(true)
	eventually(t, "the client sees its connection drop", func() error {
		if cc := c.slots[c.slotOf("lost")].conn.Load(); !cc.dead.Load() {
			return errors.New("still live")
		}
		return nil
	})
	second := startChild(t, "", "serve", nil, "CQ_SOCK="+path)
	second.expect(t, "SERVING", 10*time.Second)
	if err := held.Update(concurry.Amounts{"tokens": 300}); !errors.Is(err, concurry.ErrLeaseLost) {
		t.Fatalf("Update of a holding of the killed server: %v, want ErrLeaseLost", err)
	}
	err = held.Release()
	if !errors.Is(err, concurry.ErrLeaseLost) || !errors.Is(err, ErrConnLost) || !strings.Contains(err.Error(), "was charged") {
		t.Fatalf("Release of a holding of the killed server: %v, want ErrLeaseLost saying the usage was charged", err)
	}
	st, err := ls.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.LeasesLost != 1 {
		t.Errorf("Stats.LeasesLost = %d, want 1", st.LeasesLost)
	}
	if tokens, _ := st.Limit("tokens"); tokens.Available != 700 {
		t.Errorf("the new server has %d tokens, want 700: the 300 reported were not charged", tokens.Available)
	}
	if conn, _ := st.Limit("conn"); conn.InUse != 0 {
		t.Errorf("the new server holds %d connections, want 0", conn.InUse)
	}
}

// TestLeaseLostWhenDropped: a holder the server dropped (here: its
// connection fails under it) while it still holds is told at Release, and
// its overage is charged to the same server, which still counts the grant.
// Without a connection to charge it on, the error says it was not charged.
func TestLeaseLostWhenDropped(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: 1000 * time.Hour, Capacity: 1000},
	}, concurry.WithName("dropped"), concurry.WithBackend(c))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ls.Acquire(context.Background(), concurry.Amounts{"tokens": 100})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ls.Acquire(context.Background(), concurry.Amounts{"tokens": 100})
	if err != nil {
		t.Fatal(err)
	}
	c.slots[c.slotOf("dropped")].conn.Load().fail(errors.New("dropped by the test"))
	a.Update(concurry.Amounts{"tokens": 150})
	if err := a.Release(); !errors.Is(err, concurry.ErrLeaseLost) || !strings.Contains(err.Error(), "was charged") {
		t.Fatalf("Release after a drop: %v", err)
	}
	st, err := ls.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tokens, _ := st.Limit("tokens"); tokens.Available != 1000-200-50 || st.LeasesLost != 2 {
		t.Fatalf("after the drop: %d tokens (want 750: both grants and the overage of 50), %d lost (want 2)",
			tokens.Available, st.LeasesLost)
	}
	srv.Close()
	b.Update(concurry.Amounts{"tokens": 120})
	err = b.Release()
	if !errors.Is(err, concurry.ErrLeaseLost) || !errors.Is(err, concurry.ErrBackendUnavailable) || !errors.Is(err, concurry.ErrUsageNotCharged) {
		t.Fatalf("Release with no server to charge: %v, want ErrLeaseLost saying the usage was not charged", err)
	}
}

// TestCheckLease: a lease is reported lost, without I/O, once its
// connection has dropped.
func TestCheckLease(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	set, err := c.Open(context.Background(), "check", connSpecs)
	if err != nil {
		t.Fatal(err)
	}
	l, err := set.Acquire(context.Background(), []int64{1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checker := set.(interface{ CheckLease(backend.Lease) error })
	if err := checker.CheckLease(l); err != nil {
		t.Fatalf("a live lease: %v", err)
	}
	c.slots[c.slotOf("check")].conn.Load().fail(errors.New("dropped by the test"))
	if err := checker.CheckLease(l); !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("a lease of a dropped connection: %v, want ErrLeaseLost", err)
	}
	if f := set.(backend.FaultCounter).Faults(); f.LeasesLost != 1 {
		t.Fatalf("Faults: %+v, want one lease lost", f)
	}
}
