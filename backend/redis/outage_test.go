package redis_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// quickClient gives up fast on a server that is away.
func quickClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: 1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRestartFailClosed(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	b := cr.New(quickClient(t, srv.Addr), cr.Options{})
	const capacity = 1_000_000
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: 1000 * time.Hour, Capacity: capacity, Algorithm: concurry.FixedWindow},
	}, concurry.WithName(t.Name()), concurry.WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()

	var c outageCounts
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { c.hammer(t, ls, stop) })
	}
	time.Sleep(200 * time.Millisecond) // let the workers run before, during and after the outage
	srv.Stop()
	time.Sleep(300 * time.Millisecond)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !c.sawRecovery.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if !c.sawOutage.Load() || !c.sawRecovery.Load() {
		t.Fatalf("outage seen %v, recovery seen %v", c.sawOutage.Load(), c.sawRecovery.Load())
	}
	st, err := ls.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	used := capacity - st.Limits[0].Available
	// Every grant is charged once. A call that failed during the outage may
	// have been charged when its reply was lost, but never twice.
	if used < c.granted.Load() || used > c.granted.Load()+c.failed.Load() {
		t.Fatalf("charged %d, granted %d, failed %d", used, c.granted.Load(), c.failed.Load())
	}
	if d := b.Degraded(t.Name()); d < c.failed.Load() {
		t.Fatalf("Degraded = %d, want at least the %d refusals", d, c.failed.Load())
	}
	t.Logf("granted %d, refused during the outage %d, charged %d", c.granted.Load(), c.failed.Load(), used)
}

// outageCounts are what the workers of TestRestartFailClosed saw.
type outageCounts struct {
	granted, failed        atomic.Int64
	sawOutage, sawRecovery atomic.Bool
}

// hammer acquires and releases until stop is closed, counting outcomes.
func (c *outageCounts) hammer(t *testing.T, ls *concurry.LimitSet, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		a, err := ls.TryAcquire(context.Background(), nil)
		switch {
		case err == nil:
			c.granted.Add(1)
			if c.sawOutage.Load() {
				c.sawRecovery.Store(true)
			}
			if err := a.Release(); err != nil && !errors.Is(err, concurry.ErrBackendUnavailable) {
				t.Errorf("Release: %v", err)
			}
		case errors.Is(err, concurry.ErrBackendUnavailable):
			c.failed.Add(1)
			c.sawOutage.Store(true)
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
}

func TestFailOpen(t *testing.T) {
	srv := redistest.Start(t)
	b := cr.New(quickClient(t, srv.Addr), cr.Options{Outage: cr.FailOpen})
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
		concurry.WithName(t.Name()), concurry.WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	srv.Kill()
	for range 3 { // beyond the capacity: nothing is enforced while Redis is away
		a, err := ls.Acquire(context.Background(), nil)
		if err != nil {
			t.Fatalf("FailOpen Acquire during an outage: %v", err)
		}
		defer a.Release()
	}
	if d := b.Degraded(t.Name()); d != 3 {
		t.Fatalf("Degraded = %d, want 3", d)
	}
	st, err := ls.Stats(context.Background())
	if !errors.Is(err, concurry.ErrBackendUnavailable) {
		t.Fatalf("Stats during the outage: %v, want ErrBackendUnavailable", err)
	}
	if st.Degraded != 3 || st.Limits[0].Granted != 3 {
		t.Fatalf("Stats during the outage: Degraded %d, Granted %d; want 3 and 3", st.Degraded, st.Limits[0].Granted)
	}
}

func TestReplayedAcquireChargesOnce(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	frozen := time.Now().UnixMicro()
	cr.SetClock(b, func() int64 { return frozen }) // no refill between the grant and the settle
	// a resource, so that the grant is a lease: a grant of rate limits alone
	// leaves no record to replay against, and is never sent twice
	specs := []backend.Spec{{Key: "tokens", Kind: backend.Rate, Window: time.Hour, Capacity: 100},
		{Key: "conn", Kind: backend.Resource, Capacity: 10}}
	ctx := context.Background()
	set, err := b.Open(ctx, t.Name(), specs)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for range 3 { // the same id again: a retry after a lost reply
		if ok, err := cr.TakeWithID(ctx, set, 42, []int64{30, 1}); !ok || err != nil {
			t.Fatalf("TakeWithID: %v, %v", ok, err)
		}
	}
	if st, _ := set.Stats(ctx); st[0].Available != 70 {
		t.Fatalf("available %d after one grant of 30 replayed, want 70", st[0].Available)
	}
	refunded := make([]int64, 2)
	for i := range 3 { // a settle retried: applied once, refund bounded by the grant
		if err := set.Settle(ctx, 42, []int64{30, 1}, []int64{-1000, 0}, true, refunded); err != nil {
			t.Fatal(err)
		}
		if i == 0 && refunded[0] != 30 {
			t.Fatalf("refunded %d, want the 30 granted", refunded[0])
		}
	}
	if st, _ := set.Stats(ctx); st[0].Available != 100 {
		t.Fatalf("available %d after the settle, want 100", st[0].Available)
	}
}

// TestDegradedDecisionsAreLogged: decisions made by the outage policy are
// logged, the first at once and then at most one line a second, each with
// how many were made since the line before.
func TestDegradedDecisionsAreLogged(t *testing.T) {
	for _, policy := range []cr.OutagePolicy{cr.FailClosed, cr.FailOpen} {
		t.Run(policy.String(), func(t *testing.T) {
			srv := redistest.Start(t)
			rec := newLogRecorder()
			b := cr.New(quickClient(t, srv.Addr), cr.Options{Outage: policy, Logger: slog.New(rec)})
			ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
				concurry.WithName(t.Name()), concurry.WithBackend(b))
			if err != nil {
				t.Fatal(err)
			}
			defer ls.Close()
			srv.Kill()
			decision := map[cr.OutagePolicy]string{cr.FailClosed: "decision=refused", cr.FailOpen: "decision=granted without limits"}[policy]
			for i := range 3 {
				a, err := ls.TryAcquire(context.Background(), nil)
				if err == nil {
					_ = a.Release()
				}
				if i == 0 {
					line := rec.await(t, "decided without redis", 5*time.Second)
					if !strings.Contains(line, decision) || !strings.Contains(line, "decisions=1 ") {
						t.Fatalf("log line %q, want %s and decisions=1", line, decision)
					}
				}
			}
			if st, _ := ls.Stats(context.Background()); st.Degraded < 3 {
				t.Fatalf("Stats.Degraded = %d, want at least 3", st.Degraded)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			logged := 0
			for _, l := range rec.lines {
				if strings.Contains(l, "decided without redis") {
					logged++
				}
			}
			if logged > 2 { // the first, and maybe one for a second that passed
				t.Fatalf("%d log lines for 3 decisions within a second: not rate-limited", logged)
			}
		})
	}
}
