package worker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

var errFlaky = errors.New("flaky")

// attemptTimes runs a task that fails failures times and records the instant
// of every attempt, relative to the start.
func attemptTimes(t *testing.T, opts worker.Options, failures int) ([]time.Duration, error) {
	t.Helper()
	p := newPool(t, indexFactory, opts)
	start := time.Now()
	var at []time.Duration
	_, err := worker.Run(context.Background(), p, func(context.Context, int, concurry.Limiter) (int, error) {
		at = append(at, time.Since(start))
		if len(at) <= failures {
			return 0, errFlaky
		}
		return 42, nil
	})
	return at, err
}

func TestRetryFailsTwiceThenSucceedsAfterExactExponentialWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const base = 100 * time.Millisecond
		p := newPool(t, indexFactory, worker.Options{RetryJitter: worker.NoJitter, NumRetries: 3, RetryWait: base})
		start := time.Now()
		var at []time.Duration
		got, err := worker.Run(context.Background(), p, func(context.Context, int, concurry.Limiter) (string, error) {
			at = append(at, time.Since(start))
			if len(at) <= 2 {
				return "", errFlaky
			}
			return "value", nil
		})
		if err != nil || got != "value" {
			t.Fatalf("Run = %q, %v", got, err)
		}
		// waits of base, then 2·base
		if want := []time.Duration{0, base, 3 * base}; !slices.Equal(at, want) {
			t.Fatalf("attempts at %v, want %v", at, want)
		}
		if st := p.Stats().Workers[0]; st.Retried != 2 || st.Completed != 1 || st.Failed != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestRetryAlgorithmsWaitAtExactInstants(t *testing.T) {
	const b = time.Second
	cases := []struct {
		alg   worker.RetryAlgorithm
		max   time.Duration
		waits []time.Duration
	}{
		{worker.Exponential, 0, []time.Duration{b, 2 * b, 4 * b, 8 * b, 16 * b}},
		{worker.Linear, 0, []time.Duration{b, 2 * b, 3 * b, 4 * b, 5 * b}},
		{worker.Fibonacci, 0, []time.Duration{b, 2 * b, 3 * b, 5 * b, 8 * b}},
		{worker.Fixed, 0, []time.Duration{b, b, b, b, b}},
		{worker.Exponential, 5 * b, []time.Duration{b, 2 * b, 4 * b, 5 * b, 5 * b}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%v/max%v", c.alg, c.max), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				at, err := attemptTimes(t, worker.Options{RetryJitter: worker.NoJitter, NumRetries: 5, RetryAlgorithm: c.alg, RetryWait: b, RetryMaxWait: c.max}, 99)
				if !errors.Is(err, errFlaky) {
					t.Fatalf("err = %v, want the last attempt's error", err)
				}
				var want []time.Duration
				var sum time.Duration
				want = append(want, 0)
				for _, w := range c.waits {
					sum += w
					want = append(want, sum)
				}
				if !slices.Equal(at, want) {
					t.Fatalf("attempts at %v, want %v", at, want)
				}
			})
		})
	}
}

func TestDefaultRetryWaitIsOneSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		at, err := attemptTimes(t, worker.Options{RetryJitter: worker.NoJitter, NumRetries: 1}, 1)
		if err != nil || !slices.Equal(at, []time.Duration{0, time.Second}) {
			t.Fatalf("attempts at %v, err %v", at, err)
		}
	})
}

func TestRetryJitterStaysWithinBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const b = time.Second
		at, err := attemptTimes(t, worker.Options{NumRetries: 200, RetryAlgorithm: worker.Fixed, RetryWait: b, RetryJitter: 0.25}, 200)
		if err != nil {
			t.Fatal(err)
		}
		distinct := map[time.Duration]bool{}
		for k := 1; k < len(at); k++ {
			w := at[k] - at[k-1]
			if w < b*3/4 || w > b {
				t.Fatalf("wait %d is %v, outside [750ms, 1s]", k, w)
			}
			distinct[w] = true
		}
		if len(distinct) < 100 {
			t.Fatalf("only %d distinct waits in 200: no jitter?", len(distinct))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		at, _ := attemptTimes(t, worker.Options{NumRetries: 50, RetryAlgorithm: worker.Linear, RetryWait: time.Second, RetryJitter: 1}, 50)
		for k := 1; k < len(at); k++ {
			if w := at[k] - at[k-1]; w < 0 || w > time.Duration(k)*time.Second {
				t.Fatalf("full jitter wait %d is %v", k, w)
			}
		}
	})
}

func TestRetryAfterSetsTheLeastWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{RetryJitter: worker.NoJitter, NumRetries: 3, RetryWait: time.Second, RetryMaxWait: 2 * time.Second})
		start := time.Now()
		var at []time.Duration
		_, err := worker.Run(context.Background(), p, func(context.Context, int, concurry.Limiter) (int, error) {
			at = append(at, time.Since(start))
			switch len(at) {
			case 1: // a 429 asking for 30s: beyond RetryMaxWait, honoured all the same
				return 0, worker.RetryAfter(30*time.Second, errFlaky)
			case 2: // asks for less than the backoff (2s): the backoff wins
				return 0, fmt.Errorf("wrapped: %w", worker.RetryAfter(time.Millisecond, errFlaky))
			}
			return 1, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []time.Duration{0, 30 * time.Second, 32 * time.Second}; !slices.Equal(at, want) {
			t.Fatalf("attempts at %v, want %v", at, want)
		}
	})
}

type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

func TestRetryOnDecidesWhichErrorsAreRetried(t *testing.T) {
	fatal := errors.New("fatal")
	run := func(t *testing.T, retryOn func(error) bool, fail error) int {
		p := newPool(t, indexFactory, worker.Options{NumRetries: 3, RetryWait: time.Millisecond, RetryOn: retryOn})
		n := 0
		_, err := worker.Run(context.Background(), p, func(context.Context, int, concurry.Limiter) (int, error) {
			n++
			return 0, fail
		})
		if !errors.Is(err, fail) {
			t.Fatalf("err = %v, want %v", err, fail)
		}
		return n
	}
	synctest.Test(t, func(t *testing.T) {
		if n := run(t, nil, fatal); n != 4 {
			t.Errorf("nil RetryOn: %d attempts, want 4", n)
		}
		if n := run(t, worker.RetryOnErrors(errFlaky), fmt.Errorf("w: %w", errFlaky)); n != 4 {
			t.Errorf("RetryOnErrors on a match: %d attempts", n)
		}
		if n := run(t, worker.RetryOnErrors(errFlaky), fatal); n != 1 {
			t.Errorf("RetryOnErrors on another error: %d attempts", n)
		}
		if n := run(t, worker.RetryOnType[*statusError](), fmt.Errorf("w: %w", &statusError{429})); n != 4 {
			t.Errorf("RetryOnType on a match: %d attempts", n)
		}
		if n := run(t, worker.RetryOnType[*statusError](), fatal); n != 1 {
			t.Errorf("RetryOnType on another error: %d attempts", n)
		}
	})
}

func TestRetryUntilRetriesRejectedResults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{NumRetries: 3, RetryWait: time.Second, RetryOn: func(error) bool { return false }})
		n := 0
		counting := func(context.Context, int, concurry.Limiter) (int, error) { n++; return n, nil }
		got, err := worker.Run(context.Background(), p, counting, worker.RetryUntil(func(r int) bool { return r >= 3 }))
		if err != nil || got != 3 {
			t.Fatalf("Run = %d, %v; want 3", got, err)
		}
		n = 0
		_, err = worker.Run(context.Background(), p, counting, worker.RetryUntil(func(r int) bool { return r > 10 }))
		var rej *worker.RejectedError[int]
		if !errors.Is(err, worker.ErrRejected) || !errors.As(err, &rej) || !slices.Equal(rej.Results, []int{1, 2, 3, 4}) {
			t.Fatalf("err = %v, want every rejected result listed", err)
		}
		if err.Error() != "concurry: 4 results rejected by RetryUntil: [1 2 3 4]" {
			t.Fatalf("message %q", err)
		}
	})
}

