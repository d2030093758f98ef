package redis_test

// Edge tests: every blocking call of the public API returns by its
// ctx's deadline, whatever Redis does (here: stopped with SIGSTOP), and
// nothing stays held once Redis continues.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend/memory"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
	"github.com/concurry/concurry/httplimit"
	"github.com/concurry/concurry/internal/backendtest"
	"github.com/concurry/concurry/worker"
)

func probeSet(t *testing.T, b *cr.Backend, name string, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	ls, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	return ls
}

// Rule: Pause(ctx, …) and Lower(ctx, …) are blocking calls with a ctx:
// "Every call returns by its context's deadline, even while Redis stalls."
func TestEdgeDeadlineFeedbackWhileRedisStalls(t *testing.T) {
	srv := redistest.Start(t)
	b := cr.New(srv.Client(), cr.Options{})
	ls := probeSet(t, b, t.Name(), concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 100})
	srv.Pause()
	defer srv.Resume()
	returnsByDeadline(t, "Pause", func(ctx context.Context) error {
		return ls.Pause(ctx, "tokens", time.Now().Add(time.Hour))
	})
	returnsByDeadline(t, "Lower", func(ctx context.Context) error {
		return ls.Lower(ctx, "tokens", 10, time.Now())
	})
	returnsByDeadline(t, "Do", func(ctx context.Context) error {
		return ls.Do(ctx, concurry.Amounts{"tokens": 1}, func(context.Context, *concurry.Acquisition) error { return nil })
	})
}

// Update and Release take no ctx. Update is local (it "records the usage");
// Release settles with the backend: it must not block forever on a stalled
// Redis. What bounds it is go-redis's own timeouts; measured here.
func TestEdgeDeadlineReleaseWhileRedisStallsIsBounded(t *testing.T) {
	srv := redistest.Start(t)
	// go-redis defaults (3 s reads); a short LeaseTTL, so that a lease whose
	// settle was lost comes back by expiry within the test.
	b := cr.New(srv.Client(), cr.Options{LeaseTTL: 3 * time.Second})
	ls := probeSet(t, b, t.Name(),
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 100},
		concurry.ResourceLimit{Key: "slot", Capacity: 1})
	a, err := ls.Acquire(context.Background(), concurry.Amounts{"tokens": 10})
	if err != nil {
		t.Fatal(err)
	}
	rateOnly := probeSet(t, b, t.Name()+"/rate", concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 100})
	r, err := rateOnly.Acquire(context.Background(), concurry.Amounts{"tokens": 10})
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	start := time.Now()
	if err := a.Update(concurry.Amounts{"tokens": 4}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("Update with redis stalled took %v: it should be local", d)
	}
	done := make(chan error, 2)
	go func() { done <- a.Release() }()
	go func() { _ = r.Update(concurry.Amounts{"tokens": 3}); done <- r.Release() }()
	for i := range 2 {
		select {
		case err := <-done:
			t.Logf("Release %d with redis stalled returned after %v: %v", i, time.Since(start), err)
		case <-time.After(20 * time.Second):
			t.Fatalf("Release with redis stalled blocked for 20 s")
		}
	}
	srv.Resume()
	// "Release() always releases everything it holds — resources are
	// returned even when it reports an error": once Redis continues, the
	// slot comes back (at the latest when its lease, no longer renewed,
	// expires: LeaseTTL).
	resumed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a2, err := ls.Acquire(ctx, concurry.Amounts{"tokens": 1})
	if err != nil {
		t.Fatalf("the slot released while redis stalled did not come back: %v", err)
	}
	t.Logf("the slot came back %v after redis continued", time.Since(resumed))
	_ = a2.Update(concurry.Amounts{"tokens": 1})
	_ = a2.Release()
}

