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

// timed returns a task that returns v, or fails with err when it is not nil,
// after d.
func timed(d time.Duration, v int, err error) worker.Task[int, int] {
	return func(context.Context, int, concurry.Limiter) (int, error) {
		time.Sleep(d)
		return v, err
	}
}

// spread submits each task to its own OnDemand slot, so they run at once.
func spread(t *testing.T, tasks ...worker.Task[int, int]) []*worker.Future[int] {
	p := newPool(t, indexFactory, worker.Options{Mode: worker.OnDemand, MaxWorkers: len(tasks)})
	var fs []*worker.Future[int]
	for _, task := range tasks {
		fs = append(fs, submit(t, p, task))
	}
	return fs
}

func TestGatherReturnsResultsInInputOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := spread(t, timed(3*time.Second, 0, nil), timed(time.Second, 1, nil), timed(2*time.Second, 2, nil))
		var progress []string
		start := time.Now()
		got, err := worker.Gather(context.Background(), fs, worker.WithProgress(func(done, total int) {
			progress = append(progress, fmt.Sprintf("%d/%d@%v", done, total, time.Since(start)))
		}))
		if err != nil || !slices.Equal(got, []int{0, 1, 2}) {
			t.Fatalf("Gather = %v, %v", got, err)
		}
		if want := []string{"1/3@1s", "2/3@2s", "3/3@3s"}; !slices.Equal(progress, want) {
			t.Fatalf("progress %v, want %v", progress, want)
		}
	})
}

func TestGatherReturnsTheFirstErrorByInputOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		early, late := errors.New("early in time, later in input"), errors.New("late in time, first in input")
		fs := spread(t,
			timed(time.Second, 0, nil),
			timed(3*time.Second, 1, late),
			timed(time.Second, 2, early),
			timed(time.Hour, 3, nil), // not waited for
		)
		start := time.Now()
		got, err := worker.Gather(context.Background(), fs)
		if err != late || time.Since(start) != 3*time.Second {
			t.Fatalf("Gather error %v after %v, want %v after 3s", err, time.Since(start), late)
		}
		if got[0] != 0 {
			t.Fatalf("results gathered so far: %v", got)
		}
	})
}

func TestGatherCollectsEveryError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e1, e3 := errors.New("one"), errors.New("three")
		fs := spread(t, timed(time.Second, 0, nil), timed(time.Second, 1, e1), timed(time.Second, 2, nil), timed(time.Second, 3, e3))
		got, err := worker.Gather(context.Background(), fs, worker.CollectErrors())
		var ge *worker.GatherError
		if !errors.As(err, &ge) || !errors.Is(err, e1) || !errors.Is(err, e3) {
			t.Fatalf("err = %v", err)
		}
		if !slices.Equal(ge.Errors, []error{nil, e1, nil, e3}) || got[2] != 2 {
			t.Fatalf("errors %v, results %v", ge.Errors, got)
		}
		if msg := ge.Error(); msg != "concurry: 2 of 4 tasks failed; first, task 1: one" {
			t.Fatalf("message %q", msg)
		}
	})
}

func TestGatherStopsWhenItsContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := spread(t, timed(time.Second, 7, nil), timed(time.Hour, 8, nil))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		got, err := worker.Gather(ctx, fs)
		if !errors.Is(err, context.DeadlineExceeded) || !slices.Equal(got, []int{7, 0}) {
			t.Fatalf("Gather = %v, %v", got, err)
		}
	})
}

func TestWait(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name       string
		until      worker.ReturnWhen
		tasks      []worker.Task[int, int]
		after      time.Duration
		done, pend []int
	}{
		{"AllCompleted", worker.AllCompleted, []worker.Task[int, int]{timed(2*time.Second, 0, nil), timed(time.Second, 1, boom)}, 2 * time.Second, []int{0, 1}, nil},
		{"FirstCompleted", worker.FirstCompleted, []worker.Task[int, int]{timed(2*time.Second, 0, nil), timed(time.Second, 1, nil), timed(3*time.Second, 2, nil)}, time.Second, []int{1}, []int{0, 2}},
		{"FirstError", worker.FirstError, []worker.Task[int, int]{timed(time.Second, 0, nil), timed(2*time.Second, 1, boom), timed(time.Hour, 2, nil)}, 2 * time.Second, []int{0, 1}, []int{2}},
		{"FirstErrorWithoutError", worker.FirstError, []worker.Task[int, int]{timed(time.Second, 0, nil), timed(3*time.Second, 1, nil)}, 3 * time.Second, []int{0, 1}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fs := spread(t, c.tasks...)
				start := time.Now()
				done, pending, err := worker.Wait(context.Background(), fs, c.until)
				if err != nil || time.Since(start) != c.after {
					t.Fatalf("Wait: %v after %v, want %v", err, time.Since(start), c.after)
				}
				if got := indices(fs, done); !slices.Equal(got, c.done) {
					t.Fatalf("done %v, want %v", got, c.done)
				}
				if got := indices(fs, pending); !slices.Equal(got, c.pend) {
					t.Fatalf("pending %v, want %v", got, c.pend)
				}
			})
		})
	}
}

func TestWaitReturnsWhatIsDoneWhenItsContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := spread(t, timed(time.Hour, 0, nil), timed(time.Second, 1, nil))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		calls := 0
		done, pending, err := worker.Wait(ctx, fs, worker.AllCompleted, worker.WithProgress(func(d, total int) {
			calls++
			if d != 1 || total != 2 {
				t.Errorf("progress %d/%d", d, total)
			}
		}))
		if !errors.Is(err, context.DeadlineExceeded) || !slices.Equal(indices(fs, done), []int{1}) || !slices.Equal(indices(fs, pending), []int{0}) || calls != 1 {
			t.Fatalf("Wait = %v, %v, %v; %d progress calls", indices(fs, done), indices(fs, pending), err, calls)
		}
		// Futures left pending are no longer watched; a later Wait still works.
		if _, pending, err := worker.Wait(context.Background(), fs, worker.AllCompleted); err != nil || pending != nil {
			t.Fatalf("second Wait: %v, %v", pending, err)
		}
	})
}

func TestWaitAndGatherOnNoFutures(t *testing.T) {
	done, pending, err := worker.Wait[int](context.Background(), nil, worker.FirstError)
	if done != nil || pending != nil || err != nil {
		t.Fatal("Wait on nothing")
	}
	if got, err := worker.Gather[int](context.Background(), nil); len(got) != 0 || err != nil {
		t.Fatal("Gather on nothing")
	}
}

func TestFutureAccessors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		fs := spread(t, timed(time.Second, 1, boom))
		f := fs[0]
		if f.Completed() || f.Err() != nil {
			t.Fatal("pending future looks complete")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if _, err := f.Result(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Result with a short ctx: %v", err)
		}
		<-f.Done()
		if !f.Completed() || f.Err() != boom {
			t.Fatalf("completed future: %v", f.Err())
		}
		if v, err := f.Result(context.Background()); v != 1 || err != boom {
			t.Fatalf("Result = %v, %v", v, err)
		}
	})
}

func indices(all, some []*worker.Future[int]) []int {
	var out []int
	for _, f := range some {
		out = append(out, slices.Index(all, f))
	}
	return out
}
