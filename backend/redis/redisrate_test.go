package redis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// TestGCRAMatchesRedisRate replays one trace, in real time, through this
// backend's GCRA and through redis_rate on the same server, with the same
// rate and burst: both take their time from Redis TIME, one call right after
// the other. Their decisions must be the same, except within edge of an
// instant where a unit becomes available (the two calls run some µs apart);
// each such difference is checked to be at an edge, there may be few, and
// both limiters start afresh after one.
func TestGCRAMatchesRedisRate(t *testing.T) {
	const (
		capacity = 8
		window   = 400 * time.Millisecond // T = 50 ms
		steps    = 120
		edge     = 2 * time.Millisecond
	)
	client := redistest.Start(t).Client()
	ctx := context.Background()
	b := cr.New(client, cr.Options{})
	spec := []backend.Spec{{Key: "k", Kind: backend.Rate, Algorithm: algorithms.GCRA, Window: window, Capacity: capacity}}
	gen := 0 // after a difference at an edge both restart on fresh keys: their states differ by then
	set, err := b.Open(ctx, t.Name(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { set.Close() }()
	peer := redis_rate.NewLimiter(client)
	limit := redis_rate.Limit{Rate: capacity, Burst: capacity, Period: window}
	rng := rand.New(rand.NewPCG(7, 7))
	same, edges, granted := 0, 0, 0
	for range steps {
		time.Sleep(time.Duration(rng.Int64N(int64(window / 6))))
		n := int64(1 + rng.IntN(3))
		lease, err := set.Acquire(ctx, []int64{n}, backend.AcquireOptions{})
		mine := err == nil
		if err != nil && !errors.Is(err, backend.ErrWouldBlock) {
			t.Fatal(err)
		}
		res, err := peer.AllowN(ctx, fmt.Sprintf("peer:%s:%d", t.Name(), gen), limit, int(n))
		if err != nil {
			t.Fatal(err)
		}
		if mine {
			granted++
			if err := set.Settle(ctx, lease, []int64{n}, nil, true, nil); err != nil {
				t.Fatal(err)
			}
		}
		if theirs := res.Allowed > 0; mine == theirs {
			same++
			continue
		}
		// A difference is only allowed where a unit becomes available between the two calls.
		near := res.Allowed == 0 && res.RetryAfter <= edge
		if !mine {
			in, err := cr.ReadyIn(ctx, set, []int64{n})
			near = err == nil && in <= edge
		}
		if !near {
			t.Fatalf("step with n=%d: mine %v, redis_rate %+v, not at an edge", n, mine, res)
		}
		edges++
		gen++
		set.Close()
		if set, err = b.Open(ctx, fmt.Sprintf("%s/%d", t.Name(), gen), spec); err != nil {
			t.Fatal(err)
		}
	}
	if edges > steps/20 {
		t.Fatalf("%d of %d decisions differ at edges: too many", edges, steps)
	}
	if granted == 0 || granted == steps {
		t.Fatalf("granted %d of %d: the trace tells nothing", granted, steps)
	}
	t.Logf("%d of %d decisions identical, %d at an edge; %d granted", same, steps, edges, granted)
}
