package concurry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concurry/concurry"
)

// The guide's set: calls and tokens per hour, and connections.
func ExampleLimitSet() {
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 500},
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 10_000},
		concurry.ResourceLimit{Key: "connections", Capacity: 10},
	})
	if err != nil {
		panic(err)
	}
	defer ls.Close()

	ctx := context.Background()
	// One call and one connection are taken without being named.
	acq, err := ls.Acquire(ctx, concurry.Amounts{"tokens": 800})
	if err != nil {
		panic(err)
	}
	used := int64(650) // what the provider reported
	if err := acq.Update(concurry.Amounts{"tokens": used}); err != nil {
		panic(err)
	}
	if err := acq.Release(); err != nil {
		panic(err)
	}

	st, _ := ls.Stats(ctx)
	for _, l := range st.Limits {
		fmt.Printf("%s: %d of %d available\n", l.Key, l.Available, l.Capacity)
	}
	// Output:
	// call_count: 499 of 500 available
	// tokens: 9350 of 10000 available
	// connections: 10 of 10 available
}

// Hold a connection for a whole job, and take tokens per call inside it.
func ExampleLimitSet_nested() {
	ls, _ := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1000},
		concurry.ResourceLimit{Key: "connections", Capacity: 4},
	})
	defer ls.Close()
	ctx := context.Background()

	job, _ := ls.Acquire(ctx, concurry.Amounts{"connections": 2})
	for _, used := range []int64{70, 30} {
		// The inner request also takes one connection of its own.
		call, _ := ls.Acquire(ctx, concurry.Amounts{"tokens": 100})
		_ = call.Update(concurry.Amounts{"tokens": used})
		_ = call.Release()
	}
	st, _ := ls.Stats(ctx)
	c, _ := st.Limit("connections")
	fmt.Println("connections in use during the job:", c.InUse)
	_ = job.Release()
	st, _ = ls.Stats(ctx)
	c, _ = st.Limit("connections")
	tok, _ := st.Limit("tokens")
	fmt.Println("after it:", c.InUse, "in use,", tok.Available, "tokens left")
	// Output:
	// connections in use during the job: 2
	// after it: 0 in use, 900 tokens left
}

// TryAcquire never waits: fall back to something cheaper instead.
func ExampleLimitSet_TryAcquire() {
	premium, _ := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 100},
	})
	defer premium.Close()
	ctx := context.Background()

	for _, want := range []int64{80, 80} {
		acq, err := premium.TryAcquire(ctx, concurry.Amounts{"tokens": want})
		if errors.Is(err, concurry.ErrWouldBlock) {
			fmt.Println("premium exhausted: using the basic service")
			continue
		}
		fmt.Println("premium call for", want, "tokens")
		_ = acq.Update(concurry.Amounts{"tokens": want})
		_ = acq.Release()
	}
	// Output:
	// premium call for 80 tokens
	// premium exhausted: using the basic service
}

// Do acquires, runs the function and releases, even when it fails.
func ExampleLimitSet_Do() {
	ls, _ := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: time.Second, Capacity: 10},
		concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 1000},
	})
	defer ls.Close()

	err := ls.Do(context.Background(), concurry.Amounts{"tokens": 200}, func(ctx context.Context, acq *concurry.Acquisition) error {
		return acq.Update(concurry.Amounts{"tokens": 120})
	})
	fmt.Println("err:", err)
	err = ls.Do(context.Background(), concurry.Amounts{"tokens": 200}, func(context.Context, *concurry.Acquisition) error {
		return nil // forgot to report usage
	})
	fmt.Println(errors.Is(err, concurry.ErrUsageNotReported))
	// Output:
	// err: <nil>
	// true
}

// Report less than requested: TokenBucket and GCRA give the difference back.
func ExampleAcquisition_Update() {
	ls, _ := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1000, Algorithm: concurry.GCRA},
	})
	defer ls.Close()
	ctx := context.Background()

	acq, _ := ls.Acquire(ctx, concurry.Amounts{"tokens": 1000}) // worst case
	_ = acq.Update(concurry.Amounts{"tokens": 250})             // what was really used
	_ = acq.Release()

	st, _ := ls.Stats(ctx)
	tok, _ := st.Limit("tokens")
	fmt.Println("available:", tok.Available, "refunded:", tok.Refunded)
	// Output:
	// available: 750 refunded: 750
}

// One set per region, each carrying its endpoint; the pool picks one per
// call and fails over when it is exhausted.
func ExampleLimitPool() {
	var sets []*concurry.LimitSet
	for _, region := range []string{"us-east-1", "eu-west-3", "ap-south-1"} {
		ls, _ := concurry.NewLimitSet(
			[]concurry.Limit{
				concurry.CallLimit{Window: time.Minute, Capacity: 500},
				concurry.RateLimit{Key: "input_tokens", Window: time.Minute, Capacity: 400_000},
			},
			concurry.WithConfig(map[string]any{"region": region, "endpoint": "https://" + region + ".example.com"}),
		)
		defer ls.Close()
		sets = append(sets, ls)
	}
	pool, _ := concurry.NewLimitPool(sets, concurry.WithBalancing(concurry.RoundRobin))

	ctx := context.Background()
	for range 4 {
		_ = pool.Do(ctx, concurry.Amounts{"input_tokens": 2000}, func(ctx context.Context, acq *concurry.Acquisition) error {
			fmt.Println("calling", acq.Config()["endpoint"])
			return acq.Update(concurry.Amounts{"input_tokens": 1500})
		})
	}
	st, _ := pool.Stats(ctx)
	fmt.Println("dispatched:", st.Dispatched)
	// Output:
	// calling https://us-east-1.example.com
	// calling https://eu-west-3.example.com
	// calling https://ap-south-1.example.com
	// calling https://us-east-1.example.com
	// dispatched: [2 1 1]
}

// With no limits configured, the same code runs and is never limited.
func ExampleNewLimitSet_empty() {
	ls, _ := concurry.NewLimitSet(nil)
	acq, err := ls.Acquire(context.Background(), concurry.Amounts{"tokens": 1_000_000})
	fmt.Println(err, acq.Update(concurry.Amounts{"tokens": 5}), acq.Release())
	// Output:
	// <nil> <nil> <nil>
}

// Real quotas have several windows per dimension: a request takes from each,
// and the tightest one decides.
func ExampleRateLimit_severalWindows() {
	ls, _ := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1_000},
		concurry.RateLimit{Key: "tokens", Window: 24 * time.Hour, Capacity: 5_000},
	})
	defer ls.Close()
	ctx := context.Background()
	_ = ls.Do(ctx, concurry.Amounts{"tokens": 800}, func(_ context.Context, acq *concurry.Acquisition) error {
		return acq.Update(concurry.Amounts{"tokens": 800})
	})
	_, err := ls.TryAcquire(ctx, concurry.Amounts{"tokens": 300})
	var refusal *concurry.RefusalError
	if errors.As(err, &refusal) {
		fmt.Printf("300 more now: refused by %q, fits again in about %v\n", refusal.Key, refusal.RetryAfter.Round(time.Minute))
	}
	st, _ := ls.Stats(ctx)
	for _, l := range st.Limits {
		fmt.Printf("per %v: %d of %d available\n", l.Window, l.Available, l.Capacity)
	}
	// Output:
	// 300 more now: refused by "tokens", fits again in about 6m0s
	// per 1h0m0s: 200 of 1000 available
	// per 24h0m0s: 4200 of 5000 available
}
