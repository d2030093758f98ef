package redis_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// TestReleaseWhileRedisIsDownIsRetried: a Release that cannot reach Redis
// (shut down; it keeps its data in an append-only file) reports
// ErrBackendUnavailable, and is retried in the background: once Redis is
// back, the slot comes back at once, not when its lease (30 s here)
// expires, and the reported usage is charged once.
func TestReleaseWhileRedisIsDownIsRetried(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: 30 * time.Second})
	ls := probeSet(t, b, t.Name(),
		concurry.RateLimit{Key: "tokens", Window: 1000 * time.Hour, Capacity: 1000},
		concurry.ResourceLimit{Key: "slot", Capacity: 1})
	ctx := context.Background()
	a, err := ls.Acquire(ctx, concurry.Amounts{"tokens": 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(concurry.Amounts{"tokens": 300}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	err = a.Release()
	if rerr := srv.Restart(); rerr != nil {
		t.Fatal(rerr)
	}
	if !errors.Is(err, concurry.ErrBackendUnavailable) {
		t.Fatalf("Release while redis is down: %v, want ErrBackendUnavailable", err)
	}
	// The lease would expire 30 s after the grant: well after this deadline.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b2, err := ls.Acquire(wctx, concurry.Amounts{"tokens": 1})
	if err != nil {
		t.Fatalf("the slot did not come back once redis answered again: %v", err)
	}
	defer b2.Release()
	st, err := ls.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Limits[0].Available; got != 699 {
		t.Errorf("tokens available %d, want 699 (the 300 reported charged once, and 1)", got)
	}
}

// TestSettleGivenUpIsRetried: a Settle whose ctx ends while Redis stalls
// returns ctx's error; Redis then dies before it reads the call (SIGKILL),
// so the call fails in the background: it is retried, and the lease ends
// once Redis is back (restarted from its append-only file).
func TestSettleGivenUpIsRetried(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: 30 * time.Second})
	set := open(t, b, backend.Spec{Key: "slot", Kind: backend.Resource, Capacity: 1})
	ctx := context.Background()
	lease, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = set.Settle(sctx, lease, []int64{1}, nil, true, nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		srv.Resume()
		t.Fatalf("Settle with a ctx that ends while redis is stopped: %v, want DeadlineExceeded", err)
	}
	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := set.Acquire(wctx, []int64{1}, backend.AcquireOptions{Wait: true}); err != nil {
		t.Fatalf("the slot did not come back once redis answered again: %v", err)
	}
}

// TestUnansweredGrantToAGoneCallerIsEnded: a leased acquisition whose caller
// gave up while Redis stalled (SIGSTOP), and whose call then failed on
// go-redis's timeout, has an unknown outcome: Redis runs it when it goes on.
// Its lease is ended once Redis answers (a settle of its member, retried
// until it reaches Redis), so the slot comes back then, not when the lease
// (30 s here) expires.
func TestUnansweredGrantToAGoneCallerIsEnded(t *testing.T) {
	srv := redistest.Start(t)
	rec := newLogRecorder()
	b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: 30 * time.Second, Logger: slog.New(rec)})
	set := open(t, b, backend.Spec{Key: "slot", Kind: backend.Resource, Capacity: 1})
	ctx := context.Background()
	acquireAndSettle(t, set, 1) // the library loaded: the call below is the acquisition alone
	abandonWhileStopped(t, srv, set, rec)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := set.Acquire(wctx, []int64{1}, backend.AcquireOptions{Wait: true}); err != nil {
		t.Fatalf("the slot did not come back once redis answered again: %v", err)
	}
}

// abandonWhileStopped stops srv (SIGSTOP), lets an Acquire of one unit of
// set give up while Redis cannot answer, waits until its call fails on
// go-redis's timeout (its outcome unknown: Redis runs it when it goes on),
// and resumes Redis.
func abandonWhileStopped(t *testing.T, srv *redistest.Server, set backend.Set, rec *logRecorder) {
	t.Helper()
	srv.Pause()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		srv.Resume()
		t.Fatalf("Acquire with a ctx that ends while redis is stopped: %v, want DeadlineExceeded", err)
	}
	rec.await(t, "got no answer from redis", 10*time.Second)
	srv.Resume()
}
