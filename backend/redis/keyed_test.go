package redis_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

const (
	keyedCalls      = 30 // each identity's calls per hour, shared by every process
	keyedIdentities = 12
)

// keyedLimits is every identity's definition in the keyed tests.
func keyedLimits(window time.Duration) []concurry.Limit {
	return []concurry.Limit{concurry.CallLimit{Window: window, Capacity: keyedCalls}}
}

// runKeyedChild is a keyed child's main: through a Keyed named by nameEnv
// over the Redis at addrEnv (a cluster when it lists several addresses), it
// takes calls of every identity until refused, and prints "granted" and the
// grants per identity, then how many identities Sweep forgot and how many
// it still has.
func runKeyedChild() int {
	client := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: strings.Split(os.Getenv(addrEnv), ",")})
	defer client.Close()
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Backend: cr.New(client, cr.Options{}),
		Name: os.Getenv(nameEnv), Limits: keyedLimits(time.Hour)})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer k.Close()
	ctx := context.Background()
	var sb strings.Builder
	sb.WriteString("granted")
	for i := range keyedIdentities {
		id := fmt.Sprintf("user%d", i)
		n := 0
		for {
			a, err := k.TryAcquire(ctx, id, nil)
			if errors.Is(err, concurry.ErrWouldBlock) {
				break
			}
			if err != nil {
				fmt.Println("error", err)
				return 1
			}
			n++
			if err := a.Release(); err != nil {
				fmt.Println("error", err)
				return 1
			}
		}
		fmt.Fprintf(&sb, " %d", n)
	}
	fmt.Println(sb.String())
	fmt.Println("swept", k.Sweep(ctx), "len", k.Len())
	return 0
}

// keyedAcrossProcesses runs three keyed children over addrs and checks that
// they shared each identity's budget: keyedCalls grants in all per
// identity, and each forgot its local handles once idle.
func keyedAcrossProcesses(t *testing.T, addrs string) {
	t.Helper()
	const procs = 3
	totals := make([]int, keyedIdentities)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range procs {
		cmd, out := child(t, "keyed", addrs, t.Name())
		wg.Go(func() {
			defer func() { _ = cmd.Wait() }()
			if !out.Scan() {
				t.Errorf("child: no output")
				return
			}
			fields := strings.Fields(out.Text())
			if len(fields) != 1+keyedIdentities || fields[0] != "granted" {
				t.Errorf("child: %q", out.Text())
				return
			}
			mu.Lock()
			for i, f := range fields[1:] {
				var n int
				fmt.Sscan(f, &n)
				totals[i] += n
			}
			mu.Unlock()
			if !out.Scan() || !strings.HasSuffix(out.Text(), " len 0") { // some went as new ones came
				t.Errorf("child: %q, want every identity forgotten once idle", out.Text())
			}
		})
	}
	wg.Wait()
	for i, n := range totals {
		if n != keyedCalls {
			t.Fatalf("identity user%d: %d calls granted across %d processes, want %d", i, n, procs, keyedCalls)
		}
	}
}

// TestKeyedAcrossProcesses: three processes share every identity's budget
// on one Redis.
func TestKeyedAcrossProcesses(t *testing.T) {
	keyedAcrossProcesses(t, redistest.Start(t).Addr)
}

// TestKeyedAcrossProcessesCluster: the same on a Redis Cluster, where each
// identity's keys have a hash tag of their own, so the identities are
// spread over the masters.
func TestKeyedAcrossProcessesCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	keyedAcrossProcesses(t, strings.Join(c.Addrs, ","))
	used := 0
	for _, addr := range c.Addrs {
		n, err := redis.NewClient(&redis.Options{Addr: addr}).DBSize(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			used++
		}
	}
	if used < 2 {
		t.Fatalf("the identities' keys are on %d of %d masters, want them spread", used, len(c.Addrs))
	}
}

