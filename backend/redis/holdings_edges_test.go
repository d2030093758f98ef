package redis_test

// Edge tests of Update, Release, Do, and holdings that end early,
// on a real redis-server. Each probe quotes the sentence of DESIGN.md (or of
// a doc comment) it checks. Exact instants use the scripts' test clock
// (cr.SetClock) with a LeaseTTL long enough in real time that no renewal
// runs during the probe.

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
	"github.com/concurry/concurry/internal/backendtest"
)

// holdClock is a fake Redis clock in µs, safe for the renewal goroutine.
type holdClock struct{ now atomic.Int64 }

func newHoldClock(b *cr.Backend) *holdClock {
	c := &holdClock{}
	c.now.Store(time.Now().UnixMicro())
	cr.SetClock(b, c.now.Load)
	return c
}

func (c *holdClock) add(d time.Duration) { c.now.Add(d.Microseconds()) }

// holdSet makes the set every probe holds, under the test's name in b:
// 1000 tokens over MaxWindow and a slot, closed when the test ends.
func holdSet(t *testing.T, b *cr.Backend) *concurry.LimitSet {
	t.Helper()
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: concurry.MaxWindow, Capacity: 1000},
		concurry.ResourceLimit{Key: "slot", Capacity: 1},
	}, concurry.WithName(t.Name()), concurry.WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	return ls
}

// holdOn is holdSet on a new backend of client with LeaseTTL ttl (0: the
// default).
func holdOn(t *testing.T, client redis.UniversalClient, ttl time.Duration) *concurry.LimitSet {
	t.Helper()
	return holdSet(t, cr.New(client, cr.Options{LeaseTTL: ttl}))
}

// holdClocked is holdOn with the scripts' clock under the test's hand.
func holdClocked(t *testing.T, client redis.UniversalClient, ttl time.Duration) (*holdClock, *concurry.LimitSet) {
	t.Helper()
	b := cr.New(client, cr.Options{LeaseTTL: ttl})
	return newHoldClock(b), holdSet(t, b)
}

// holdWaitLost reports usage on a until Update says the lease was lost: a
// renewal, which runs on a real-time timer, found it gone.
func holdWaitLost(t *testing.T, a *concurry.Acquisition, usage concurry.Amounts) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		err := a.Update(usage)
		if errors.Is(err, concurry.ErrLeaseLost) {
			return
		}
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("Update never said the lease was lost")
		}
		time.Sleep(20 * time.Millisecond) // waits for the renewal timer (real time)
	}
}

// wantLeasesLost checks the set's count of leases lost.
func wantLeasesLost(t *testing.T, ls *concurry.LimitSet, want int64) {
	t.Helper()
	if st, _ := ls.Stats(context.Background()); st.LeasesLost != want {
		t.Errorf("LeasesLost %d, want %d", st.LeasesLost, want)
	}
}

// wantSlotFree checks that no slot of ls is in use.
func wantSlotFree(t *testing.T, ls *concurry.LimitSet) {
	t.Helper()
	if slot := backendtest.LimitStat(t, ls, "slot"); slot.InUse != 0 {
		t.Errorf("slot in use %d, want 0", slot.InUse)
	}
}

// DESIGN: "Redis holdings are leases with a TTL that live holders renew" and
// "A holder is told when its exclusivity ended early (a lease lost to
// expiry ...): Update and Release return an error saying so. Reported rate
// usage is charged even then". At exactly the lease's expiry another holder
// may take the slot, and the first holder's Release says the lease was lost
// and charges its usage. On one node and on a 3-master Redis Cluster.
func TestHoldingEdgeRedisLeaseLostAtExactExpiry(t *testing.T) {
	testLeaseLostAtExactExpiry(t, redistest.Start(t).Client())
}

func TestHoldingEdgeRedisClusterLeaseLostAtExactExpiry(t *testing.T) {
	testLeaseLostAtExactExpiry(t, redistest.StartCluster(t).Client())
}

