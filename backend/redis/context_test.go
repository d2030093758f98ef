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

// stallDeadline is the ctx timeout of the calls made while Redis stalls,
// and stallMargin how much later than it they may return.
const (
	stallDeadline = 200 * time.Millisecond
	stallMargin   = 300 * time.Millisecond
)

// returnsByDeadline runs f with a ctx of stallDeadline and fails the test
// unless f returns by the deadline (with stallMargin) an error matching
// context.DeadlineExceeded or, when also is given, one of also.
func returnsByDeadline(t *testing.T, what string, f func(ctx context.Context) error, also ...error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stallDeadline)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	within(t, what+" with redis stalled", time.Since(start), stallDeadline+stallMargin)
	if errors.Is(err, context.DeadlineExceeded) {
		return
	}
	for _, e := range also {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("%s with redis stalled: %v, want context.DeadlineExceeded", what, err)
}

// TestCallsReturnByDeadlineWhileRedisStalls stops Redis (SIGSTOP): every
// call returns by its ctx's deadline, whatever go-redis's timeouts (the
// client's defaults: 3 s reads, 3 retries). Once Redis continues, the
// acquisitions it grants to callers that are gone are given back at once,
// long before their leases would expire, and the settle is applied.
func TestCallsReturnByDeadlineWhileRedisStalls(t *testing.T) {
	srv := redistest.Start(t)
	rec := newLogRecorder()
	b := cr.New(srv.Client(), cr.Options{Logger: slog.New(rec)})
	slot := []concurry.Limit{concurry.ResourceLimit{Key: "slot", Capacity: 1}}
	ls, err := concurry.NewLimitSet(slot, concurry.WithName(t.Name()), concurry.WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	tokens, err := b.Open(context.Background(), t.Name()+"/tokens", []backend.Spec{{Key: "tokens", Kind: backend.Rate, Window: time.Hour, Capacity: 100}})
	if err != nil {
		t.Fatal(err)
	}
	defer tokens.Close()
	lease, err := tokens.Acquire(context.Background(), []int64{10}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	returnsByDeadline(t, "TryAcquire", func(ctx context.Context) error {
		_, err := ls.TryAcquire(ctx, nil)
		return err
	})
	returnsByDeadline(t, "Acquire", func(ctx context.Context) error {
		_, err := ls.Acquire(ctx, nil)
		return err
	})
	returnsByDeadline(t, "Stats", func(ctx context.Context) error {
		_, err := ls.Stats(ctx)
		return err
	})
	returnsByDeadline(t, "Settle", func(ctx context.Context) error {
		return tokens.Settle(ctx, lease, []int64{10}, []int64{5}, true, nil)
	})
	returnsByDeadline(t, "Open", func(ctx context.Context) error {
		_, err := b.Open(ctx, t.Name()+"/new", []backend.Spec{{Key: "slot", Kind: backend.Resource, Capacity: 1}})
		return err
	})
	srv.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	a, err := ls.Acquire(ctx, nil) // the slot, granted to a caller that was gone, comes back
	if err != nil {
		t.Fatalf("the slot did not come back: %v", err)
	}
	within(t, "getting back the slot granted to a gone caller", time.Since(start), 5*time.Second)
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	rec.await(t, "gave back a grant whose caller had gone", 10*time.Second)
	cr.WaitBackground(tokens)
	if got := available(t, tokens)[0]; got != 85 {
		t.Fatalf("%d tokens available, want 85: the settle made while redis stalled charged 15", got)
	}
}

// TestAbandonedAcquireExpires: an acquisition whose caller gave up and
// whose answer never came (go-redis timed out while Redis stalled) is
// granted when Redis continues, by nobody's account: its lease is ended
// (see TestUnansweredGrantToAGoneCallerIsEnded) or, never renewed,
// expires, and its resource comes back.
func TestAbandonedAcquireExpires(t *testing.T) {
	srv := redistest.Start(t)
	rec := newLogRecorder()
	const ttl = 500 * time.Millisecond
	b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: ttl, Logger: slog.New(rec)})
	set := open(t, b, backend.Spec{Key: "slot", Kind: backend.Resource, Capacity: 1})
	srv.Pause()
	returnsByDeadline(t, "Acquire", func(ctx context.Context) error {
		_, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
		return err
	})
	rec.await(t, "got no answer from redis", 10*time.Second)
	srv.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lease, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{Wait: true})
	if err != nil {
		t.Fatalf("the slot of the abandoned acquisition did not come back: %v", err)
	}
	if err := set.Settle(context.Background(), lease, []int64{1}, nil, true, nil); err != nil {
		t.Fatal(err)
	}
}
