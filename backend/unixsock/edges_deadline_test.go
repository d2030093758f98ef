package unixsock

// Edge tests: every blocking call of the public API returns by its
// ctx's deadline whatever the Unix-socket server does (a real child server
// stopped with SIGSTOP, a server that answers hello and then nothing), and
// nothing stays held once the server continues.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
	"github.com/concurry/concurry/httplimit"
	"github.com/concurry/concurry/internal/backendtest"
)

const (
	probeDeadline = 200 * time.Millisecond
	probeMargin   = 300 * time.Millisecond
)

// probeServer runs a real server as a child process; stop and cont send it
// SIGSTOP and SIGCONT. The child is continued and killed when the test ends.
type probeServer struct {
	t    *testing.T
	kid  *child
	path string
}

func startProbeServer(t *testing.T) *probeServer {
	t.Helper()
	path := sockPath(t)
	kid := startChild(t, "", "serve", nil, "CQ_SOCK="+path)
	kid.expect(t, "SERVING", 10*time.Second)
	p := &probeServer{t: t, kid: kid, path: path}
	t.Cleanup(p.cont) // before the kill registered by startChild (cleanups run last first)
	return p
}

func (p *probeServer) stop() {
	p.kid.cmd.Process.Signal(syscall.SIGSTOP)
	// Wait until the kernel shows it stopped (state T), so that no request
	// sent after stop() is answered.
	stat := fmt.Sprintf("/proc/%d/stat", p.kid.cmd.Process.Pid)
	for range 1000 {
		b, err := os.ReadFile(stat)
		if err == nil {
			if i := strings.LastIndexByte(string(b), ')'); i > 0 && len(b) > i+2 && (b[i+2] == 'T' || b[i+2] == 't') {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	p.t.Fatal("the server did not stop")
}
func (p *probeServer) cont() { p.kid.cmd.Process.Signal(syscall.SIGCONT) }

// probeDial dials p with a Timeout long enough that the stall is not taken
// for a dead connection while the probes run.
func probeDial(t *testing.T, path string) *Client {
	return dial(t, path, Options{DisableAutoHost: true, Timeout: 3 * time.Second})
}

func probeSet(t *testing.T, c backend.Backend, name string, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	ls, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithBackend(c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	return ls
}

// probeByDeadline runs f with a ctx of probeDeadline: f must return by the
// deadline (with probeMargin) an error matching context.DeadlineExceeded.
func probeByDeadline(t *testing.T, what string, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), probeDeadline)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	if d := time.Since(start); d > probeDeadline+probeMargin {
		t.Errorf("%s with the server stopped took %v, more than %v", what, d, probeDeadline+probeMargin)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, backend.ErrBackendUnavailable) {
		t.Errorf("%s with the server stopped: %v, want context.DeadlineExceeded (or a fast ErrBackendUnavailable)", what, err)
	}
}

// slotFree fails unless the set's slot can be taken (within a second of the
// server continuing): what a timed-out call took has been given back.
func slotFree(t *testing.T, ls *concurry.LimitSet, req concurry.Amounts) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var a *concurry.Acquisition
		if a, err = ls.TryAcquire(context.Background(), req); err == nil {
			_ = a.Update(req)
			_ = a.Release()
			return
		}
	}
	t.Errorf("the slot is still taken after the server continued: %v", err)
}

// The rule: every blocking call of a LimitSet (Acquire, TryAcquire, Do,
// Stats, Pause, Lower) returns by its ctx's deadline while the server is
// stopped; once it continues, nothing the calls took is held.
func TestEdgeDeadlineSetCallsWhileServerStopped(t *testing.T) {
	srv := startProbeServer(t)
	c := probeDial(t, srv.path)
	ls := probeSet(t, c, t.Name(),
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 100},
		concurry.ResourceLimit{Key: "slot", Capacity: 1})
	req := concurry.Amounts{"tokens": 1}
	srv.stop()
	probeByDeadline(t, "Stats", func(ctx context.Context) error {
		_, err := ls.Stats(ctx)
		return err
	})
	probeByDeadline(t, "Pause", func(ctx context.Context) error {
		return ls.Pause(ctx, "tokens", time.Now().Add(-time.Second)) // a pause already over: changes nothing
	})
	probeByDeadline(t, "Lower", func(ctx context.Context) error {
		return ls.Lower(ctx, "tokens", 100, time.Now()) // lowers nothing: 100 are available at most
	})
	probeByDeadline(t, "TryAcquire", func(ctx context.Context) error {
		_, err := ls.TryAcquire(ctx, req)
		return err
	})
	probeByDeadline(t, "Acquire", func(ctx context.Context) error {
		_, err := ls.Acquire(ctx, req)
		return err
	})
	probeByDeadline(t, "Do", func(ctx context.Context) error {
		return ls.Do(ctx, req, func(ctx context.Context, a *concurry.Acquisition) error { return a.Update(req) })
	})
	srv.cont()
	slotFree(t, ls, req)
	st, err := ls.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// TokenBucket, one hour for 100: nothing spent but the one probe of slotFree.
	if got := st.Limits[0].Available; got != 99 {
		t.Errorf("%d tokens available after the server continued, want 99: a timed-out call took some", got)
	}
}