func testLeaseLostAtExactExpiry(t *testing.T, client redis.UniversalClient) {
	const ttl = time.Hour
	clock, ls := holdClocked(t, client, ttl)
	a := backendtest.Held(t, ls, concurry.Amounts{"tokens": 100})
	clock.add(ttl - time.Microsecond)
	if _, err := ls.TryAcquire(context.Background(), concurry.Amounts{"tokens": 1}); !errors.Is(err, concurry.ErrWouldBlock) {
		t.Fatalf("1µs before the lease expires another holder got the slot: %v", err)
	}
	clock.add(time.Microsecond)
	o, err := ls.TryAcquire(context.Background(), concurry.Amounts{"tokens": 1})
	if err != nil {
		t.Fatalf("at the lease's expiry the slot is not free: %v", err)
	}
	o.Update(concurry.Amounts{"tokens": 1})
	if err := o.Release(); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(concurry.Amounts{"tokens": 300}); err != nil && !errors.Is(err, concurry.ErrLeaseLost) {
		t.Fatalf("Update: %v", err)
	}
	err = a.Release()
	if !errors.Is(err, concurry.ErrLeaseLost) || !strings.Contains(err.Error(), "was charged") {
		t.Fatalf("Release of a lease that expired: %v, want ErrLeaseLost saying the usage was charged", err)
	}
	tok := backendtest.LimitStat(t, ls, "tokens")
	if tok.Available != 1000-300-1 || tok.Overage != 200 {
		t.Errorf("tokens %+v, want 699 available (300 used by the lost holder, 1 by the other) and overage 200", tok)
	}
	wantSlotFree(t, ls)
	wantLeasesLost(t, ls, 1)
	if err := a.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
}

// The same lease released 1µs before its expiry is live: Release is nil,
// the refund is made (TokenBucket refunds), the slot comes back.
func TestHoldingEdgeRedisReleaseJustBeforeExpiry(t *testing.T) {
	const ttl = time.Hour
	clock, ls := holdClocked(t, redistest.Start(t).Client(), ttl)
	a := backendtest.Held(t, ls, concurry.Amounts{"tokens": 100})
	clock.add(ttl - time.Microsecond)
	if err := a.Update(concurry.Amounts{"tokens": 40}); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil {
		t.Fatalf("Release 1µs before the lease's expiry: %v, want nil", err)
	}
	tok := backendtest.LimitStat(t, ls, "tokens")
	if tok.Available != 960 || tok.Refunded != 60 {
		t.Errorf("tokens %+v, want 960 available and 60 refunded", tok)
	}
	wantLeasesLost(t, ls, 0)
}

