package redis_test

import (
	"context"
	"strings"
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
