package unixsock

// Edge tests of Update, Release, Do, and holdings that end early,
// over a real Unix-socket server. Each probe quotes the sentence of
// DESIGN.md (or of a doc comment) it checks.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/internal/backendtest"
)

// holdLimits are the limits most probes hold: extra, then 100 tokens over a
// window no probe outlives and a resource of conn units.
func holdLimits(conn int64, extra ...concurry.Limit) []concurry.Limit {
	return append(extra,
		concurry.RateLimit{Key: "tokens", Window: 1000 * time.Hour, Capacity: 100},
		concurry.ResourceLimit{Key: "conn", Capacity: conn})
}

// holdSet makes a LimitSet named name over c.
func holdSet(t *testing.T, c *Client, name string, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	ls, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithBackend(c))
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// holdServe starts a server, dials it with auto-hosting off, and makes the
// set named name of limits over that client.
func holdServe(t *testing.T, name string, limits ...concurry.Limit) (*Server, *Client, *concurry.LimitSet) {
	t.Helper()
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	return srv, c, holdSet(t, c, name, limits...)
}

// holdServeChild starts a server in a child process at a fresh path and
// dials it with auto-hosting off and a backoff of 1ms.
func holdServeChild(t *testing.T) (*child, *Client) {
	t.Helper()
	path := sockPath(t)
	kid := startChild(t, "", "serve", nil, "CQ_SOCK="+path)
	kid.expect(t, "SERVING", 10*time.Second)
	return kid, dial(t, path, Options{DisableAutoHost: true, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
}

// holdKill kills kid with SIGKILL.
func holdKill(t *testing.T, kid *child) {
	t.Helper()
	if err := kid.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// wantTokens checks the tokens available in ls; why says what they mean.
func wantTokens(t *testing.T, ls *concurry.LimitSet, want int64, why string) {
	t.Helper()
	if got := backendtest.LimitStat(t, ls, "tokens").Available; got != want {
		t.Errorf("tokens available %d, want %d%s", got, want, why)
	}
}

// wantConnInUse checks the conn units in use in ls; why says when.
func wantConnInUse(t *testing.T, ls *concurry.LimitSet, want int64, why string) {
	t.Helper()
	if got := backendtest.LimitStat(t, ls, "conn").InUse; got != want {
		t.Errorf("conn in use %d%s, want %d", got, why, want)
	}
}

// holdDrop fails the connection the set named name is bound to, as a
// server that dropped this client would.
func holdDrop(c *Client, name string) {
	c.slots[c.slotOf(name)].conn.Load().fail(errors.New("dropped by the probe"))
}

// holdToldLost waits until Update(usage) of a says the holding was lost.
func holdToldLost(t *testing.T, a *concurry.Acquisition, usage concurry.Amounts) {
	t.Helper()
	eventually(t, "Update tells the holder its holding was lost", func() error {
		if err := a.Update(usage); !errors.Is(err, concurry.ErrLeaseLost) {
			return errors.New("not told yet")
		}
		return nil
	})
}

// holdLost serves the set named name of holdLimits(1), acquires 10 tokens
// and drops the connection under that holding.
func holdLost(t *testing.T, name string) (*concurry.LimitSet, *concurry.Acquisition) {
	t.Helper()
	_, c, ls := holdServe(t, name, holdLimits(1)...)
	a := backendtest.Held(t, ls, concurry.Amounts{"tokens": 10})
	holdDrop(c, name)
	return ls, a
}

// DESIGN: "Do releases for you; when fn returns an error, a missing update
// is not reported on top of it." and "A holder is told when its exclusivity
// ended early (... a connection dropped): Update and Release return an error
// saying so." — only the missing update may be left out of Do's error; the
// lost holding must still be reported, with fn's error or without one
// (LimitSet.Do's doc), and the usage reported is charged on the same server.
func TestHoldingEdgeDoReportsLostHolding(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		used  int64 // reported before fn returns, when not 0
		fnErr error
	}{
		{"fn fails", 0, boom},
		{"fn fails after update", 30, boom},
		{"fn succeeds after update", 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "do-lost-" + strings.ReplaceAll(tc.name, " ", "-")
			_, c, ls := holdServe(t, name, holdLimits(1)...)
			err := ls.Do(context.Background(), concurry.Amounts{"tokens": 10}, func(_ context.Context, a *concurry.Acquisition) error {
				holdDrop(c, name)
				if tc.used != 0 {
					a.Update(concurry.Amounts{"tokens": tc.used}) // the holder ignores Update's error
				}
				return tc.fnErr
			})
			if tc.fnErr != nil && !errors.Is(err, tc.fnErr) {
				t.Fatalf("Do: %v, want fn's error", err)
			}
			if errors.Is(err, concurry.ErrUsageNotReported) {
				t.Errorf("Do reported the missing update on top of fn's error: %v", err)
			}
			if !errors.Is(err, concurry.ErrLeaseLost) {
				t.Errorf("Do: %v; the holding ended early (its connection dropped) and Do did not say so", err)
			}
			if tc.used != 0 {
				wantTokens(t, ls, 100-tc.used, ": the usage reported charged on the same server")
			}
		})
	}
}

// DESIGN: "Keys not in the acquisition: ErrUnknownKey." — a key the set holds
// but the request did not name is not in the acquisition. Update "fails,
// changing nothing" (doc comment): the valid key of a failed Update is not
// recorded either.
func TestHoldingEdgeUpdateKeyOfSetNotInAcquisition(t *testing.T) {
	_, _, ls := holdServe(t, "not-held", holdLimits(1, concurry.RateLimit{Key: "other", Window: 1000 * time.Hour, Capacity: 100})...)
	a := backendtest.Held(t, ls, concurry.Amounts{"tokens": 10})
	for what, usage := range map[string]concurry.Amounts{
		"a key of the set not held":                        {"other": 1},
		"a held and an unheld key":                         {"tokens": 5, "other": 1},
		"a held and an unknown key":                        {"tokens": 5, "nope": 1},
		"naming the call key of a set without a CallLimit": {"tokens": 5, concurry.CallKey: 1},
	} {
		if err := a.Update(usage); !errors.Is(err, concurry.ErrUnknownKey) {
			t.Errorf("Update of %s: %v, want ErrUnknownKey", what, err)
		}
	}
	// Nothing was recorded: the release counts the full request.
	if err := a.Release(); !errors.Is(err, concurry.ErrUsageNotReported) {
		t.Errorf("Release after only failed Updates: %v, want ErrUsageNotReported", err)
	}
	wantTokens(t, ls, 90, "")
	wantConnInUse(t, ls, 0, " after Release")
}

// Update doc: "ErrInvalidRequest for usage outside [0, MaxCapacity]"; "A
// CallLimit or ResourceLimit key may be reported only with the amount
// granted." Both ends of the range.
func TestHoldingEdgeUpdateUsageRange(t *testing.T) {
	_, _, ls := holdServe(t, "range", holdLimits(2, concurry.CallLimit{Window: 1000 * time.Hour, Capacity: 10})...)
	a := backendtest.Held(t, ls, concurry.Amounts{"tokens": 10})
	for _, bad := range []concurry.Amounts{
		{"tokens": -1},
		{"tokens": concurry.MaxCapacity + 1},
		{concurry.CallKey: 2},
		{concurry.CallKey: 0},
		{"conn": 2},
		{"conn": 0},
	} {
		if err := a.Update(bad); !errors.Is(err, concurry.ErrInvalidRequest) {
			t.Errorf("Update(%v): %v, want ErrInvalidRequest", bad, err)
		}
	}
	for _, good := range []concurry.Amounts{
		{"tokens": 0},
		{concurry.CallKey: 1, "conn": 1},
		{"tokens": 7},
	} {
		if err := a.Update(good); err != nil {
			t.Errorf("Update(%v): %v", good, err)
		}
	}
	if err := a.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if tok := backendtest.LimitStat(t, ls, "tokens"); tok.Available != 93 || tok.Refunded != 3 {
		t.Errorf("tokens %+v, want 93 available and 3 refunded (the last report, 7 of 10)", tok)
	}
}

// DESIGN: "A failed TryAcquire holds nothing and returns no acquisition."
// Refused by a resource, by a rate, and by the FIFO queue.
func TestHoldingEdgeFailedTryAcquireHoldsNothing(t *testing.T) {
	_, _, ls := holdServe(t, "try-nothing", holdLimits(1, concurry.CallLimit{Window: 1000 * time.Hour, Capacity: 10})...)
	held, err := ls.TryAcquire(context.Background(), concurry.Amounts{"tokens": 10})
	if err != nil {
		t.Fatal(err)
	}
	a, err := ls.TryAcquire(context.Background(), concurry.Amounts{"tokens": 50}) // the resource refuses
	if a != nil || !errors.Is(err, concurry.ErrWouldBlock) {
		t.Fatalf("TryAcquire with the resource held: %v, %v; want nil and ErrWouldBlock", a, err)
	}
	if tok, calls := backendtest.LimitStat(t, ls, "tokens"), backendtest.LimitStat(t, ls, concurry.CallKey); tok.Available != 90 || calls.Available != 9 {
		t.Fatalf("after a refused TryAcquire: tokens %d calls %d, want 90 and 9", tok.Available, calls.Available)
	}
	if err := held.Update(concurry.Amounts{"tokens": 10}); err != nil {
		t.Fatal(err)
	}
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	a, err = ls.TryAcquire(context.Background(), concurry.Amounts{"tokens": 91}) // the rate refuses
	if a != nil || !errors.Is(err, concurry.ErrWouldBlock) {
		t.Fatalf("TryAcquire past the rate: %v, %v", a, err)
	}
	if conn, calls := backendtest.LimitStat(t, ls, "conn"), backendtest.LimitStat(t, ls, concurry.CallKey); conn.InUse != 0 || calls.Available != 9 {
		t.Fatalf("after a TryAcquire refused by the rate: conn in use %d, calls %d; want 0 and 9", conn.InUse, calls.Available)
	}
	wantTokens(t, ls, 90, "")
}

// DESIGN: "Release() always releases everything it holds — resources are
// returned even when it reports an error. ... Later calls of Release return
// nil." and "After release: ErrReleased." — for a holding whose connection
// dropped, never updated: Release says both that the lease was lost and
// that usage was not reported; the next Release is nil, Update ErrReleased.
func TestHoldingEdgeLostHoldingUnreported(t *testing.T) {
	ls, a := holdLost(t, "lost-unreported")
	backendtest.ReleaseLost(t, a)
	// The server returns the dropped connection's holdings when it sees the
	// drop, which may come after this client's next requests on its new
	// connection: a waiting Acquire gets the connection once it does.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := ls.Acquire(ctx, concurry.Amounts{"tokens": 1})
	if err != nil {
		t.Fatalf("the set after the drop: %v", err)
	}
	wantTokens(t, ls, 89, ": the lost grant stays spent")
	b.Update(concurry.Amounts{"tokens": 1})
	if err := b.Release(); err != nil {
		t.Fatalf("a holding of the new connection: %v", err)
	}
	wantConnInUse(t, ls, 0, " after every holding ended")
}

// The doc comment of Update: "When the holding ended before its release ...,
// Update records the usage all the same — it is charged at Release — and
// returns an error matching ErrLeaseLost". The last of several reports is
// what is charged, and a second Update is still told.
func TestHoldingEdgeLostHoldingUpdatesReplace(t *testing.T) {
	ls, a := holdLost(t, "lost-replace")
	for _, used := range []int64{50, 25} {
		if err := a.Update(concurry.Amounts{"tokens": used}); !errors.Is(err, concurry.ErrLeaseLost) {
			t.Errorf("Update(%d) of a lost holding: %v, want ErrLeaseLost", used, err)
		}
	}
	if err := a.Update(concurry.Amounts{"tokens": -1}); !errors.Is(err, concurry.ErrInvalidRequest) {
		t.Errorf("negative Update of a lost holding: %v, want ErrInvalidRequest", err)
	}
	err := a.Release()
	if !errors.Is(err, concurry.ErrLeaseLost) || errors.Is(err, concurry.ErrUsageNotReported) || !strings.Contains(err.Error(), "was charged") {
		t.Fatalf("Release: %v, want ErrLeaseLost saying the usage was charged", err)
	}
	wantTokens(t, ls, 75, ": 100 − the last report 25")
}

// DESIGN: "A crashed holder must not leak resources: the Unix-socket server
// releases a connection's holdings when it drops" and "A holder is told
// when its exclusivity ended early": the server process is killed (SIGKILL)
// and not restarted; with no request of its own, the holder's Update says
// the holding was lost (the idle connection is watched), and Release says
// the usage could not be charged.
func TestHoldingEdgeServerKilledNoRestart(t *testing.T) {
	srvKid, c := holdServeChild(t)
	a := backendtest.Held(t, holdSet(t, c, "killed", holdLimits(1)...), concurry.Amounts{"tokens": 10})
	if err := a.Update(concurry.Amounts{"tokens": 5}); err != nil {
		t.Fatalf("Update of a live holding: %v", err)
	}
	holdKill(t, srvKid)
	srvKid.stop(true)
	holdToldLost(t, a, concurry.Amounts{"tokens": 20})
	err := a.Release()
	if !errors.Is(err, concurry.ErrLeaseLost) || !errors.Is(err, concurry.ErrBackendUnavailable) || !errors.Is(err, concurry.ErrUsageNotCharged) {
		t.Fatalf("Release with no server: %v, want ErrLeaseLost and ErrBackendUnavailable saying the usage was not charged", err)
	}
	if err := a.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
}

// DESIGN: "A crashed holder must not leak resources": a child process
// holding every unit is killed with SIGKILL; the units come back, and a
// holder in this process on another set of the same server is untouched.
func TestHoldingEdgeKilledChildOtherHoldersKeep(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	kid := startChild(t, "", "hold", nil, "CQ_SOCK="+srv.Path(), "CQ_NAME=kid-held", "CQ_NOHOST=1")
	kid.expect(t, "HELD", 10*time.Second)
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	mine := holdSet(t, c, "mine", concurry.ResourceLimit{Key: "conn", Capacity: 1})
	held, err := mine.Acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	theirs := holdSet(t, c, "kid-held", concurry.ResourceLimit{Key: "conn", Capacity: 2})
	if _, err := theirs.TryAcquire(context.Background(), nil); !errors.Is(err, concurry.ErrWouldBlock) {
		t.Fatalf("the child's units before it died: %v", err)
	}
	holdKill(t, kid)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := theirs.Acquire(ctx, concurry.Amounts{"conn": 2})
	if err != nil {
		t.Fatalf("the killed child's units: %v", err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if err := held.Update(nil); err != nil {
		t.Errorf("Update of this process's holding: %v", err)
	}
	if err := held.Release(); err != nil {
		t.Errorf("Release of this process's holding: %v", err)
	}
}

// DESIGN (Limits of the contract): "Whatever a server would refuse
// (name/key length, sets or waits per connection), the client refuses first
// with an error for that request alone; a refusal never costs the caller's
// other holdings." — through the public API, on the one connection that
// holds, with a rate holding whose usage must still settle exactly.
func TestHoldingEdgeRefusalsKeepHoldingOnOneConn(t *testing.T) {
	srv := startServer(t, ServerOptions{MaxConnSets: 2})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true, Conns: 1})
	ls := holdSet(t, c, "keeps", holdLimits(1)...)
	held := backendtest.Held(t, ls, concurry.Amounts{"tokens": 10})
	bad := map[string]struct {
		name   string
		limits []concurry.Limit
		want   error
	}{
		"long name": {strings.Repeat("n", concurry.MaxNameLen+1), []concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}}, concurry.ErrInvalidLimit},
		"long key":  {"k", []concurry.Limit{concurry.ResourceLimit{Key: strings.Repeat("k", concurry.MaxKeyLen+1), Capacity: 1}}, concurry.ErrInvalidLimit},
		"capacity":  {"cap", []concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: concurry.MaxCapacity + 1}}, concurry.ErrInvalidLimit},
		"mismatch":  {"keeps", []concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 2}}, concurry.ErrLimitMismatch},
	}
	for what, b := range bad {
		_, err := concurry.NewLimitSet(b.limits, concurry.WithName(b.name), concurry.WithBackend(c))
		if !errors.Is(err, b.want) {
			t.Errorf("%s: %v, want %v", what, err, b.want)
		}
	}
	// The longest name and key are accepted.
	edge, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: strings.Repeat("k", concurry.MaxKeyLen), Capacity: 1}},
		concurry.WithName(strings.Repeat("n", concurry.MaxNameLen)), concurry.WithBackend(c))
	if err != nil {
		t.Fatalf("the longest name and key: %v", err)
	}
	// A third set past MaxConnSets = 2.
	if _, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
		concurry.WithName("third"), concurry.WithBackend(c)); !errors.Is(err, ErrServerLimit) {
		t.Errorf("a third set on a connection capped at 2: %v, want ErrServerLimit", err)
	}
	edge.Close()
	if err := held.Update(concurry.Amounts{"tokens": 4}); err != nil {
		t.Fatalf("Update of the holding after the refusals: %v", err)
	}
	if err := held.Release(); err != nil {
		t.Fatalf("Release of the holding after the refusals: %v", err)
	}
	if st, _ := ls.Stats(context.Background()); st.LeasesLost != 0 {
		t.Errorf("LeasesLost %d, want 0", st.LeasesLost)
	}
	wantTokens(t, ls, 96, "")
}