// DESIGN: "Do releases for you; when fn returns an error, a missing update
// is not reported on top of it." and "A holder is told when its exclusivity
// ended early": a lease lost while fn ran must still be reported by Do.
func TestHoldingEdgeRedisDoReportsLostLeaseWhenFnFails(t *testing.T) {
	const ttl = time.Hour
	clock, ls := holdClocked(t, redistest.Start(t).Client(), ttl)
	boom := errors.New("boom")
	err := ls.Do(context.Background(), concurry.Amounts{"tokens": 100}, func(context.Context, *concurry.Acquisition) error {
		clock.add(ttl) // the lease expires while fn runs
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Do: %v, want fn's error", err)
	}
	if errors.Is(err, concurry.ErrUsageNotReported) {
		t.Errorf("Do reported the missing update on top of fn's error: %v", err)
	}
	if !errors.Is(err, concurry.ErrLeaseLost) {
		t.Errorf("Do: %v; the lease expired while fn ran and Do did not say so", err)
	}
}

// DESIGN: "Release() always releases everything it holds ... If a RateLimit
// was never updated, its usage counts as the full request and Release
// returns ErrUsageNotReported. Later calls of Release return nil." and
// "After release: ErrReleased." — for a lease lost to expiry.
func TestHoldingEdgeRedisLostLeaseUnreported(t *testing.T) {
	const ttl = time.Hour
	clock, ls := holdClocked(t, redistest.Start(t).Client(), ttl)
	a := backendtest.Held(t, ls, concurry.Amounts{"tokens": 100})
	clock.add(ttl)
	backendtest.ReleaseLost(t, a)
	if tok := backendtest.LimitStat(t, ls, "tokens"); tok.Available != 900 {
		t.Errorf("tokens %d, want 900: the full request counted", tok.Available)
	}
	wantSlotFree(t, ls)
}

// Update's doc: "When the holding ended before its release (a Redis lease
// expired ...), Update records the usage all the same — it is charged at
// Release — and returns an error matching ErrLeaseLost". Renewals run (short
// real TTL); the scripts' clock jumps past the lease's expiry, so the next
// renewal finds it gone: Update must then say so without any Release.
func TestHoldingEdgeRedisRenewalFindsLeaseGoneUpdateTells(t *testing.T) {
	clock, ls := holdClocked(t, redistest.Start(t).Client(), 300*time.Millisecond)
	a := backendtest.Held(t, ls, concurry.Amounts{"tokens": 100})
	clock.add(time.Second)
	holdWaitLost(t, a, concurry.Amounts{"tokens": 250})
	err := a.Release()
	if !errors.Is(err, concurry.ErrLeaseLost) || !strings.Contains(err.Error(), "was charged") {
		t.Fatalf("Release: %v, want ErrLeaseLost saying the usage was charged", err)
	}
	if tok := backendtest.LimitStat(t, ls, "tokens"); tok.Available != 750 || tok.Overage != 150 {
		t.Errorf("tokens %+v, want 750 available and overage 150", tok)
	}
	wantLeasesLost(t, ls, 1)
}

// DESIGN: "A holder is told when its exclusivity ended early ...: Update
// and Release return an error saying so. Reported rate usage is charged
// even then, or the caller gets an error saying it was not — never silently
// dropped." Redis restarts without persistence while a lease is held: the
// slot is free for another process at once, so the holder's exclusivity
// ended; its Release must say so (or that its usage was not charged).
func TestHoldingEdgeRedisRestartWithoutDataTellsHolder(t *testing.T) {
	srv := redistest.Start(t) // --save "": a restart loses every key
	a := backendtest.Held(t, holdOn(t, srv.Client(), time.Hour), concurry.Amounts{"tokens": 100})
	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	other := holdOn(t, srv.Client(), time.Hour)
	var o *concurry.Acquisition
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		o, err = other.TryAcquire(context.Background(), concurry.Amounts{"tokens": 1})
		if err == nil || !errors.Is(err, concurry.ErrBackendUnavailable) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("another process after the restart: %v", err)
	}
	// Another process holds the slot: the first holder's exclusivity ended.
	uerr := a.Update(concurry.Amounts{"tokens": 500})
	rerr := a.Release()
	t.Logf("Update: %v; Release: %v", uerr, rerr)
	if !errors.Is(uerr, concurry.ErrLeaseLost) && !errors.Is(rerr, concurry.ErrLeaseLost) && rerr == nil {
		t.Errorf("the holder was never told its lease was lost (Update %v, Release %v), and its 500 tokens of usage were not charged", uerr, rerr)
	}
	if tok := backendtest.LimitStat(t, other, "tokens"); rerr == nil && tok.Available > 1000-500 {
		t.Errorf("tokens %d available after Release returned nil: the reported usage of 500 was silently dropped", tok.Available)
	}
	o.Update(concurry.Amounts{"tokens": 1})
	o.Release()
}

