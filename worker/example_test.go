package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

// A single worker is an actor: its value is touched only by its own
// goroutine, one task at a time, in submission order.
func ExamplePool() {
	ctx := context.Background()
	type counter struct{ n int }
	p, err := worker.NewPool(ctx, func(context.Context, int) (*counter, error) { return &counter{}, nil }, worker.Options{})
	if err != nil {
		panic(err)
	}
	defer p.Stop(ctx)

	add := func(k int) worker.Task[*counter, int] {
		return func(_ context.Context, c *counter, _ concurry.Limiter) (int, error) {
			c.n += k // no lock needed
			return c.n, nil
		}
	}
	for k := 1; k <= 3; k++ {
		if _, err := worker.Submit(ctx, p, add(k)); err != nil {
			panic(err)
		}
	}
	total, err := worker.Run(ctx, p, add(0)) // the blocking form
	fmt.Println(total, err)
	// Output: 6 <nil>
}

// Four workers share one LimitSet: at most two hold a connection at once, and
// every call reports the tokens it really used.
func ExampleNewPool_sharedLimits() {
	ctx := context.Background()
	limits, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 10_000},
		concurry.ResourceLimit{Key: "connections", Capacity: 2},
	})
	if err != nil {
		panic(err)
	}
	newClient := func(_ context.Context, i int) (string, error) { return fmt.Sprintf("client-%d", i), nil }
	p, err := worker.NewPool(ctx, newClient, worker.Options{MaxWorkers: 4, Limiter: limits})
	if err != nil {
		panic(err)
	}
	defer p.Stop(ctx)

	var futures []*worker.Future[int]
	for _, prompt := range []string{"hello", "how are you", "bye"} {
		f, err := worker.Submit(ctx, p, func(ctx context.Context, client string, lim concurry.Limiter) (int, error) {
			used := 0
			err := lim.Do(ctx, concurry.Amounts{"tokens": 100}, func(_ context.Context, acq *concurry.Acquisition) error {
				used = 10 * len(strings.Fields(prompt)) // pretend client called the API
				return acq.Update(concurry.Amounts{"tokens": int64(used)})
			})
			return used, err
		})
		if err != nil {
			panic(err)
		}
		futures = append(futures, f)
	}
	used, err := worker.Gather(ctx, futures)
	fmt.Println(used, err)
	// Output: [10 30 10] <nil>
}

// A task that fails twice succeeds on its third attempt; only the errors
// RetryOn accepts are retried.
func ExampleOptions_retries() {
	ctx := context.Background()
	errOverloaded := errors.New("overloaded")
	p, err := worker.NewPool(ctx, func(context.Context, int) (*int, error) { return new(int), nil }, worker.Options{
		NumRetries:     3,
		RetryOn:        worker.RetryOnErrors(errOverloaded),
		RetryAlgorithm: worker.Exponential,
		RetryWait:      time.Millisecond, // then 2ms, 4ms
	})
	if err != nil {
		panic(err)
	}
	defer p.Stop(ctx)

	answer, err := worker.Run(ctx, p, func(_ context.Context, attempts *int, _ concurry.Limiter) (string, error) {
		if *attempts++; *attempts < 3 {
			return "", fmt.Errorf("attempt %d: %w", *attempts, errOverloaded)
		}
		return fmt.Sprintf("ok after %d attempts", *attempts), nil
	})
	fmt.Println(answer, err)
	fmt.Println("retries:", p.Stats().Workers[0].Retried)
	// Output:
	// ok after 3 attempts <nil>
	// retries: 2
}

// Gather returns results in the order of the futures, whichever finishes
// first.
func ExampleGather() {
	ctx := context.Background()
	p, err := worker.NewPool(ctx, func(_ context.Context, i int) (int, error) { return i, nil }, worker.Options{MaxWorkers: 3})
	if err != nil {
		panic(err)
	}
	defer p.Stop(ctx)

	var futures []*worker.Future[string]
	for _, word := range []string{"alpha", "beta", "gamma", "delta"} {
		f, err := worker.Submit(ctx, p, func(context.Context, int, concurry.Limiter) (string, error) {
			return strings.ToUpper(word), nil
		})
		if err != nil {
			panic(err)
		}
		futures = append(futures, f)
	}
	words, err := worker.Gather(ctx, futures, worker.WithProgress(func(done, total int) {
		if done == total {
			fmt.Println("all", total, "done")
		}
	}))
	fmt.Println(words, err)
	// Output:
	// all 4 done
	// [ALPHA BETA GAMMA DELTA] <nil>
}

// Tasks that need no value of their own — only limits, retries and a bounded
// number at once — need no factory: New makes the pool, Func the tasks.
func ExampleNew() {
	ctx := context.Background()
	calls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Second, Capacity: 100}})
	if err != nil {
		panic(err)
	}
	p, err := worker.New(ctx, worker.Options{MaxWorkers: 4, Limiter: calls})
	if err != nil {
		panic(err)
	}
	defer p.Stop(ctx)

	var futures []*worker.Future[int]
	for _, word := range []string{"one", "three", "five"} {
		f, err := worker.Submit(ctx, p, worker.Func(func(ctx context.Context, lim concurry.Limiter) (int, error) {
			return len(word), lim.Do(ctx, nil, func(context.Context, *concurry.Acquisition) error { return nil })
		}))
		if err != nil {
			panic(err)
		}
		futures = append(futures, f)
	}
	lengths, err := worker.Gather(ctx, futures)
	st, _ := calls.Stats(ctx)
	granted, _ := st.Limit(concurry.CallKey)
	fmt.Println(lengths, err, granted.Granted)
	// Output: [3 5 4] <nil> 3
}