// A waiting Acquire waits in the server: "A waiting Acquire waits in the
// server, which is told when its context ends, so nothing stays taken."
// The slot is held; a waiter times out while the server is stopped; the
// holder releases while stopped; once the server continues the slot is free
// (the waiter's cancellation reached it before any grant could stick).
func TestEdgeDeadlineWaiterTimesOutWhileServerStopped(t *testing.T) {
	srv := startProbeServer(t)
	c := probeDial(t, srv.path)
	ls := probeSet(t, c, t.Name(), concurry.ResourceLimit{Key: "slot", Capacity: 1})
	held, err := ls.Acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*probeDeadline)
	defer cancel()
	start := time.Now()
	go func() { _, err := ls.Acquire(ctx, nil); waitErr <- err }() // waits in the server
	time.Sleep(probeDeadline / 2)
	srv.stop()
	// Release takes no ctx: it is pipelined, so it must not block.
	relStart := time.Now()
	if err := held.Release(); err != nil {
		t.Errorf("Release with the server stopped: %v", err)
	}
	if d := time.Since(relStart); d > probeMargin {
		t.Errorf("Release with the server stopped took %v", d)
	}
	select {
	case err := <-waitErr:
		if d := time.Since(start); d > 2*probeDeadline+probeMargin {
			t.Errorf("the waiter returned after %v, deadline %v", d, 2*probeDeadline)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the waiter: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not return within 10 s of its deadline")
	}
	srv.cont()
	slotFree(t, ls, nil)
}

// NewLimitSet takes no ctx: what bounds it while the server is stopped is
// Options.Timeout ("how long the server may leave a request that needs no
// waiting (opening a set, …) unanswered before the connection is declared
// dead").
func TestEdgeDeadlineNewLimitSetWhileServerStoppedIsBounded(t *testing.T) {
	srv := startProbeServer(t)
	c := dial(t, srv.path, Options{DisableAutoHost: true, Timeout: 500 * time.Millisecond})
	probeSet(t, c, t.Name()+"/first", concurry.ResourceLimit{Key: "slot", Capacity: 1}) // connected
	srv.stop()
	start := time.Now()
	_, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "slot", Capacity: 1}},
		concurry.WithName(t.Name()), concurry.WithBackend(c))
	d := time.Since(start)
	t.Logf("NewLimitSet with the server stopped: %v after %v", err, d)
	if d > 500*time.Millisecond+probeMargin+time.Second {
		t.Errorf("NewLimitSet with the server stopped took %v with Timeout 500ms", d)
	}
	if !errors.Is(err, concurry.ErrBackendUnavailable) {
		t.Errorf("NewLimitSet with the server stopped: %v, want ErrBackendUnavailable", err)
	}
}

// LimitPool: "TryAcquire tries the chosen set, then the others in order,
// and succeeds on the first that can grant. Acquire does the same
// non-blocking pass, then waits for whichever set can grant first."
// The chosen set's server is stopped, the other set can grant at once.
func TestEdgeDeadlinePoolStoppedAndHealthy(t *testing.T) {
	srv := startProbeServer(t)
	c := probeDial(t, srv.path)
	slot := concurry.ResourceLimit{Key: "slot", Capacity: 1}
	stalled := probeSet(t, c, t.Name(), slot)
	healthy := probeSet(t, memory.New(), "healthy", slot)
	srv.stop()
	for i, name := range []string{"pool.Acquire", "pool.TryAcquire"} {
		pool, err := concurry.NewLimitPool([]*concurry.LimitSet{stalled, healthy}) // the stalled set first
		if err != nil {
			t.Fatal(err)
		}
		f := pool.Acquire
		if i == 1 {
			f = pool.TryAcquire
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeDeadline)
		start := time.Now()
		a, err := f(ctx, nil)
		d := time.Since(start)
		cancel()
		t.Logf("%s: %v after %v", name, err, d)
		if d > probeDeadline+probeMargin {
			t.Errorf("%s over a stopped and a healthy set took %v", name, d)
		}
		switch {
		case err == nil && a.Set() != healthy:
			t.Errorf("%s granted by the stopped set", name)
		case err == nil:
			_ = a.Release()
		default:
			t.Errorf("%s: %v, though the healthy set could grant at once", name, err)
		}
	}
	srv.cont()
	slotFree(t, stalled, nil)
}

