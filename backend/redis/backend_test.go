package redis_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

func TestOpenErrors(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	ctx := context.Background()
	tokens := []backend.Spec{{Key: "tokens", Kind: backend.Rate, Window: time.Minute, Capacity: 100}}
	if _, err := b.Open(ctx, "", tokens); !errors.Is(err, backend.ErrNameRequired) || !errors.Is(err, cr.ErrNameRequired) {
		t.Fatalf("empty name: %v, want ErrNameRequired", err)
	}
	huge := []backend.Spec{{Key: "tokens", Kind: backend.Rate, Window: time.Minute, Capacity: 1 << 52}}
	if _, err := b.Open(ctx, "huge", huge); !errors.Is(err, backend.ErrInvalidLimit) || !errors.Is(err, cr.ErrOutOfRange) {
		t.Fatalf("capacity 2^52: %v, want ErrInvalidLimit", err)
	}
	set, err := b.Open(ctx, "shared", tokens)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	other := []backend.Spec{{Key: "tokens", Kind: backend.Rate, Window: time.Minute, Capacity: 101}}
	_, err = cr.New(redistest.Start(t).Client(), cr.Options{}).Open(ctx, "shared", other)
	if err != nil {
		t.Fatalf("another server is another namespace: %v", err)
	}
	_, err = b.Open(ctx, "shared", other)
	if !errors.Is(fmt.Errorf("wrapped: %w", err), backend.ErrLimitMismatch) {
		t.Fatalf("other definitions: %v, want ErrLimitMismatch", err)
	}
}

func TestUnavailableIsWrapped(t *testing.T) {
	srv := redistest.Start(t)
	b := cr.New(quickClient(t, srv.Addr), cr.Options{})
	srv.Kill()
	_, err := b.Open(context.Background(), "down", []backend.Spec{{Key: "conn", Kind: backend.Resource, Capacity: 1}})
	if !errors.Is(fmt.Errorf("wrapped: %w", err), backend.ErrBackendUnavailable) {
		t.Fatalf("Open with Redis down: %v, want ErrBackendUnavailable", err)
	}
}

func TestOutagePolicyString(t *testing.T) {
	if cr.FailClosed.String() != "FailClosed" || cr.FailOpen.String() != "FailOpen" {
		t.Fatal(cr.FailClosed.String(), cr.FailOpen.String())
	}
}

