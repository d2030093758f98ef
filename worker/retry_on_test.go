package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

// attempts runs task on a pool with opts and returns how many times it ran
// and the task's error.
func countAttempts(t *testing.T, opts worker.Options, task func(n int) error) (int, error) {
	t.Helper()
	p := newPool(t, indexFactory, opts)
	n := 0
	_, err := worker.Run(context.Background(), p, func(context.Context, int, concurry.Limiter) (int, error) {
		n++
		return n, task(n)
	})
	return n, err
}

func TestTheDefaultRetryOnSkipsErrorsThatCannotSucceed(t *testing.T) {
	capped, _ := concurry.NewLimitSet([]concurry.Limit{concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 10}})
	defer capped.Close()
	acquire := func(req concurry.Amounts) error {
		a, err := capped.TryAcquire(context.Background(), req)
		if err == nil {
			a.Release()
		}
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name     string
		err      func() error
		attempts int
	}{
		{"transient", func() error { return errFlaky }, 4},
		{"would block", func() error { return concurry.ErrWouldBlock }, 4},
		{"exceeds capacity", func() error { return acquire(concurry.Amounts{"tokens": 11}) }, 1},
		{"unknown key", func() error { return acquire(concurry.Amounts{"nope": 1}) }, 1},
		{"invalid request", func() error { return acquire(concurry.Amounts{"tokens": -1}) }, 1},
		{"panic", func() error { var p *struct{ n int }; return fmt.Errorf("%d", p.n) }, 1},
		{"a context error of the task's own", func() error { <-ctx.Done(); return fmt.Errorf("call: %w", ctx.Err()) }, 1},
		{"deadline", func() error { return context.DeadlineExceeded }, 1},
		{"invalid options", func() error { return worker.ErrInvalidOptions }, 1},
	} {
		synctest.Test(t, func(t *testing.T) {
			n, err := countAttempts(t, worker.Options{NumRetries: 3}, func(int) error { return c.err() })
			if n != c.attempts || err == nil {
				t.Errorf("%s: %d attempts (%v), want %d", c.name, n, err, c.attempts)
			}
			if worker.DefaultRetryOn(err) != (c.attempts > 1) {
				t.Errorf("%s: DefaultRetryOn(%v) = %v", c.name, err, !(c.attempts > 1))
			}
		})
	}
}

func TestAPanickingRetryOnStopsTheRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m map[string]func(error) bool
		retryOn := func(err error) bool { return m["x"](err) } // nil func call: a runtime error
		n, err := countAttempts(t, worker.Options{NumRetries: 3, RetryOn: retryOn}, func(int) error { return errFlaky })
		var pe *worker.PanicError
		if n != 1 || !errors.Is(err, errFlaky) || !errors.As(err, &pe) || !strings.Contains(string(pe.Stack), "TestAPanickingRetryOn") {
			t.Fatalf("%d attempts, err %v; want 1 with the task's error and RetryOn's panic", n, err)
		}
		if !strings.Contains(err.Error(), "RetryOn panicked") {
			t.Fatalf("message does not say where the panic was: %v", err)
		}
	})
}

func TestAPanickingRetryUntilRejectsTheResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, func(context.Context, int) (*int, error) { return new(int), nil }, worker.Options{NumRetries: 2})
		validate := worker.RetryUntil(func(r *int) bool { return *r > 2 }) // nil deref on nil results
		n := 0
		_, err := worker.Run(context.Background(), p, func(context.Context, *int, concurry.Limiter) (*int, error) {
			if n++; n < 3 {
				return nil, nil
			}
			return &n, nil
		}, validate)
		if err != nil || n != 3 {
			t.Fatalf("a later valid result: %v after %d attempts", err, n)
		}
		_, err = worker.Run(context.Background(), p, func(context.Context, *int, concurry.Limiter) (*int, error) { return nil, nil }, validate)
		var rej *worker.RejectedError[*int]
		if !errors.As(err, &rej) || len(rej.Results) != 3 || len(rej.Panics) != 3 || !errors.Is(err, worker.ErrPanic) {
			t.Fatalf("err = %v, want 3 rejected results with their panics", err)
		}
		if !strings.Contains(err.Error(), "RetryUntil panicked") || !strings.Contains(string(rej.Panics[0].Stack), "TestAPanickingRetryUntil") {
			t.Fatalf("message %v", err)
		}
		if got := result(t, submit(t, p, func(context.Context, *int, concurry.Limiter) (int, error) { return 7, nil })); got != 7 {
			t.Fatal("the worker did not live on")
		}
	})
}
