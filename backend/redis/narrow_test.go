package redis_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// keyCounts records how many keys each FCALL, EVALSHA or EVAL names.
type keyCounts struct {
	mu sync.Mutex
	n  []int64
}

// record is keyCounts' cmdHook.
func (c *keyCounts) record(cmd redis.Cmder) {
	args := cmd.Args()
	if name, _ := args[0].(string); len(args) > 2 && (name == "fcall" || name == "evalsha" || name == "eval") {
		n, _ := args[2].(int)
		c.mu.Lock()
		c.n = append(c.n, int64(n))
		c.mu.Unlock()
	}
}

// take returns the key counts recorded since the last take.
func (c *keyCounts) take() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	return n
}

// TestNarrowSetIsOneKey: a set of rate limits without SlidingWindow keeps
// its state, its pauses, its upstream reports and its definition in one
// key, and every call it makes names that key alone, as the first call of a
// new set and the calls of a set paused in Redis do; its key expires. A set
// with a resource or a SlidingWindow names every key.
func TestNarrowSetIsOneKey(t *testing.T) {
	client := redistest.Start(t).Client()
	counts := &keyCounts{}
	client.AddHook(cmdHook(counts.record))
	ctx := context.Background()
	b := cr.New(client, cr.Options{})
	for _, alg := range []algorithms.Kind{algorithms.TokenBucket, algorithms.LeakyBucket, algorithms.FixedWindow, algorithms.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			set := open(t, b,
				backend.Spec{Key: "calls", Kind: backend.Rate, Algorithm: algorithms.FixedWindow, Window: time.Hour, Capacity: 100},
				backend.Spec{Key: "tokens", Kind: backend.Rate, Algorithm: alg, Window: 1000 * time.Hour, Capacity: 1000})
			if !cr.Narrow(set) {
				t.Fatal("a set of rate limits without SlidingWindow is not narrow")
			}
			tag := "{concurry:" + t.Name() + "}"
			lease, err := set.Acquire(ctx, []int64{1, 500}, backend.AcquireOptions{})
			if err != nil {
				t.Fatal(err)
			}
			refunded := make([]int64, 2)
			if err := set.Settle(ctx, lease, []int64{1, 500}, []int64{0, -200}, true, refunded); err != nil {
				t.Fatal(err)
			}
			until := time.Now().Add(time.Hour)
			if err := set.(backend.Feedback).Pause(ctx, 0, until.UnixNano()); err != nil {
				t.Fatal(err)
			}
			if err := set.(backend.Feedback).Lower(ctx, 1, 100, time.Now().UnixNano()); err != nil {
				t.Fatal(err)
			}
			if _, err := set.Acquire(ctx, []int64{1, 0}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrWouldBlock) {
				t.Fatalf("a call while calls is paused: %v, want ErrWouldBlock", err)
			}
			st, err := set.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st[0].Available != 0 || st[1].Available != 100 {
				t.Fatalf("available %d and %d, want 0 (paused) and 100 (lowered)", st[0].Available, st[1].Available)
			}
			for i, n := range counts.take() {
				if n != 1 {
					t.Fatalf("call %d named %d keys, want 1", i, n)
				}
			}
			keys, err := client.Keys(ctx, tag+"*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0] != tag {
				t.Fatalf("keys %v, want the state alone", keys)
			}
			if ttl := client.PTTL(ctx, tag).Val(); ttl < time.Until(until) {
				t.Fatalf("the state expires in %v, before the pause ends", ttl)
			}
		})
	}
	for name, c := range map[string]struct {
		spec backend.Spec
		keys int64 // the state, the leases, the lost leases, the feedback, a list
	}{
		"resource":      {backend.Spec{Key: "conn", Kind: backend.Resource, Capacity: 2}, 4},
		"SlidingWindow": {backend.Spec{Key: "calls", Kind: backend.Rate, Algorithm: algorithms.SlidingWindow, Window: time.Minute, Capacity: 10}, 5},
	} {
		t.Run(name, func(t *testing.T) {
			set := open(t, b, c.spec)
			if cr.Narrow(set) {
				t.Fatal("narrow")
			}
			counts.take()
			if _, err := set.Acquire(ctx, []int64{0}, backend.AcquireOptions{}); err != nil {
				t.Fatal(err)
			}
			if n := counts.take(); len(n) != 1 || n[0] != c.keys {
				t.Fatalf("key counts %v, want one call of %d keys", n, c.keys)
			}
		})
	}
}