// TestKeyedIdentitiesExpire: an identity's keys live until its limits are
// full again, and go soon after: its budget is never reset by an expiry,
// and Redis does not keep identities that are full.
func TestKeyedIdentitiesExpire(t *testing.T) {
	client := redistest.Start(t).Client()
	ctx := context.Background()
	const window = time.Second
	for _, w := range []time.Duration{window, time.Hour} {
		k, err := concurry.NewKeyed(concurry.KeyedOptions{Backend: cr.New(client, cr.Options{}),
			Name: fmt.Sprintf("%s/%v", t.Name(), w), Limits: keyedLimits(w)})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		a, err := k.TryAcquire(ctx, "user", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = a.Release()
		key := fmt.Sprintf("{concurry:%s/%v/user}", t.Name(), w)
		ttl, err := client.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		// One call of 30 per window is back after window/30; the keys
		// outlive that by a second or two, never by less.
		full := w / keyedCalls
		if ttl < full || ttl > full+3*time.Second {
			t.Fatalf("window %v: the identity's state expires in %v, want between %v (full again) and 3 s more", w, ttl, full)
		}
	}
	key := fmt.Sprintf("{concurry:%s/%v/user}", t.Name(), window)
	deadline := time.Now().Add(10 * time.Second)
	for client.Exists(ctx, key).Val() == 1 { // probe until Redis expires it
		if time.Now().After(deadline) {
			t.Fatalf("the state of an identity full again is still in redis after 10 s")
		}
		time.Sleep(50 * time.Millisecond) // back off between probes; not a synchronisation
	}
}

// TestExpiryFollowsTheState takes a unit at a time, every 50 ms of a test
// clock, from a limit of 10 per 10 s of every algorithm: after each grant
// the set's keys expire no sooner than the set is full again (when a
// request for its whole capacity fits), and at most two seconds later.
func TestExpiryFollowsTheState(t *testing.T) {
	client := redistest.Start(t).Client()
	ctx := context.Background()
	for alg := algorithms.TokenBucket; alg <= algorithms.GCRA; alg++ {
		t.Run(alg.String(), func(t *testing.T) {
			now := time.Now().UnixMicro()
			b := cr.New(client, cr.Options{Prefix: "expiry"})
			cr.SetClock(b, func() int64 { return now })
			set := open(t, b, backend.Spec{Key: "r", Kind: backend.Rate, Algorithm: alg, Window: 10 * time.Second, Capacity: 10})
			key := "{expiry:" + t.Name() + "}"
			for range 40 {
				now += 50_000
				id, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
				if err != nil {
					continue // nothing written: the keys' TTL runs in real time, not the test's
				}
				if err := set.Settle(ctx, id, []int64{1}, nil, true, nil); err != nil {
					t.Fatal(err)
				}
				full, err := cr.ReadyIn(ctx, set, []int64{10})
				if err != nil {
					t.Fatal(err)
				}
				ttl := client.PTTL(ctx, key).Val()
				if ttl < full || ttl > full+2100*time.Millisecond {
					t.Fatalf("the keys expire in %v, the set is full again in %v: want between that and 2 s more", ttl, full)
				}
			}
		})
	}
}

// TestEveryKeyOfANewSetExpires: whatever the first call of a set makes (a
// state, a lease, a SlidingWindow list, a pause, an upstream report), every
// key it leaves in Redis expires, and none before the state.
func TestEveryKeyOfANewSetExpires(t *testing.T) {
	client := redistest.Start(t).Client()
	ctx := context.Background()
	specs := []backend.Spec{
		{Key: "calls", Kind: backend.Rate, Algorithm: algorithms.SlidingWindow, Window: time.Minute, Capacity: 10},
		{Key: "tokens", Kind: backend.Rate, Window: time.Minute, Capacity: 100},
		{Key: "conn", Kind: backend.Resource, Capacity: 2},
	}
	firsts := map[string]func(backend.Set) error{
		"rate": func(s backend.Set) error {
			_, err := s.Acquire(ctx, []int64{1, 10, 0}, backend.AcquireOptions{})
			return err
		},
		"lease": func(s backend.Set) error {
			_, err := s.Acquire(ctx, []int64{0, 0, 1}, backend.AcquireOptions{})
			return err
		},
		"pause": func(s backend.Set) error {
			return s.(backend.Feedback).Pause(ctx, 1, time.Now().Add(time.Minute).UnixNano())
		},
		"lower": func(s backend.Set) error {
			return s.(backend.Feedback).Lower(ctx, 1, 50, time.Now().UnixNano())
		},
	}
	b := cr.New(client, cr.Options{Prefix: "expires"})
	for name, first := range firsts {
		set, err := b.OpenLazy(name, specs)
		if err != nil {
			t.Fatal(err)
		}
		if err := first(set); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tag := "{expires:" + name + "}"
		keys, err := client.Keys(ctx, tag+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		state := client.PTTL(ctx, tag).Val()
		if len(keys) < 2 || state <= 0 {
			t.Fatalf("%s: keys %v, the state's TTL %v", name, keys, state)
		}
		for _, k := range keys {
			// read after the state's: the clock moved on meanwhile
			if ttl := client.PTTL(ctx, k).Val(); k != tag && ttl < state-100*time.Millisecond {
				t.Errorf("%s: key %s expires in %v, the state in %v", name, k, ttl, state)
			}
		}
		_ = set.Close()
	}
}

// TestKeyedNewIdentityOneCall: an identity's set is opened without a call
// of its own, so a new identity's first request is one round trip; a
// definition that differs from the one Redis holds for the identity fails
// that request with ErrLimitMismatch.
func TestKeyedNewIdentityOneCall(t *testing.T) {
	client := redistest.Start(t).Client()
	counter := &commandCounter{}
	client.AddHook(counter.hook())
	ctx := context.Background()
	keyed := func(limits []concurry.Limit) *concurry.Keyed {
		k, err := concurry.NewKeyed(concurry.KeyedOptions{Backend: cr.New(client, cr.Options{}), Name: t.Name(), Limits: limits})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.Close() })
		return k
	}
	k := keyed(keyedLimits(time.Hour))
	for i := range 3 {
		before := counter.n.Load()
		a, err := k.TryAcquire(ctx, fmt.Sprint("new", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Release(); err != nil {
			t.Fatal(err)
		}
		if n := counter.n.Load() - before; n != 1 && i > 0 { // the first may load the library
			t.Fatalf("a new identity's request and release took %d calls, want 1", n)
		}
	}
	other := keyed([]concurry.Limit{concurry.CallLimit{Window: time.Hour, Capacity: keyedCalls + 1}})
	if _, err := other.TryAcquire(ctx, "new0", nil); !errors.Is(err, concurry.ErrLimitMismatch) {
		t.Fatalf("an identity Redis holds under other limits: %v, want ErrLimitMismatch", err)
	}
}