// "a server answers one bad request with one error, never by closing a
// connection that holds resources" — a request straight to the backend
// (the public backend.Set interface) with amounts the set cannot hold must
// fail alone: the holdings of the same connection survive.
func TestHoldingEdgeBackendBadAmountsKeepHoldings(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true, Conns: 1})
	ctx := context.Background()
	specs := []backend.Spec{{Key: "conn", Kind: backend.Resource, Capacity: 1}}
	for what, amounts := range map[string][]int64{
		"past capacity": {2},
		"negative":      {-1},
		"too many":      {1, 1},
	} {
		t.Run(what, func(t *testing.T) {
			holder, err := c.Open(ctx, "bad-amounts-"+what, specs)
			if err != nil {
				t.Fatal(err)
			}
			lease, err := holder.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
			if err != nil {
				t.Fatal(err)
			}
			other, err := c.Open(ctx, "bad-amounts-other-"+what, specs)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.Acquire(ctx, amounts, backend.AcquireOptions{}); err == nil {
				t.Errorf("Acquire(%v) granted", amounts)
			}
			if err := holder.(backend.LeaseChecker).CheckLease(lease); err != nil {
				t.Errorf("the bad request on another set cost the connection's holding: %v", err)
			}
			if err := holder.Settle(ctx, lease, []int64{1}, nil, true, nil); err != nil {
				t.Errorf("Settle of the holding: %v", err)
			}
		})
	}
}