// LimitPool.Acquire over a healthy set whose slot is held (chosen first)
// and a stopped one: the healthy set's release, before the deadline, must
// grant the waiter. Nothing of the stopped set is taken afterwards.
func TestEdgeDeadlinePoolWaitsHealthyWhileOtherStopped(t *testing.T) {
	srv := startProbeServer(t)
	c := probeDial(t, srv.path)
	slot := concurry.ResourceLimit{Key: "slot", Capacity: 1}
	stalled := probeSet(t, c, t.Name(), slot)
	healthy := probeSet(t, memory.New(), "healthy", slot)
	held, err := healthy.Acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The stalled set's slot is held too, so neither can grant at first.
	heldStalled, err := stalled.Acquire(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := concurry.NewLimitPool([]*concurry.LimitSet{healthy, stalled})
	if err != nil {
		t.Fatal(err)
	}
	srv.stop()
	go func() {
		time.Sleep(probeDeadline / 4)
		_ = held.Release()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*probeDeadline)
	defer cancel()
	start := time.Now()
	a, err := pool.Acquire(ctx, nil)
	d := time.Since(start)
	t.Logf("pool.Acquire: %v after %v", err, d)
	if d > 2*probeDeadline+probeMargin {
		t.Errorf("pool.Acquire took %v", d)
	}
	if err != nil {
		t.Errorf("pool.Acquire: %v, though the healthy set's slot was released at %v", err, probeDeadline/4)
	} else {
		if a.Set() != healthy {
			t.Errorf("granted by the stopped set")
		}
		_ = a.Release()
	}
	srv.cont()
	_ = heldStalled.Release()
	slotFree(t, stalled, nil)
}

// Keyed over a stopped server: Acquire, TryAcquire, Do and Stats return by
// their deadline, for an identity known before and a new one.
func TestEdgeDeadlineKeyedWhileServerStopped(t *testing.T) {
	srv := startProbeServer(t)
	backendtest.KeyedCallsByDeadline(t, probeDial(t, srv.path), srv.stop, srv.cont, probeByDeadline)
}

// A server that answers hello and then never answers: Keyed opens its
// identity's set lazily inside the call, which must return by its ctx.
func TestEdgeDeadlineKeyedOverMuteServer(t *testing.T) {
	c := dial(t, mute(t, wire.Version), Options{DisableAutoHost: true, Timeout: 3 * time.Second})
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Name: t.Name(), Backend: c, Limits: []concurry.Limit{
		concurry.ResourceLimit{Key: "slot", Capacity: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	probeByDeadline(t, "Keyed.Acquire over a mute server", func(ctx context.Context) error {
		_, err := k.Acquire(ctx, "u", nil)
		return err
	})
	probeByDeadline(t, "Keyed.TryAcquire over a mute server", func(ctx context.Context) error {
		_, err := k.TryAcquire(ctx, "u", nil)
		return err
	})
}

// A server that accepts connections and never answers, not even hello:
// a call that has to connect returns by its ctx's deadline.
func TestEdgeDeadlineKeyedOverSilentListener(t *testing.T) {
	path := sockPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	defer func() {
		ln.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	}()
	c := dial(t, path, Options{DisableAutoHost: true, Timeout: 3 * time.Second})
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Name: t.Name(), Backend: c, Limits: []concurry.Limit{
		concurry.ResourceLimit{Key: "slot", Capacity: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	probeByDeadline(t, "Keyed.Acquire over a silent listener", func(ctx context.Context) error {
		_, err := k.Acquire(ctx, "u", nil)
		return err
	})
}

// httplimit.Handler in Wait mode over a stopped server: "a positive Wait
// blocks the request up to Wait (and no longer than its own context
// allows)".
func TestEdgeDeadlineHandlerWaitWhileServerStopped(t *testing.T) {
	srv := startProbeServer(t)
	c := probeDial(t, srv.path)
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Name: t.Name(), Backend: c, Limits: []concurry.Limit{
		concurry.ResourceLimit{Key: "slot", Capacity: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	admitted := 0
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { admitted++ })
	h := httplimit.Handler(ok, httplimit.Options{Keyed: k, Identity: httplimit.Header("X-Id"), Wait: probeDeadline})
	// The identity's set is opened before the stop.
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Id", "u1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	srv.stop()
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	d := time.Since(start)
	t.Logf("status %d after %v", rec.Code, d)
	if d > probeDeadline+probeMargin {
		t.Errorf("Handler with Wait %v took %v with the server stopped", probeDeadline, d)
	}
	if admitted != 1 {
		t.Errorf("%d requests admitted, want 1 (the one before the stop)", admitted)
	}
}
