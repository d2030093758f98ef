package redis_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// stallLimits are the limits of the stalled-holder test: tokens that never
// refill during it, and one slot.
func stallLimits() []concurry.Limit {
	return []concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: 1000 * time.Hour, Capacity: 1000},
		concurry.ResourceLimit{Key: "slot", Capacity: 1},
	}
}

// runStalled is the child of TestStalledHolderIsToldAndCharged: it holds the
// slot and 100 tokens, says so, and once told to go on (after its parent
// stopped and continued it) reports 900 tokens used (until Update says the
// lease was lost) and releases, printing what Update and Release returned.
func runStalled(client *redis.Client) int {
	ls, err := concurry.NewLimitSet(stallLimits(), concurry.WithName(os.Getenv(nameEnv)),
		concurry.WithBackend(cr.New(client, cr.Options{LeaseTTL: childTTL})))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer ls.Close()
	a, err := ls.Acquire(context.Background(), concurry.Amounts{"tokens": 100})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println(holdingMsg)
	bufio.NewScanner(os.Stdin).Scan()
	uerr := a.Update(concurry.Amounts{"tokens": 900})
	// A renewal sent just before the stop may still be unanswered: until
	// its reply is read, the lease is not known to be lost. The next renewal
	// (a third of the TTL later at most) finds it gone.
	for deadline := time.Now().Add(10 * childTTL); !errors.Is(uerr, concurry.ErrLeaseLost) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // back off between probes; not a synchronisation
		uerr = a.Update(concurry.Amounts{"tokens": 900})
	}
	rerr := a.Release()
	st, _ := ls.Stats(context.Background())
	fmt.Printf("update=%v release=%v lost=%d\n", errors.Is(uerr, concurry.ErrLeaseLost), errors.Is(rerr, concurry.ErrLeaseLost), st.LeasesLost)
	fmt.Printf("errors: %v | %v\n", uerr, rerr)
	return 0
}