// TestRenewalNeverResurrects moves the scripts' clock by hand: a renewed
// lease outlives its first expiry; an expired one is not renewed, its units
// come back once, and its late settle returns no units again (and says the
// lease was lost).
func TestRenewalNeverResurrects(t *testing.T) {
	const ttl = time.Second
	client := redistest.Start(t).Client()
	now := time.Now().UnixMicro()
	b := cr.New(client, cr.Options{LeaseTTL: ttl})
	cr.SetClock(b, func() int64 { return now })
	ctx := context.Background()
	set, err := b.Open(ctx, t.Name(), []backend.Spec{{Key: "conn", Kind: backend.Resource, Capacity: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	inUse := func() int64 {
		st, err := set.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st[0].InUse
	}
	first, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now += ttl.Microseconds() / 2
	cr.RenewNow(set) // expiry moves to now + ttl
	now += ttl.Microseconds() * 3 / 4
	if n := inUse(); n != 1 {
		t.Fatalf("a renewed lease past its first expiry: %d in use, want 1", n)
	}
	now += ttl.Microseconds() // expired now
	cr.RenewNow(set)
	if n := inUse(); n != 0 {
		t.Fatalf("an expired lease: %d in use, want 0", n)
	}
	second, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Settle(ctx, first, []int64{1}, nil, true, nil); !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("the settle of an expired lease: %v, want ErrLeaseLost", err)
	}
	if n := inUse(); n != 1 {
		t.Fatalf("after the expired lease's late settle: %d in use, want 1 (the second lease)", n)
	}
	if err := set.Settle(ctx, second, []int64{1}, nil, true, nil); err != nil {
		t.Fatal(err)
	}
	if n := inUse(); n != 0 {
		t.Fatalf("%d in use at the end, want 0", n)
	}
}

// TestSetsLeaveNothingInTheBackend: sets that never decided without Redis
// (the identities of a Keyed, opened and forgotten by the thousand) leave
// no per-name state in their Backend.
func TestSetsLeaveNothingInTheBackend(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	ctx := context.Background()
	calls := []backend.Spec{{Key: "calls", Kind: backend.Rate, Window: time.Minute, Capacity: 10}}
	for i := range 100 {
		set, err := b.Open(ctx, fmt.Sprint("identity/", i), calls)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
		if d := set.(backend.DegradedCounter).Degraded(); d != 0 {
			t.Fatalf("Degraded = %d with Redis up", d)
		}
		_ = set.Close()
	}
	if n := cr.DegradedNames(b); n != 0 {
		t.Fatalf("the backend keeps counters for %d names that never decided without redis", n)
	}
}

// TestOpenLazy: OpenLazy checks what Open checks before Redis and sends
// nothing; the set's first call checks the definitions, so a name stored
// with others fails there with ErrLimitMismatch, and a set of a new name
// works as one Open returned.
func TestOpenLazy(t *testing.T) {
	client := redistest.Start(t).Client()
	counter := &commandCounter{}
	client.AddHook(counter.hook())
	b := cr.New(client, cr.Options{})
	ctx := context.Background()
	tokens := []backend.Spec{{Key: "tokens", Kind: backend.Rate, Window: time.Minute, Capacity: 100}}
	if _, err := b.OpenLazy("", tokens); !errors.Is(err, backend.ErrNameRequired) {
		t.Fatalf("empty name: %v, want ErrNameRequired", err)
	}
	huge := []backend.Spec{{Key: "tokens", Kind: backend.Rate, Window: time.Minute, Capacity: 1 << 52}}
	if _, err := b.OpenLazy("huge", huge); !errors.Is(err, backend.ErrInvalidLimit) {
		t.Fatalf("capacity 2^52: %v, want ErrInvalidLimit", err)
	}
	stored := open(t, b, tokens...)
	other := []backend.Spec{{Key: "tokens", Kind: backend.Rate, Window: time.Minute, Capacity: 101}}
	before := counter.n.Load()
	mismatched, err := b.OpenLazy(t.Name(), other)
	if err != nil {
		t.Fatal(err)
	}
	defer mismatched.Close()
	fresh, err := b.OpenLazy(t.Name()+"/new", tokens)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if n := counter.n.Load() - before; n != 0 {
		t.Fatalf("OpenLazy sent %d commands, want none", n)
	}
	if _, err := mismatched.Acquire(ctx, []int64{1}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrLimitMismatch) {
		t.Fatalf("first call under another definition: %v, want ErrLimitMismatch", err)
	}
	if _, err := fresh.Acquire(ctx, []int64{40}, backend.AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := available(t, fresh); got[0] != 60 {
		t.Fatalf("a lazily opened set after taking 40 of 100: %v available", got)
	}
	if got := available(t, stored); got[0] != 100 {
		t.Fatalf("the stored set: %v available, want 100: the mismatched call took nothing", got)
	}
}

// TestOpeningIsCheap: the sets of one definition share what they derive
// from it (definition text, digest, script parameters), so opening another
// identity's set allocates little more than its own keys (each also boxed
// once, for the commands of its calls) and channels.
func TestOpeningIsCheap(t *testing.T) {
	b := cr.New(redistest.Start(t).Client(), cr.Options{})
	specs := []backend.Spec{
		{Key: "calls", Kind: backend.Rate, Algorithm: algorithms.SlidingWindow, Window: time.Minute, Capacity: 10},
		{Key: "conn", Kind: backend.Resource, Capacity: 2},
	}
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		i++
		set, err := b.OpenLazy(fmt.Sprint("identity/", i), specs)
		if err != nil {
			t.Fatal(err)
		}
		_ = set.Close()
	})
	if allocs > 19 {
		t.Fatalf("opening a set of a known definition: %v allocations, want at most 19", allocs)
	}
}