func TestRetryUntilEndsWithTheLastErrorWhenTheLastAttemptFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{NumRetries: 1})
		n := 0
		_, err := worker.Run(context.Background(), p, func(context.Context, int, concurry.Limiter) (int, error) {
			if n++; n == 2 {
				return 0, errFlaky
			}
			return n, nil
		}, worker.RetryUntil(func(int) bool { return false }))
		if !errors.Is(err, errFlaky) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestEachAttemptAcquiresItsLimitsAnew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.ResourceLimit{Key: "conn", Capacity: 1},
			concurry.CallLimit{Window: time.Hour, Capacity: 1000},
		})
		if err != nil {
			t.Fatal(err)
		}
		p := newPool(t, indexFactory, worker.Options{Limiter: shared, NumRetries: 2, RetryWait: time.Second})
		n := 0
		got, err := worker.Run(context.Background(), p, func(ctx context.Context, _ int, lim concurry.Limiter) (int, error) {
			n++
			// TryAcquire: a connection left held by the attempt before would block it.
			if _, err := lim.TryAcquire(ctx, nil); err != nil {
				return 0, fmt.Errorf("attempt %d: %w", n, err)
			}
			if n < 3 {
				return 0, errFlaky // leaves the acquisition unreleased
			}
			return n, nil
		})
		if err != nil || got != 3 {
			t.Fatalf("Run = %d, %v", got, err)
		}
		st, _ := shared.Stats(context.Background())
		if c, _ := st.Limit(concurry.CallKey); c.Granted != 3 {
			t.Fatalf("call limit granted %d, want one per attempt (3)", c.Granted)
		}
		if r, _ := st.Limit("conn"); r.InUse != 0 {
			t.Fatalf("%d connections still held after the task", r.InUse)
		}
	})
}

func TestAPanickingAttemptReleasesItsLimits(t *testing.T) {
	p := newPool(t, indexFactory, worker.Options{Limits: []concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}}})
	_, err := worker.Run(context.Background(), p, func(ctx context.Context, _ int, lim concurry.Limiter) (int, error) {
		if _, err := lim.Acquire(ctx, nil); err != nil {
			return 0, err
		}
		panic("bug")
	})
	if !errors.Is(err, worker.ErrPanic) {
		t.Fatalf("err = %v", err)
	}
	_, err = worker.Run(context.Background(), p, func(ctx context.Context, _ int, lim concurry.Limiter) (int, error) {
		a, err := lim.TryAcquire(ctx, nil)
		if err != nil {
			return 0, err
		}
		return 1, a.Release()
	})
	if err != nil {
		t.Fatalf("the connection was not released after the panic: %v", err)
	}
}

func TestRetriesStayOnTheSameWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{MaxWorkers: 4, NumRetries: 5, RetryWait: time.Second})
		var futures []*worker.Future[[]int]
		for range 8 {
			var seen []int
			futures = append(futures, submit(t, p, func(_ context.Context, i int, _ concurry.Limiter) ([]int, error) {
				if seen = append(seen, i); len(seen) < 4 {
					return nil, errFlaky
				}
				return seen, nil
			}))
		}
		all, err := worker.Gather(context.Background(), futures)
		if err != nil {
			t.Fatal(err)
		}
		for k, seen := range all {
			if want := []int{k % 4, k % 4, k % 4, k % 4}; !slices.Equal(seen, want) {
				t.Fatalf("task %d ran on workers %v, want %v", k, seen, want)
			}
		}
	})
}

func TestHugeBackoffsSaturateAndAreCapped(t *testing.T) {
	for _, alg := range []worker.RetryAlgorithm{worker.Exponential, worker.Linear, worker.Fibonacci} {
		synctest.Test(t, func(t *testing.T) {
			at, _ := attemptTimes(t, worker.Options{RetryJitter: worker.NoJitter, NumRetries: 100, RetryAlgorithm: alg, RetryWait: 1 << 40, RetryMaxWait: time.Hour}, 100)
			if len(at) != 101 {
				t.Fatalf("%v: %d attempts", alg, len(at))
			}
			for k := 1; k < len(at); k++ {
				if w := at[k] - at[k-1]; w <= 0 || w > time.Hour || (k > 30 && w != time.Hour) {
					t.Fatalf("%v: wait %d is %v", alg, k, w)
				}
			}
		})
	}
}