// TestStalledHolderIsToldAndCharged stops a holding process (SIGSTOP) for
// longer than its lease TTL: another process gets the slot. Continued, the
// holder's Update and Release say that its lease was lost, and the usage it
// reports is charged all the same.
func TestStalledHolderIsToldAndCharged(t *testing.T) {
	srv := redistest.Start(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := startChild(t, cmd, "stall", srv.Addr, t.Name())
	if !out.Scan() || strings.TrimSpace(out.Text()) != holdingMsg {
		t.Fatalf("child: %q", out.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ls, err := concurry.NewLimitSet(stallLimits(), concurry.WithName(t.Name()),
		concurry.WithBackend(cr.New(srv.Client(), cr.Options{LeaseTTL: childTTL})))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	// The slot comes back once the stopped holder's lease expires.
	ctx, cancel := context.WithTimeout(context.Background(), 10*childTTL)
	defer cancel()
	a, err := ls.Acquire(ctx, concurry.Amounts{"slot": 1, "tokens": 10})
	if err != nil {
		t.Fatalf("the stopped holder's slot did not come back: %v", err)
	}
	if err := a.Update(concurry.Amounts{"tokens": 10}); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintln(stdin, "go on"); err != nil {
		t.Fatal(err)
	}
	if !out.Scan() {
		t.Fatal("child: no report")
	}
	report := out.Text()
	out.Scan()
	if report != "update=true release=true lost=1" {
		t.Fatalf("child: %q (%s), want Update and Release to return ErrLeaseLost, one lease lost", report, out.Text())
	}
	t.Logf("child: %s; %s", report, out.Text())
	st, err := ls.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Limits[0].Available; got != 90 {
		t.Fatalf("%d tokens available, want 90: 1000 − 900 used by the stalled holder − 10", got)
	}
}

// TestRenewalFailuresAreCountedAndLogged stalls Redis (SIGSTOP) under a
// live holder for longer than its lease TTL: the failed renewals are
// counted and logged, and once Redis is back the loss is noticed, logged
// and counted, the slot is free for others, and the holder's Release says
// its lease was lost and charges its usage.
func TestRenewalFailuresAreCountedAndLogged(t *testing.T) {
	srv := redistest.Start(t)
	rec := newLogRecorder()
	b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: childTTL, Logger: slog.New(rec)})
	ls, err := concurry.NewLimitSet(stallLimits(), concurry.WithName(t.Name()), concurry.WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	a, err := ls.Acquire(context.Background(), concurry.Amounts{"tokens": 100})
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	// Each failed renewal but the first takes a renewal period and
	// RenewTimeout: three of them outlast the lease.
	for range 3 {
		rec.await(t, "lease renewal failed", 10*time.Second)
	}
	srv.Resume()
	rec.await(t, "lease lost", 10*time.Second)
	st, err := ls.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.RenewFailures < 2 || st.LeasesLost != 1 {
		t.Fatalf("Stats: %d renewal failures, %d leases lost; want ≥ 2 and 1", st.RenewFailures, st.LeasesLost)
	}
	other, err := concurry.NewLimitSet(stallLimits(), concurry.WithName(t.Name()),
		concurry.WithBackend(cr.New(srv.Client(), cr.Options{})))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	o, err := other.TryAcquire(context.Background(), concurry.Amounts{"slot": 1, "tokens": 1})
	if err != nil {
		t.Fatalf("the lost lease's slot is not free for others: %v", err)
	}
	if err := o.Update(concurry.Amounts{"tokens": 0}); err != nil {
		t.Fatal(err)
	}
	if err := o.Release(); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(concurry.Amounts{"tokens": 900}); err != nil && !errors.Is(err, concurry.ErrLeaseLost) {
		t.Fatal(err)
	}
	if err := a.Release(); !errors.Is(err, concurry.ErrLeaseLost) || !strings.Contains(err.Error(), "was charged") {
		t.Fatalf("Release of the lost lease: %v, want ErrLeaseLost saying the usage was charged", err)
	}
	if st, err := other.Stats(context.Background()); err != nil || st.Limits[0].Available != 100 {
		t.Fatalf("tokens: %+v, %v; want 100 available: the lost holder's 900 charged", st.Limits[0], err)
	}
}

// TestLostLeaseSettledOnce: the settle of a lease that expired and was
// reaped charges its usage, once: a retried settle finds a tombstone.
func TestLostLeaseSettledOnce(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{LeaseTTL: time.Second})
	now := time.Now().UnixMicro()
	cr.SetClock(b, func() int64 { return now })
	ctx := context.Background()
	set := open(t, b,
		backend.Spec{Key: "tokens", Kind: backend.Rate, Window: time.Hour, Capacity: 100},
		backend.Spec{Key: "slot", Kind: backend.Resource, Capacity: 1})
	lease, err := set.Acquire(ctx, []int64{10, 1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now += time.Second.Microseconds() + 1 // expired, unrenewed
	if _, err := set.Acquire(ctx, []int64{1, 1}, backend.AcquireOptions{}); err != nil {
		t.Fatalf("the expired lease's slot: %v", err)
	}
	if err := set.Settle(ctx, lease, []int64{10, 1}, []int64{40, 0}, true, nil); !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("settling the lost lease: %v, want ErrLeaseLost", err)
	}
	if got := available(t, set); got[0] != 49 || got[1] != 0 {
		t.Fatalf("available %v, want [49 0]: 100 − 10 − 40 used by the lost lease − 1", got)
	}
	code, err := cr.SettleAgain(ctx, set, lease, []int64{10, 1}, []int64{40, 0})
	if err != nil || code != 2 {
		t.Fatalf("the retried settle: code %d, %v; want 2 (lost, charged before)", code, err)
	}
	if got := available(t, set); got[0] != 49 || got[1] != 0 {
		t.Fatalf("available %v after a retried settle, want [49 0]: charged once", got)
	}
	if f := set.(backend.FaultCounter).Faults(); f.LeasesLost != 1 {
		t.Fatalf("%d leases lost, want 1", f.LeasesLost)
	}
}

// TestCheckLease: while Redis stalls longer than the lease TTL, CheckLease
// tells the holder, without I/O, that its lease is lost once no renewal has
// succeeded for a whole TTL; the settle says so too.
func TestCheckLease(t *testing.T) {
	srv := redistest.Start(t)
	rec := newLogRecorder()
	b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: childTTL, Logger: slog.New(rec)})
	set := open(t, b, backend.Spec{Key: "slot", Kind: backend.Resource, Capacity: 1})
	checker := set.(interface{ CheckLease(backend.Lease) error })
	lease, err := set.Acquire(context.Background(), []int64{1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := checker.CheckLease(lease); err != nil {
		t.Fatalf("a live lease: %v", err)
	}
	srv.Pause()
	// Three failed renewals outlast the lease (see
	// TestRenewalFailuresAreCountedAndLogged); by the fourth, every renewal
	// sent before it expired has timed out, so none may still have moved it.
	for range 4 {
		rec.await(t, "lease renewal failed", 10*time.Second)
	}
	if err := checker.CheckLease(lease); !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("a lease unrenewed for a whole TTL: %v, want ErrLeaseLost", err)
	}
	if err := checker.CheckLease(lease + 1); err != nil {
		t.Fatalf("a lease the set does not hold: %v, want nil", err)
	}
	srv.Resume()
	err = set.Settle(context.Background(), lease, []int64{1}, nil, true, nil)
	if !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("the settle of the lost lease: %v, want ErrLeaseLost", err)
	}
	if f := set.(backend.FaultCounter).Faults(); f.LeasesLost != 1 || f.RenewFailures < 4 {
		t.Fatalf("faults %+v, want 1 lease lost, at least 4 renewal failures", f)
	}
}