// DESIGN: "Close() ... acquisitions already granted can still be updated and
// released." — on the socket, the release after Close still settles
// exactly (overage charged, the resource returned), and a holding whose
// connection dropped after Close still has its usage charged.
func TestHoldingEdgeReleaseAfterClose(t *testing.T) {
	srv, c, ls := holdServe(t, "after-close", holdLimits(2)...)
	a, b := backendtest.Held(t, ls, concurry.Amounts{"tokens": 10}), backendtest.Held(t, ls, concurry.Amounts{"tokens": 10})
	if err := ls.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(concurry.Amounts{"tokens": 15}); err != nil {
		t.Fatalf("Update after Close: %v", err)
	}
	if err := a.Release(); err != nil {
		t.Fatalf("Release after Close: %v", err)
	}
	holdDrop(c, "after-close")
	if err := b.Update(concurry.Amounts{"tokens": 30}); !errors.Is(err, concurry.ErrLeaseLost) {
		t.Errorf("Update of a holding lost after Close: %v, want ErrLeaseLost", err)
	}
	err := b.Release()
	if !errors.Is(err, concurry.ErrLeaseLost) || !strings.Contains(err.Error(), "was charged") {
		t.Errorf("Release of a holding lost after Close: %v, want ErrLeaseLost saying the usage was charged", err)
	}
	other := holdSet(t, dial(t, srv.Path(), Options{DisableAutoHost: true}), "after-close", holdLimits(2)...)
	// The server reads the dropped connection's last frames (a's release was
	// written, not yet read) and its end in their own goroutine: wait for
	// its end, which comes after them, before reading the tokens.
	eventually(t, "the server released the dropped connection's holdings", func() error {
		if got := backendtest.LimitStat(t, other, "conn").InUse; got != 0 {
			return fmt.Errorf("conn in use %d", got)
		}
		return nil
	})
	wantTokens(t, other, 100-15-30, ": 15 and 30 reported")
}

