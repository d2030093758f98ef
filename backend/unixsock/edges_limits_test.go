package unixsock

// Edge tests of the hooks over a real Unix-socket server, and of the
// limits of the contract the client enforces for one request alone.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/internal/backendtest"
)

// "Capacities up to 2^50 and windows up to 366 days; anything larger is
// ErrInvalidLimit at definition, on every backend".
func TestEdgeUnixsockCapacityWindowEdges(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	backendtest.RangeEnds(t, dial(t, srv.Path(), Options{DisableAutoHost: true}), "edge", false)
}

// Hooks over unixsock: every hook fires exactly once per event, with the
// facts (blocking key, RetryAfter, waited, refund, overage), and LeaseLost
// once per acquisition though Update and Release both say so.
func TestEdgeUnixsockHookFacts(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	ctx := context.Background()
	log := &backendtest.HookLog{Started: make(chan struct{}, 1)}
	ls := backendtest.OpenSet(t, c, "hookfacts", log.Hooks(),
		concurry.RateLimit{Key: "tok", Window: 1000 * time.Hour, Capacity: 1000},
		concurry.ResourceLimit{Key: "conn", Capacity: 1})
	a, err := ls.TryAcquire(ctx, concurry.Amounts{"tok": 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.TryAcquire(ctx, concurry.Amounts{"tok": 10}); !errors.Is(err, concurry.ErrWouldBlock) {
		t.Fatalf("%v", err)
	}
	done := make(chan error, 1)
	go func() {
		b, err := ls.Acquire(ctx, concurry.Amounts{"tok": 50})
		if err == nil {
			_ = b.Update(concurry.Amounts{"tok": 80}) // 30 over
			err = b.Release()
		}
		done <- err
	}()
	<-log.Started
	time.Sleep(20 * time.Millisecond)
	_ = a.Update(concurry.Amounts{"tok": 60}) // 40 refunded
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// a lost holding
	h, err := ls.TryAcquire(ctx, concurry.Amounts{"tok": 10})
	if err != nil {
		t.Fatal(err)
	}
	c.slots[c.slotOf("hookfacts")].conn.Load().fail(errors.New("dropped by the probe"))
	e1 := h.Update(concurry.Amounts{"tok": 10})
	e2 := h.Release()
	if !errors.Is(e1, concurry.ErrLeaseLost) || !errors.Is(e2, concurry.ErrLeaseLost) {
		t.Errorf("Update %v, Release %v: want ErrLeaseLost", e1, e2)
	}
	log.Mu.Lock()
	defer log.Mu.Unlock()
	refused, waits, grants, settled := log.Refused, log.WaitDone, log.Granted, log.Settled
	for _, n := range []struct {
		hook      string
		got, want int
	}{{"Granted", len(grants), 3}, {"Refused", len(refused), 1}, {"WaitStart", len(log.WaitStart), 1}, {"WaitDone", len(waits), 1}, {"Settled", len(settled), 2}, {"LeaseLost", len(log.Lost), 1}} {
		if n.got != n.want {
			t.Errorf("%s fired %d times, want %d", n.hook, n.got, n.want)
		}
	}
	if len(log.WaitStart) == 1 && log.WaitStart[0].Key != "conn" {
		t.Errorf("WaitStart on key %q, want conn", log.WaitStart[0].Key)
	}
	if len(refused) == 1 && (refused[0].Key != "conn" || refused[0].RetryAfter != 0 || refused[0].Cause != concurry.CauseWouldBlock) {
		t.Errorf("refusal facts: %+v (want key conn, RetryAfter 0: only a release can make room)", refused[0])
	}
	if len(waits) == 1 && (waits[0].Key != "conn" || waits[0].Waited < 20*time.Millisecond || waits[0].Err != nil) {
		t.Errorf("wait facts: %+v", waits[0])
	}
	if len(grants) >= 2 && (grants[1].Key != "conn" || grants[1].Waited < 20*time.Millisecond) {
		t.Errorf("waited grant facts: %+v", grants[1])
	}
	if len(settled) == 2 {
		if settled[0].Key != "tok" || settled[0].Refunded != 40 || settled[0].Overage != 0 {
			t.Errorf("settle of a: %+v", settled[0])
		}
		if settled[1].Key != "tok" || settled[1].Refunded != 0 || settled[1].Overage != 30 {
			t.Errorf("settle of b: %+v", settled[1])
		}
	}
}

// Hooks that call runtime.Goexit on unixsock: the wait is withdrawn from
// the server, nothing is held or left waiting.
func TestEdgeUnixsockGoexitInHooks(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	backendtest.GoexitInHooks(t, dial(t, srv.Path(), Options{DisableAutoHost: true}), "goexit-wait", func() error {
		if n := srv.waits.Load(); n != 0 {
			return errors.New("still waiting")
		}
		return nil
	})
}

// "Whatever a server would refuse (... waits per connection), the client
// refuses first with an error for that request alone; a refusal never costs
// the caller's other holdings." Observed through the hooks: the refusal is
// reported once, and its cause is not "unavailable" (the server was reached;
// CauseUnavailable is documented as "a shared backend could not be reached").
func TestEdgeUnixsockConnWaitCapRefusalHook(t *testing.T) {
	srv := startServer(t, ServerOptions{MaxConnWaits: 1})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true, Conns: 1})
	log := &backendtest.HookLog{}
	ls := backendtest.OpenSet(t, c, "capwait", log.Hooks(), concurry.ResourceLimit{Key: "conn", Capacity: 1})
	held, err := ls.TryAcquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := make(chan error, 1)
	go func() { _, err := ls.Acquire(ctx, nil); w <- err }()
	eventually(t, "one waits", func() error {
		if srv.waits.Load() != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	_, err = ls.Acquire(context.Background(), nil)
	if !errors.Is(err, ErrServerLimit) {
		t.Fatalf("second wait: %v", err)
	}
	cancel()
	<-w
	log.Mu.Lock()
	var capped []concurry.RefusalInfo
	for _, r := range log.Refused {
		if errors.Is(r.Err, ErrServerLimit) {
			capped = append(capped, r)
		}
	}
	log.Mu.Unlock()
	if len(capped) != 1 {
		t.Fatalf("Refused for the capped wait: %d calls", len(capped))
	}
	t.Logf("cause of a server-cap refusal: %v", capped[0].Cause)
	if capped[0].Cause != concurry.CauseUnavailable { // "a shared backend could not be reached, or refused the request past one of its caps"
		t.Errorf("a server-cap refusal is reported as %q, want %q", capped[0].Cause, concurry.CauseUnavailable)
	}
	st, err := ls.Stats(context.Background())
	if err != nil || st.Limits[0].InUse != 1 {
		t.Fatalf("the holding after the refusal: %+v %v", st, err)
	}
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
}

// Feedback hook over unixsock: only applied feedback is passed on.
func TestEdgeUnixsockFeedbackHookOnlyWhenApplied(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	backendtest.FeedbackHookOnlyWhenApplied(t, dial(t, srv.Path(), Options{DisableAutoHost: true}), "fbhook")
}

// Hooks doc: hooks run "never under a lock of the limiter or its backend, so
// a hook may call the limiter (Stats, say)". Over unixsock on one
// connection, a hook calls Stats and TryAcquire on the same set, with
// several waiters at once: nothing deadlocks. One subtest per hook.
func TestEdgeUnixsockHooksMayCallTheLimiter(t *testing.T) {
	for _, hook := range []string{"Granted", "Refused", "WaitStart", "WaitDone", "Settled", "Feedback"} {
		t.Run(hook, func(t *testing.T) { probeReentrantHook(t, hook) })
	}
}

func probeReentrantHook(t *testing.T, hook string) {
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true, Conns: 1})
	ctx := context.Background()
	var ls *concurry.LimitSet
	call := func() {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := ls.Stats(cctx); err != nil {
			t.Errorf("Stats from %s: %v", hook, err)
		}
		if hook != "Refused" { // (a TryAcquire refused from Refused would recurse)
			if a, err := ls.TryAcquire(cctx, concurry.Amounts{"r": 1}); err == nil {
				_ = a.Update(concurry.Amounts{"r": 1})
				_ = a.Release()
			}
		}
	}
	ls = backendtest.OpenSet(t, c, "reentrant", backendtest.HookCalling(hook, call),
		concurry.RateLimit{Key: "r", Window: 1000 * time.Hour, Capacity: 1000},
		concurry.ResourceLimit{Key: "conn", Capacity: 1})
	const n = 8
	done := make(chan error, n)
	for range n {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			a, err := ls.Acquire(cctx, concurry.Amounts{"r": 2})
			if err == nil {
				_ = a.Update(concurry.Amounts{"r": 1})
				time.Sleep(time.Millisecond)
				err = a.Release()
			}
			done <- err
		}()
	}
	for range n {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Acquire: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("deadlock: an acquisition never returned")
		}
	}
	if err := ls.Lower(ctx, "r", 10, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.TryAcquire(ctx, concurry.Amounts{"r": 2000}); err == nil {
		t.Fatal("over capacity granted")
	}
}