// TestManyLostLeases: more leases expire at once than one call reaps (64);
// the settle of each says it was lost, charges its usage once (a retry
// finds a tombstone, whether the lease was reaped or still unreaped), and
// every unit comes back exactly once.
func TestManyLostLeases(t *testing.T) {
	const n = 70
	b := cr.New(redistest.Start(t).Client(), cr.Options{LeaseTTL: time.Second})
	now := time.Now().UnixMicro()
	cr.SetClock(b, func() int64 { return now })
	ctx := context.Background()
	set := open(t, b,
		backend.Spec{Key: "tokens", Kind: backend.Rate, Window: time.Hour, Capacity: 1000},
		backend.Spec{Key: "slot", Kind: backend.Resource, Capacity: n})
	leases := make([]backend.Lease, n)
	for i := range leases {
		l, err := set.Acquire(ctx, []int64{1, 1}, backend.AcquireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		leases[i] = l
	}
	now += time.Second.Microseconds() + 1 // all expired, none reaped yet
	// The reap takes the least members of the lease zset first ("id amounts",
	// equal scores): settle the greatest first, which that reap leaves.
	slices.SortFunc(leases, func(a, b backend.Lease) int {
		return -strings.Compare(strconv.FormatUint(uint64(a), 10), strconv.FormatUint(uint64(b), 10))
	})
	for _, l := range leases {
		if err := set.Settle(ctx, l, []int64{1, 1}, []int64{2, 0}, true, nil); !errors.Is(err, backend.ErrLeaseLost) {
			t.Fatalf("settling a lost lease: %v, want ErrLeaseLost", err)
		}
	}
	for _, l := range leases {
		if code, err := cr.SettleAgain(ctx, set, l, []int64{1, 1}, []int64{2, 0}); err != nil || code != 2 {
			t.Fatalf("a retried settle: code %d, %v; want 2", code, err)
		}
	}
	st, err := set.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Available != 1000-3*n || st[1].InUse != 0 {
		t.Fatalf("stats %+v, want %d tokens (each lease's 1 + 2 charged once) and no slot in use", st, 1000-3*n)
	}
}