// LimitPool: "TryAcquire tries the chosen set, then the others in order,
// and succeeds on the first that can grant. Acquire does the same
// non-blocking pass, then waits for whichever set can grant first."
// With the chosen set's Redis stalled and another set healthy, Acquire
// returns by its deadline (granted by the healthy set, or with ctx's
// error), and once Redis continues the stalled set holds nothing.
func TestEdgeDeadlinePoolStalledAndHealthy(t *testing.T) {
	srv := redistest.Start(t)
	b := cr.New(srv.Client(), cr.Options{})
	slot := concurry.ResourceLimit{Key: "slot", Capacity: 1}
	stalled := probeSet(t, b, t.Name(), slot)
	healthy, err := concurry.NewLimitSet([]concurry.Limit{slot}, concurry.WithName("healthy"), concurry.WithBackend(memory.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.Close()
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	for i, call := range []struct {
		name string
		f    func(context.Context, concurry.Amounts) (*concurry.Acquisition, error)
	}{{"pool.Acquire", nil}, {"pool.TryAcquire", nil}} {
		// A fresh pool each time: RoundRobin from 0 chooses the stalled set first.
		pool, err := concurry.NewLimitPool([]*concurry.LimitSet{stalled, healthy})
		if err != nil {
			t.Fatal(err)
		}
		call.f = pool.Acquire
		if i == 1 {
			call.f = pool.TryAcquire
		}
		ctx, cancel := context.WithTimeout(context.Background(), stallDeadline)
		start := time.Now()
		a, err := call.f(ctx, nil)
		d := time.Since(start)
		cancel()
		within(t, call.name+" over a stalled and a healthy set", d, stallDeadline+stallMargin)
		t.Logf("%s (%d) over a stalled and a healthy set: %v after %v", call.name, i, err, d)
		if err == nil {
			if a.Set() != healthy {
				t.Errorf("%s granted by the stalled set", call.name)
			}
			_ = a.Release()
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want a grant from the healthy set or context.DeadlineExceeded", call.name, err)
		} else {
			t.Errorf("%s: %v, though the healthy set could grant at once", call.name, err)
		}
	}
	srv.Resume()
	resumed = true
	// Nothing leaked on the stalled set: its slot comes back.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := stalled.Acquire(ctx, nil)
	if err != nil {
		t.Fatalf("the stalled set's slot did not come back: %v", err)
	}
	_ = a.Release()
}

// Keyed over a stalled Redis: Acquire, TryAcquire, Do and Stats return by
// their deadline (a new identity's set is opened lazily, inside the call).
func TestEdgeDeadlineKeyedWhileRedisStalls(t *testing.T) {
	srv := redistest.Start(t)
	backendtest.KeyedCallsByDeadline(t, cr.New(srv.Client(), cr.Options{}), srv.Pause, srv.Resume,
		func(t *testing.T, what string, f func(context.Context) error) { returnsByDeadline(t, what, f) })
}

// NewLimitSet takes no ctx; with a shared backend it opens the set on Redis.
// What bounds it while Redis stalls? Measured with go-redis's defaults.
func TestEdgeDeadlineNewLimitSetWhileRedisStallsIsBounded(t *testing.T) {
	srv := redistest.Start(t)
	b := cr.New(srv.Client(), cr.Options{})
	srv.Pause()
	defer srv.Resume()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "slot", Capacity: 1}},
			concurry.WithName(t.Name()), concurry.WithBackend(b))
		if err == nil {
			ls.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Logf("NewLimitSet with redis stalled returned after %v: %v", time.Since(start), err)
	case <-time.After(30 * time.Second):
		t.Fatalf("NewLimitSet with redis stalled blocked for 30 s")
	}
}

// worker: a task's Acquire runs under the Submit ctx; Result(ctx) returns
// by ctx's deadline whatever the limiter does.
func TestEdgeDeadlineWorkerWhileRedisStalls(t *testing.T) {
	srv := redistest.Start(t)
	b := cr.New(srv.Client(), cr.Options{})
	ls := probeSet(t, b, t.Name(), concurry.ResourceLimit{Key: "slot", Capacity: 1})
	p, err := worker.New(context.Background(), worker.Options{MaxWorkers: 2, Limiter: ls})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	task := worker.Func(func(ctx context.Context, lim concurry.Limiter) (int, error) {
		return 1, lim.Do(ctx, nil, func(context.Context, *concurry.Acquisition) error { return nil })
	})
	srv.Pause()
	defer srv.Resume()
	// A future's Result with a short ctx, the task itself unbounded.
	f, err := worker.Submit(context.Background(), p, task)
	if err != nil {
		t.Fatal(err)
	}
	returnsByDeadline(t, "Future.Result", func(ctx context.Context) error {
		_, err := f.Result(ctx)
		return err
	})
	// The task under a short Submit ctx: its future completes by then.
	returnsByDeadline(t, "Submit+Result under the submit ctx", func(ctx context.Context) error {
		f, err := worker.Submit(ctx, p, task)
		if err != nil {
			return err
		}
		_, err = f.Result(context.Background())
		return err
	})
	returnsByDeadline(t, "Run", func(ctx context.Context) error {
		_, err := worker.Run(ctx, p, task)
		return err
	})
}

