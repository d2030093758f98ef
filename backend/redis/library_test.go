package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// acquireAndSettle takes one unit of every spec of set and gives it back.
func acquireAndSettle(t *testing.T, set backend.Set, n int) {
	t.Helper()
	ctx := context.Background()
	ones := make([]int64, n)
	for i := range ones {
		ones[i] = 1
	}
	lease, err := set.Acquire(ctx, ones, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Settle(ctx, lease, ones, nil, true, nil); err != nil {
		t.Fatal(err)
	}
}

// TestLibraryReloaded: a server that lost the function library (FUNCTION
// FLUSH, a restart without persistence, a new node) gets it again at the
// next call, which succeeds.
func TestLibraryReloaded(t *testing.T) {
	client := redistest.Start(t).Client()
	ctx := context.Background()
	b := cr.New(client, cr.Options{})
	specs := []backend.Spec{
		{Key: "tokens", Kind: backend.Rate, Window: time.Minute, Capacity: 100},
		{Key: "conn", Kind: backend.Resource, Capacity: 2},
	}
	set, err := b.Open(ctx, t.Name(), specs)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	acquireAndSettle(t, set, len(specs))
	if err := client.FunctionFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	acquireAndSettle(t, set, len(specs))
	libs, err := client.FunctionList(ctx, redis.FunctionListQuery{}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) != 1 || !strings.HasPrefix(libs[0].Name, "concurry_") || cr.UsesScripts(b) {
		t.Fatalf("libraries %+v, scripts %v: want the library loaded again", libs, cr.UsesScripts(b))
	}
	if st, err := set.Stats(ctx); err != nil || st[0].Available != 98 || st[1].InUse != 0 {
		t.Fatalf("stats %+v, %v: want 98 tokens left, no connection held", st, err)
	}
}

// TestFallbackToScripts: a user the ACL forbids functions still gets the
// limits, through scripts.
func TestFallbackToScripts(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	admin := srv.Client()
	if err := admin.Do(ctx, "ACL", "SETUSER", "nofunc", "on", "nopass", "~*", "&*", "+@all", "-function", "-fcall", "-fcall_ro").Err(); err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "nofunc", Password: "any"}) // nopass: any password
	defer client.Close()
	b := cr.New(client, cr.Options{})
	specs := []backend.Spec{{Key: "conn", Kind: backend.Resource, Capacity: 1}}
	set, err := b.Open(ctx, t.Name(), specs)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	acquireAndSettle(t, set, len(specs))
	if !cr.UsesScripts(b) {
		t.Fatal("the backend did not fall back to scripts")
	}
}

// paramsRecorder records, per FCALL a client sends, whether it sent a set's
// parameters in their short form ("#" and a SHA-1), and the NOSPEC error
// replies (a short form the server's library did not know).
type paramsRecorder struct {
	mu                 sync.Mutex
	short, whole, miss int
	opaque             int // calls whose keys were not strings (a command's String, in logs and traces, would not show them)
}

func (r *paramsRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *paramsRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (r *paramsRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		args := cmd.Args()
		if name, _ := args[0].(string); !strings.EqualFold(name, "fcall") || len(args) < 4 {
			return err
		}
		nkeys, _ := args[2].(int)
		p, _ := args[3+nkeys].(string)
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, k := range args[3 : 3+nkeys] {
			if _, ok := k.(string); !ok {
				r.opaque++
				break
			}
		}
		if strings.HasPrefix(p, "#") {
			r.short++
		} else {
			r.whole++
		}
		if err != nil && strings.HasPrefix(err.Error(), "NOSPEC") {
			r.miss++
		}
		return err
	}
}

func (r *paramsRecorder) counts() (short, whole, miss int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.short, r.whole, r.miss
}

// TestShortParameters: once the server's library has parsed a set's
// parameters, calls send their short form; a server that has not (its
// cache emptied: here by more definitions than it keeps) answers NOSPEC,
// having done nothing, and the call is sent whole, once, and counted once.
func TestShortParameters(t *testing.T) {
	client := redistest.Start(t).Client()
	rec := &paramsRecorder{}
	client.AddHook(rec)
	ctx := context.Background()
	b := cr.New(client, cr.Options{})
	open := func(i int) backend.Set {
		set, err := b.Open(ctx, fmt.Sprintf("%s/%d", t.Name(), i), []backend.Spec{
			{Key: "tokens", Kind: backend.Rate, Window: 1000 * time.Hour, Capacity: int64(1000 + i)}, // refills 1 token per hour
			{Key: "conn", Kind: backend.Resource, Capacity: 2},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { set.Close() })
		return set
	}
	first := open(0)
	acquireAndSettle(t, first, 2)
	s0, w0, m0 := rec.counts()
	for range 10 {
		acquireAndSettle(t, first, 2)
	}
	s1, w1, m1 := rec.counts()
	if s1-s0 != 20 || w1 != w0 || m1 != m0 {
		t.Fatalf("10 cycles of a known set: %d short, %d whole, %d NOSPEC; want 20 short, no other", s1-s0, w1-w0, m1-m0)
	}
	// More definitions than the library keeps (256): the cache is emptied
	// on the way, so that the first set's short form is unknown again.
	for i := 1; i <= 300; i++ {
		acquireAndSettle(t, open(i), 2)
	}
	_, _, m2 := rec.counts()
	acquireAndSettle(t, first, 2)
	s3, w3, m3 := rec.counts()
	if m3 == m2 || w3 == w1 || s3 == s1 {
		t.Fatalf("after the cache was emptied: %d NOSPEC, %d whole, %d short since; want each", m3-m2, w3-w1, s3-s1)
	}
	if rec.opaque != 0 {
		t.Errorf("%d calls sent keys that are not strings", rec.opaque)
	}
	st, err := first.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Available != 1000-12 || st[1].InUse != 0 {
		t.Fatalf("stats %+v: want 12 tokens taken (each cycle once, the resent one too), no connection held", st)
	}
}