// Acquisition doc: "a generation number keeps a handle that was released
// from ever touching the holding's next owner: after Release, Update returns
// ErrReleased, Release nil and Granted 0, whatever happens to the holding."
// DESIGN: "Later calls of Release return nil." — a stale handle released
// again, from many goroutines at once, never returns the next owner's unit.
func TestHoldingEdgeStaleReleaseNeverFreesNextOwner(t *testing.T) {
	_, _, ls := holdServe(t, "stale",
		concurry.RateLimit{Key: "tokens", Window: 1000 * time.Hour, Capacity: 1000},
		concurry.ResourceLimit{Key: "conn", Capacity: 2})
	a := backendtest.Held(t, ls, concurry.Amounts{"tokens": 10})
	a.Update(concurry.Amounts{"tokens": 10})
	done := make(chan error, 8)
	for range 8 {
		go func() { done <- a.Release() }()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Errorf("Release from one of 8 goroutines: %v", err)
		}
	}
	next := backendtest.Held(t, ls, concurry.Amounts{"tokens": 10}) // may reuse a's holding
	if err := a.Release(); err != nil {
		t.Errorf("stale Release: %v", err)
	}
	if err := a.Update(concurry.Amounts{"tokens": 1}); !errors.Is(err, concurry.ErrReleased) {
		t.Errorf("stale Update: %v, want ErrReleased", err)
	}
	if g := a.Granted("tokens"); g != 0 {
		t.Errorf("stale Granted = %d, want 0", g)
	}
	if g := next.Granted("tokens"); g != 10 {
		t.Errorf("next owner's Granted = %d, want 10", g)
	}
	wantConnInUse(t, ls, 1, ": the next owner's")
	next.Update(concurry.Amounts{"tokens": 10})
	if err := next.Release(); err != nil {
		t.Fatal(err)
	}
	wantConnInUse(t, ls, 0, " at the end")
}