// httplimit.Handler in Wait mode: "a positive Wait blocks the request up to
// Wait (and no longer than its own context allows)". With Redis stalled,
// a request returns by its ctx's deadline, and by Wait.
func TestEdgeDeadlineHandlerWaitWhileRedisStalls(t *testing.T) {
	srv := redistest.Start(t)
	b := cr.New(srv.Client(), cr.Options{})
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Name: t.Name(), Backend: b, Limits: []concurry.Limit{
		concurry.ResourceLimit{Key: "slot", Capacity: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	admitted := 0
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { admitted++; w.WriteHeader(http.StatusOK) })
	for _, c := range []struct {
		name      string
		wait, ctx time.Duration
	}{{"ctx deadline", 10 * time.Second, stallDeadline}, {"Wait", stallDeadline, time.Minute}} {
		h := httplimit.Handler(ok, httplimit.Options{Keyed: k, Identity: httplimit.Header("X-Id"), Wait: c.wait})
		srv.Pause()
		ctx, cancel := context.WithTimeout(context.Background(), c.ctx)
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		req.Header.Set("X-Id", "u1")
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(start)
		cancel()
		srv.Resume()
		t.Logf("%s: status %d after %v", c.name, rec.Code, d)
		within(t, "Handler ("+c.name+") with redis stalled", d, stallDeadline+stallMargin)
		if admitted != 0 {
			t.Errorf("Handler (%s) admitted a request with redis stalled", c.name)
		}
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// httplimit.Transport: "acquires the cost from Limiter … waiting as long as
// the request's context allows". With Redis stalled, RoundTrip returns by
// the request ctx's deadline, and the upstream is not called.
func TestEdgeDeadlineTransportWhileRedisStalls(t *testing.T) {
	srv := redistest.Start(t)
	b := cr.New(srv.Client(), cr.Options{})
	ls := probeSet(t, b, t.Name(), concurry.CallLimit{Window: time.Hour, Capacity: 10},
		concurry.ResourceLimit{Key: "conn", Capacity: 1})
	called := make(chan struct{}, 10)
	up := rtFunc(func(r *http.Request) (*http.Response, error) {
		called <- struct{}{}
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{}`)), Request: r}, nil
	})
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}, MaxRetries: -1}}
	srv.Pause()
	defer srv.Resume()
	returnsByDeadline(t, "Transport.RoundTrip", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm/v1/chat/completions",
			strings.NewReader(`{"model":"m","max_tokens":10,"messages":[]}`))
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			return errors.New("a response")
		}
		return err
	})
	if len(called) != 0 {
		t.Errorf("the upstream was called while the limiter's redis stalled")
	}
}

// Cluster: a set on a stalled master returns by the deadline too.
func TestEdgeDeadlineClusterWhileMasterStalls(t *testing.T) {
	cl := redistest.StartCluster(t)
	b := cr.New(cl.Client(), cr.Options{})
	ls := probeSet(t, b, t.Name(), concurry.ResourceLimit{Key: "slot", Capacity: 1})
	for _, s := range cl.Nodes {
		s.Pause()
	}
	defer func() {
		for _, s := range cl.Nodes {
			s.Resume()
		}
	}()
	returnsByDeadline(t, "Acquire on a cluster", func(ctx context.Context) error {
		_, err := ls.Acquire(ctx, nil)
		return err
	})
	returnsByDeadline(t, "TryAcquire on a cluster", func(ctx context.Context) error {
		_, err := ls.TryAcquire(ctx, nil)
		return err
	})
	returnsByDeadline(t, "Pause on a cluster", func(ctx context.Context) error {
		return ls.Pause(ctx, "", time.Now().Add(time.Second))
	})
}