// TestNarrowSetMismatch: a narrow set's state keeps its definition, which
// a set of other limits under the same name, narrow or not, reports in its
// ErrLimitMismatch; a narrow set that meets another set's state, or a state
// of the layout before this one (numbers alone, the right digest), fails
// with ErrLimitMismatch and changes nothing.
func TestNarrowSetMismatch(t *testing.T) {
	client := redistest.Start(t).Client()
	ctx := context.Background()
	b := cr.New(client, cr.Options{})
	narrow := []backend.Spec{{Key: "tokens", Kind: backend.Rate, Window: time.Minute, Capacity: 100}}
	other := []backend.Spec{{Key: "tokens", Kind: backend.Rate, Window: time.Minute, Capacity: 101}}
	wide := []backend.Spec{narrow[0], {Key: "conn", Kind: backend.Resource, Capacity: 2}}
	mismatch := func(name string, specs []backend.Spec, stored string) {
		t.Helper()
		set, err := b.OpenLazy(name, specs)
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		_, err = set.Acquire(ctx, make([]int64, len(specs)), backend.AcquireOptions{})
		if !errors.Is(err, backend.ErrLimitMismatch) || !strings.Contains(err.Error(), stored) {
			t.Fatalf("%v, want ErrLimitMismatch naming %s", err, stored)
		}
	}
	first := open(t, b, narrow...)
	if _, err := first.Acquire(ctx, []int64{30}, backend.AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
	mismatch(t.Name(), other, ":100:")                             // narrow, from the narrow state's definition
	mismatch(t.Name(), wide, ":100:")                              // wide, the same
	if _, err := b.Open(ctx, t.Name()+"/wide", wide); err != nil { // makes the wide state
		t.Fatal(err)
	}
	mismatch(t.Name()+"/wide", narrow, "another def") // a narrow set names no lease zset
	if got := available(t, first)[0]; got != 70 {
		t.Fatalf("available %d after the mismatches, want 70", got)
	}

	// A state of the layout before narrow sets: the same numbers, no
	// definition after them.
	tag := "{concurry:" + t.Name() + "/old}"
	raw, err := client.Get(ctx, "{concurry:"+t.Name()+"}").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.Index(string(raw), "concurry/")
	if cut < 8 || cut%8 != 0 {
		t.Fatalf("the state %q does not end with its definition", raw)
	}
	old := raw[:cut]
	if math.Float64frombits(binary.LittleEndian.Uint64(old)) >= 1<<52 {
		t.Fatal("the digest is not below 2^52")
	}
	if err := client.Set(ctx, tag, old, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	mismatch(t.Name()+"/old", narrow, "another def")
	if got, _ := client.Get(ctx, tag).Bytes(); string(got) != string(old) {
		t.Fatal("a mismatched call changed the state")
	}
}

// TestNarrowSetRecordsNoLease: a call that names a lease of a narrow set,
// which the client never sends, fails and changes nothing.
func TestNarrowSetRecordsNoLease(t *testing.T) {
	client := redistest.Start(t).Client()
	ctx := context.Background()
	b := cr.New(client, cr.Options{})
	set := open(t, b, backend.Spec{Key: "tokens", Kind: backend.Rate, Window: time.Hour, Capacity: 100})
	if _, err := set.Acquire(ctx, []int64{30}, backend.AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
	before, err := client.Get(ctx, "{concurry:"+t.Name()+"}").Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cr.SettleAgain(ctx, set, 42, []int64{30}, []int64{-30}); !errors.Is(err, cr.ErrScript) || !strings.Contains(err.Error(), "no lease") {
		t.Fatalf("a settle of a lease: %v, want ErrScript", err)
	}
	if after, _ := client.Get(ctx, "{concurry:"+t.Name()+"}").Result(); after != before {
		t.Fatal("the failed settle changed the state")
	}
	if got := available(t, set)[0]; got != 70 {
		t.Fatalf("available %d, want 70", got)
	}
}