// LimitSet.Do's doc: "runs fn with the acquisition and releases it, also
// when fn panics." — the panic reaches the caller, the resource is back.
// (The loss of a holding whose connection dropped while fn ran, reported
// by Do: TestHoldingEdgeDoReportsLostHolding.)
func TestHoldingEdgeDoPanicReleases(t *testing.T) {
	_, _, ls := holdServe(t, "do-panic", holdLimits(1)...)
	func() {
		defer func() {
			if r := recover(); r != "fn panicked" {
				t.Errorf("recovered %v, want fn's panic", r)
			}
		}()
		ls.Do(context.Background(), concurry.Amounts{"tokens": 10}, func(context.Context, *concurry.Acquisition) error {
			panic("fn panicked")
		})
	}()
	wantConnInUse(t, ls, 0, " after fn panicked")
}

// DESIGN: "A holder is told when its exclusivity ended early (... a
// connection dropped)" — the client is closed under a holder (its
// connections end, so the server releases what they held): Update and
// Release say the holding was lost, and Release says the usage was not
// charged (nothing is left to charge it on).
func TestHoldingEdgeClientClosedUnderHolder(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c, err := Dial(srv.Path(), Options{DisableAutoHost: true})
	if err != nil {
		t.Fatal(err)
	}
	a := backendtest.Held(t, holdSet(t, c, "client-closed", holdLimits(1)...), concurry.Amounts{"tokens": 10})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	other := holdSet(t, dial(t, srv.Path(), Options{DisableAutoHost: true}), "client-closed", holdLimits(1)...)
	eventually(t, "the closed client's unit is free", func() error {
		o, err := other.TryAcquire(context.Background(), concurry.Amounts{"tokens": 1})
		if err != nil {
			return err
		}
		o.Update(concurry.Amounts{"tokens": 1})
		return o.Release()
	})
	if err := a.Update(concurry.Amounts{"tokens": 20}); !errors.Is(err, concurry.ErrLeaseLost) {
		t.Errorf("Update after the client closed: %v, want ErrLeaseLost", err)
	}
	err = a.Release()
	t.Logf("Release: %v", err)
	if !errors.Is(err, concurry.ErrLeaseLost) {
		t.Errorf("Release after the client closed: %v, want ErrLeaseLost", err)
	}
	if tok := backendtest.LimitStat(t, other, "tokens"); tok.Available != 100-10-1 && !strings.Contains(err.Error(), "not charged") {
		t.Errorf("tokens %d: the overage of 10 was not charged and Release did not say so (%v)", tok.Available, err)
	}
}