// README (Leases): "A renewal never resurrects an expired lease." — at the
// exact instant of the expiry the renewal fails and the holder is told
// (CheckLease, which Update calls); 1µs before, it moves the expiry a whole
// TTL on.
func TestHoldingEdgeRedisRenewalAtExactExpiry(t *testing.T) {
	const ttl = time.Hour
	b := cr.New(redistest.Start(t).Client(), cr.Options{LeaseTTL: ttl})
	clock := newHoldClock(b)
	set := open(t, b, backend.Spec{Key: "slot", Kind: backend.Resource, Capacity: 1})
	checker := set.(backend.LeaseChecker)
	ctx := context.Background()
	lease, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clock.add(ttl - time.Microsecond)
	cr.RenewNow(set) // expiry: grant + 2·TTL − 1µs
	if err := checker.CheckLease(lease); err != nil {
		t.Fatalf("a lease renewed 1µs before its expiry: %v", err)
	}
	clock.add(ttl - time.Microsecond) // 1µs before the renewed expiry
	if _, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrWouldBlock) {
		t.Fatalf("1µs before the renewed expiry another holder got the slot: %v", err)
	}
	clock.add(time.Microsecond) // exactly the renewed expiry
	cr.RenewNow(set)
	if err := checker.CheckLease(lease); !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("a lease whose renewal came at its expiry: %v, want ErrLeaseLost", err)
	}
	other, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatalf("the slot of the lost lease: %v", err)
	}
	if err := set.Settle(ctx, lease, []int64{1}, nil, true, nil); !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("settle of the lost lease: %v, want ErrLeaseLost", err)
	}
	if err := set.Settle(ctx, other, []int64{1}, nil, true, nil); err != nil {
		t.Fatal(err)
	}
}

// DESIGN: "A holder is told when its exclusivity ended early (a lease lost
// to expiry ...): Update and Release return an error saying so. Reported
// rate usage is charged even then, or the caller gets an error saying it
// was not". A lease already known lost (a renewal found it gone) is
// released while Redis is down: Release must still say the lease was lost
// (and that the usage was not charged).
func TestHoldingEdgeRedisLostLeaseReleasedDuringOutage(t *testing.T) {
	srv := redistest.Start(t)
	clock, ls := holdClocked(t, quickClient(t, srv.Addr), 300*time.Millisecond)
	a := backendtest.Held(t, ls, concurry.Amounts{"tokens": 100})
	clock.add(time.Second)
	holdWaitLost(t, a, concurry.Amounts{"tokens": 250})
	srv.Stop()
	err := a.Release()
	t.Logf("Release: %v", err)
	if !errors.Is(err, concurry.ErrBackendUnavailable) {
		t.Errorf("Release with Redis down: %v, want ErrBackendUnavailable", err)
	}
	if !errors.Is(err, concurry.ErrLeaseLost) {
		t.Errorf("Release of a lease known lost, with Redis down: %v; it does not say the lease was lost", err)
	}
}

// DESIGN: "Close() ... acquisitions already granted can still be updated and
// released" and "Redis holdings are leases with a TTL that live holders
// renew": a holder of a closed set keeps renewing — after several TTLs its
// slot is still its own, and its Release is live.
func TestHoldingEdgeRedisRenewalsGoOnAfterClose(t *testing.T) {
	const ttl = time.Second
	srv := redistest.Start(t)
	ls := holdOn(t, srv.Client(), ttl)
	a := backendtest.Held(t, ls, concurry.Amounts{"tokens": 100})
	if err := ls.Close(); err != nil {
		t.Fatal(err)
	}
	other := holdOn(t, srv.Client(), ttl)
	for end := time.Now().Add(4 * ttl); time.Now().Before(end); {
		if o, err := other.TryAcquire(context.Background(), concurry.Amounts{"tokens": 1}); err == nil {
			o.Release()
			t.Fatal("the slot of a live holder of a closed set went to another holder")
		}
		time.Sleep(ttl / 4) // real time: the lease must outlive several TTLs
	}
	if err := a.Update(concurry.Amounts{"tokens": 100}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := a.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
}