// A wait cancelled in the server: WaitDone once with the key, the error and
// how long it waited; Refused once (canceled); Stats count the wait on the
// key that blocked; the set is exactly as it was.
func TestEdgeUnixsockCancelledWaitHooks(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	log := &backendtest.HookLog{Started: make(chan struct{}, 1)}
	ls := backendtest.OpenSet(t, c, "cancelwait", log.Hooks(),
		concurry.RateLimit{Key: "tok", Window: 1000 * time.Hour, Capacity: 1000},
		concurry.ResourceLimit{Key: "conn", Capacity: 1})
	held, err := ls.TryAcquire(context.Background(), concurry.Amounts{"tok": 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-log.Started; time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := ls.Acquire(ctx, concurry.Amounts{"tok": 100}); !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
	_ = held.Update(concurry.Amounts{"tok": 1})
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	st, err := ls.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	log.Mu.Lock()
	defer log.Mu.Unlock()
	waits, refused := log.WaitDone, log.Refused
	if len(waits) != 1 || waits[0].Key != "conn" || !errors.Is(waits[0].Err, context.Canceled) || waits[0].Waited < 50*time.Millisecond {
		t.Errorf("WaitDone: %+v", waits)
	}
	if len(refused) != 1 || refused[0].Cause != concurry.CauseCanceled {
		t.Errorf("Refused: %+v", refused)
	}
	conn, _ := st.Limit("conn")
	tok, _ := st.Limit("tok")
	if conn.Blocked != 1 || conn.Waited < 50*time.Millisecond || tok.Blocked != 0 {
		t.Errorf("stats: conn %+v tok %+v", conn, tok)
	}
	if tok.Available != 999 || conn.InUse != 0 {
		t.Errorf("the set is not as it was: tok %d available, conn %d in use", tok.Available, conn.InUse)
	}
	if st.Refusals.Canceled != 1 {
		t.Errorf("refusals: %+v", st.Refusals)
	}
}

// "Reported rate usage is charged even then, or the caller gets an error
// saying it was not — never silently dropped." SettleInfo.Overage is
// documented as "units used beyond the grant, charged as debt": when the
// release says the usage was NOT charged, the Settled hook and
// Stats.Overage should not claim it was.
func TestEdgeUnixsockUnchargedOverageNotReportedCharged(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	log := &backendtest.HookLog{}
	ls := backendtest.OpenSet(t, c, "uncharged", log.Hooks(), concurry.RateLimit{Key: "tokens", Window: 1000 * time.Hour, Capacity: 1000})
	b, err := ls.Acquire(context.Background(), concurry.Amounts{"tokens": 100})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	_ = b.Update(concurry.Amounts{"tokens": 120})
	err = b.Release()
	if !errors.Is(err, concurry.ErrLeaseLost) || !strings.Contains(err.Error(), "not charged") {
		t.Fatalf("Release with no server: %v", err)
	}
	st, _ := ls.Stats(context.Background())
	log.Mu.Lock()
	defer log.Mu.Unlock()
	settled := log.Settled
	t.Logf("Settled %+v; Stats.Overage %d", settled, st.Limits[0].Overage)
	for _, s := range settled {
		if s.Overage != 0 {
			t.Errorf("Settled reports %d of overage charged as debt, though Release said it was not charged", s.Overage)
		}
	}
	if st.Limits[0].Overage != 0 {
		t.Errorf("Stats.Overage %d counts usage that was not charged", st.Limits[0].Overage)
	}
}