// DESIGN: "If a RateLimit was never updated, its usage counts as the full
// request and Release returns ErrUsageNotReported" and "Reported rate usage
// is charged even then" — the server is killed and a new one serves the
// path: the full request of an unreported holding is charged to the new
// server's set, to every window of its key, and Release says both things.
func TestHoldingEdgeUnreportedChargedToNewServer(t *testing.T) {
	first, c := holdServeChild(t)
	ls := holdSet(t, c, "unreported-new",
		concurry.RateLimit{Key: "tokens", Window: 1000 * time.Hour, Capacity: 1000},
		concurry.RateLimit{Key: "tokens", Window: 2000 * time.Hour, Capacity: 5000},
		concurry.ResourceLimit{Key: "conn", Capacity: 1})
	a := backendtest.Held(t, ls, concurry.Amounts{"tokens": 100})
	holdKill(t, first)
	first.stop(true)
	holdToldLost(t, a, nil)
	second := startChild(t, "", "serve", nil, "CQ_SOCK="+c.path)
	second.expect(t, "SERVING", 10*time.Second)
	err := a.Release()
	if !errors.Is(err, concurry.ErrLeaseLost) || !errors.Is(err, concurry.ErrUsageNotReported) || !strings.Contains(err.Error(), "was charged") {
		t.Fatalf("Release: %v, want ErrLeaseLost (charged) and ErrUsageNotReported", err)
	}
	st, err := ls.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Limits) != 3 || st.Limits[0].Available != 900 || st.Limits[1].Available != 4900 || st.Limits[2].InUse != 0 {
		t.Errorf("the new server's set: %+v, want 900 and 4900 tokens left and no conn in use", st.Limits)
	}
}
