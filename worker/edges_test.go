package worker_test

// Edge tests of package worker, each against a sentence of DESIGN.md's
// "Worker" section or of the package's doc comments that it quotes.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend/unixsock"
	"github.com/concurry/concurry/internal/testutil"
	"github.com/concurry/concurry/worker"
)

// DESIGN: "Every task receives a Limiter, never nil: the shared
// LimitSet/LimitPool given in options; a private in-memory LimitSet per
// worker built from a []Limit; a per-worker LimitPool (WorkerIndex = the
// worker's index) from a []*LimitSet; or an empty set that always grants at
// no cost."
func TestEdgeEveryTaskGetsALimiterInEveryModeAndShape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sharedSet, _ := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 4}})
		a, _ := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 4}})
		b, _ := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 4}})
		sharedPool, _ := concurry.NewLimitPool([]*concurry.LimitSet{a, b})
		shapes := map[string]worker.Options{
			"none":        {},
			"sharedSet":   {Limiter: sharedSet},
			"sharedPool":  {Limiter: sharedPool},
			"limits":      {Limits: []concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}}},
			"emptyLimits": {Limits: []concurry.Limit{}},
			"limitSets":   {LimitSets: []*concurry.LimitSet{a, b}},
		}
		for name, o := range shapes {
			for _, mode := range []worker.Mode{worker.Goroutine, worker.Sync, worker.OnDemand} {
				o := o
				o.Mode = mode
				if mode != worker.Sync {
					o.MaxWorkers = 3
				}
				p := newPool(t, indexFactory, o)
				var fs []*worker.Future[int]
				for range 6 {
					fs = append(fs, submit(t, p, func(ctx context.Context, i int, lim concurry.Limiter) (int, error) {
						if lim == nil {
							return 0, errors.New("nil limiter")
						}
						var req concurry.Amounts // CallLimit/ResourceLimit requests: nil names none
						if name == "none" || name == "emptyLimits" {
							req = concurry.Amounts{"anything": 1 << 40} // the empty set grants any key, any amount
						}
						acq, err := lim.Acquire(ctx, req)
						if err != nil {
							return 0, fmt.Errorf("Acquire: %w", err)
						}
						if name == "none" || name == "emptyLimits" {
							if err := acq.Update(concurry.Amounts{"anything": 1 << 41}); err != nil {
								return 0, fmt.Errorf("empty set Update: %w", err)
							}
						}
						if err := acq.Release(); err != nil {
							return 0, fmt.Errorf("Release: %w", err)
						}
						if name == "limitSets" {
							lp, ok := worker.Unwrap(lim).(*concurry.LimitPool)
							if !ok {
								return 0, fmt.Errorf("LimitSets: Unwrap gave %T", worker.Unwrap(lim))
							}
							st, err := lp.Stats(ctx)
							if err != nil {
								return 0, err
							}
							if st.WorkerIndex != i {
								return 0, fmt.Errorf("worker %d's LimitPool has WorkerIndex %d", i, st.WorkerIndex)
							}
						}
						return i, nil
					}))
				}
				if _, err := worker.Gather(context.Background(), fs, worker.CollectErrors()); err != nil {
					t.Errorf("%s/%v: %v", name, mode, err)
				}
			}
		}
	})
}

// Doc of Options.LimitSets: "workers 0, 1, 2 of a pool over three sets take
// their first acquisitions from sets 0, 1, 2" — and with more workers than
// sets, the round robin of worker i starts at set i mod len(sets).
func TestEdgeLimitSetsRoundRobinStartsAtTheWorkerIndexModuloSets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sets []*concurry.LimitSet
		for k := range 2 {
			s, _ := concurry.NewLimitSet(nil, concurry.WithConfig(map[string]any{"n": k}))
			sets = append(sets, s)
		}
		p := newPool(t, indexFactory, worker.Options{MaxWorkers: 5, LimitSets: sets})
		var fs []*worker.Future[[2]int]
		for range 5 {
			fs = append(fs, submit(t, p, func(ctx context.Context, i int, lim concurry.Limiter) ([2]int, error) {
				acq, err := lim.Acquire(ctx, concurry.Amounts{"x": 1})
				if err != nil {
					return [2]int{}, err
				}
				defer acq.Release()
				return [2]int{i, acq.Config()["n"].(int)}, nil
			}))
		}
		got, err := worker.Gather(context.Background(), fs)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if g[1] != g[0]%2 {
				t.Errorf("worker %d took its first acquisition from set %d, want %d", g[0], g[1], g[0]%2)
			}
		}
	})
}

// DESIGN: "Submission queue: at most MaxQueuedTasks submitted-but-unfinished
// tasks per worker (default 100); Submit blocks (honouring its ctx) when that
// worker is full". Doc: "the one running included".
func TestEdgeDefaultQueueHoldsExactly100Unfinished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := newPool(t, indexFactory, worker.Options{})
		var fs []*worker.Future[int]
		for range worker.DefaultMaxQueuedTasks { // none of these may block
			fs = append(fs, submit(t, p, blocker(release)))
		}
		synctest.Wait()
		if st := p.Stats().Workers[0]; st.InFlight != 1 || st.Queued != 99 || st.QueueCapacity != 100 {
			t.Fatalf("stats %+v", st)
		}
		extra := goSubmit(context.Background(), p, index)
		synctest.Wait()
		if extra.done.Load() {
			t.Fatal("the 101st Submit returned while 100 tasks were unfinished")
		}
		// A Submit with a deadline gives up exactly at it, taking nothing.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if _, err := worker.Submit(ctx, p, index); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("Submit on a full worker = %v after %v", err, time.Since(start))
		}
		close(release)
		synctest.Wait()
		if !extra.done.Load() || extra.err != nil {
			t.Fatalf("the 101st Submit: done %v, %v", extra.done.Load(), extra.err)
		}
		fs = append(fs, extra.f)
		if _, err := worker.Gather(context.Background(), fs); err != nil {
			t.Fatal(err)
		}
		if st := p.Stats().Workers[0]; st.Dispatched != 101 || st.Completed != 101 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// The bound is exact at a freed slot: at the instant one of the 3 tasks
// ends, exactly one waiting Submit (the oldest) returns; the next still waits.
func TestEdgeAFreedSlotAdmitsExactlyTheOldestWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{MaxQueuedTasks: 3})
		for k := range 3 {
			submit(t, p, timed(time.Duration(k+1)*time.Second, k, nil)) // ends at 1s, 3s, 6s
		}
		w1 := goSubmit(context.Background(), p, index)
		synctest.Wait()
		w2 := goSubmit(context.Background(), p, index)
		synctest.Wait()
		time.Sleep(time.Second) // the first task ends now
		synctest.Wait()
		if !w1.done.Load() || w2.done.Load() {
			t.Fatalf("after the first slot freed: oldest done %v, newer done %v", w1.done.Load(), w2.done.Load())
		}
		time.Sleep(2*time.Second - 1)
		synctest.Wait()
		if w2.done.Load() {
			t.Fatal("the second waiter got in 1ns before the second slot freed")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if !w2.done.Load() {
			t.Fatal("the second waiter did not get in when the second slot freed")
		}
	})
}

// Interleaving: a blocked Submit whose deadline falls at the very instant the
// slot frees. Either Submit fails with the deadline and dispatches nothing,
// or it succeeds and its future completes (the task not running under an
// ended ctx); never a hang or a lost future.
func TestEdgeBlockedSubmitDeadlineAtTheInstantTheSlotFrees(t *testing.T) {
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			p := newPool(t, indexFactory, worker.Options{MaxQueuedTasks: 1})
			submit(t, p, timed(time.Second, 0, nil))
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			ran := false
			f, err := worker.Submit(ctx, p, func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
				ran = true
				return 1, ctx.Err()
			})
			synctest.Wait()
			st := p.Stats().Workers[0]
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) || st.Dispatched != 1 {
					t.Fatalf("Submit = %v, stats %+v", err, st)
				}
				return
			}
			// The task may start at the deadline's instant and then see its
			// ctx end at once (same instant): both outcomes are fine.
			_, ferr := f.Result(context.Background())
			if !ran && !errors.Is(ferr, context.DeadlineExceeded) {
				t.Fatalf("task not run, future = %v", ferr)
			}
			if st := p.Stats().Workers[0]; st.Dispatched != 2 || st.Completed+st.Failed != 2 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// DESIGN: "Worker[T] is an actor: one goroutine owns one T and runs its
// tasks in submission order" — retries included, on the same worker, before
// the next task.
func TestEdgeTasksRunInSubmissionOrderOneAtATimeRetriesIncluded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, err := worker.NewWorker(context.Background(), func(context.Context) (*[]int, error) { return new([]int), nil },
			worker.Options{NumRetries: 2, RetryWait: time.Millisecond, MaxQueuedTasks: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop(context.Background())
		var running atomic.Int32
		fails := map[int]int{}
		var fs []*worker.Future[int]
		for k := range 50 {
			fs = append(fs, submit(t, w, func(_ context.Context, log *[]int, _ concurry.Limiter) (int, error) {
				if running.Add(1) != 1 {
					t.Error("two tasks of one worker at once")
				}
				defer running.Add(-1)
				time.Sleep(time.Duration(50-k) * time.Millisecond)
				*log = append(*log, k)
				if k%7 == 3 && fails[k] < 2 {
					fails[k]++
					return 0, errFlaky
				}
				return k, nil
			}))
		}
		got, err := worker.Gather(context.Background(), fs)
		if err != nil {
			t.Fatal(err)
		}
		log := result(t, submit(t, w, func(_ context.Context, log *[]int, _ concurry.Limiter) ([]int, error) { return *log, nil }))
		var want []int
		for k := range 50 {
			want = append(want, k)
			if k%7 == 3 {
				want = append(want, k, k)
			}
			if got[k] != k {
				t.Fatalf("result %d = %d", k, got[k])
			}
		}
		if !slices.Equal(log, want) {
			t.Fatalf("run order %v, want %v", log, want)
		}
	})
}

// DESIGN: "Retries: NumRetries ... the last error or an error listing every
// rejected result comes back". Exactly NumRetries re-attempts, both for errors
// and for rejected results; the last attempt's value comes back with its error.
func TestEdgeExactlyNumRetriesReattempts(t *testing.T) {
	for _, n := range []int{0, 1, 6} {
		synctest.Test(t, func(t *testing.T) {
			p := newPool(t, indexFactory, worker.Options{NumRetries: n, RetryWait: time.Millisecond})
			attempts := 0
			v, err := worker.Run(context.Background(), p, func(context.Context, int, concurry.Limiter) (int, error) {
				attempts++
				return attempts, fmt.Errorf("attempt %d: %w", attempts, errFlaky)
			})
			if attempts != n+1 || v != n+1 || !errors.Is(err, errFlaky) || !strings.Contains(err.Error(), fmt.Sprintf("attempt %d", n+1)) {
				t.Fatalf("NumRetries %d: %d attempts, Run = %d, %v", n, attempts, v, err)
			}
			if st := p.Stats().Workers[0]; st.Retried != int64(n) || st.Failed != 1 {
				t.Fatalf("NumRetries %d: stats %+v", n, st)
			}
			attempts = 0
			v, err = worker.Run(context.Background(), p, func(context.Context, int, concurry.Limiter) (int, error) {
				attempts++
				return attempts * 10, nil
			}, worker.RetryUntil(func(r int) bool { return false }))
			var rej *worker.RejectedError[int]
			if attempts != n+1 || !errors.Is(err, worker.ErrRejected) || !errors.As(err, &rej) || len(rej.Results) != n+1 || v != (n+1)*10 {
				t.Fatalf("NumRetries %d RetryUntil: %d attempts, Run = %d, %v", n, attempts, v, err)
			}
			for k, r := range rej.Results {
				if r != (k+1)*10 {
					t.Fatalf("rejected results %v", rej.Results)
				}
			}
		})
	}
}

// Doc: "RetryMaxWait caps each wait (before jitter)"; RetryJitter 1 is full
// jitter, a wait w drawn from [0, w]. No wait exceeds min(cap, nominal), none
// is negative, for every algorithm.
func TestEdgeFullJitterWaitsNeverExceedTheirCapNorGoNegative(t *testing.T) {
	const b = time.Second
	const capW = 5*time.Second + 500*time.Millisecond
	for _, alg := range []worker.RetryAlgorithm{worker.Exponential, worker.Linear, worker.Fibonacci, worker.Fixed} {
		synctest.Test(t, func(t *testing.T) {
			at, _ := attemptTimes(t, worker.Options{NumRetries: 80, RetryAlgorithm: alg, RetryWait: b, RetryJitter: 1, RetryMaxWait: capW}, 1000)
			if len(at) != 81 {
				t.Fatalf("%v: %d attempts", alg, len(at))
			}
			fibs := []time.Duration{1, 2}
			below := 0
			for k := 1; k < len(at); k++ {
				var nominal time.Duration
				switch alg {
				case worker.Exponential:
					nominal = capW
					if k < 10 {
						nominal = b << (k - 1)
					}
				case worker.Linear:
					nominal = time.Duration(k) * b
				case worker.Fibonacci:
					for len(fibs) < k {
						fibs = append(fibs, min(fibs[len(fibs)-1]+fibs[len(fibs)-2], 1<<20))
					}
					nominal = fibs[k-1] * b // saturated at 2^20 s, far above the cap
				default:
					nominal = b
				}
				nominal = min(nominal, capW)
				w := at[k] - at[k-1]
				if w < 0 || w > nominal {
					t.Fatalf("%v: wait %d is %v, outside [0, %v]", alg, k, w, nominal)
				}
				if w < nominal/2 {
					below++
				}
			}
			if below < 10 {
				t.Fatalf("%v: only %d of 80 waits under half their nominal: not full jitter", alg, below)
			}
		})
	}
}

// DESIGN (Worker): "waits Exponential / Linear / Fibonacci / Fixed from
// RetryWait with full jitter, capped by RetryMaxWait". With Options left at
// their defaults, are the waits jittered?
func TestEdgeDefaultRetryWaitsAreFullyJittered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		at, _ := attemptTimes(t, worker.Options{NumRetries: 20, RetryAlgorithm: worker.Fixed}, 1000)
		distinct := map[time.Duration]bool{}
		for k := 1; k < len(at); k++ {
			distinct[at[k]-at[k-1]] = true
		}
		if len(distinct) == 1 {
			t.Fatalf("20 default retry waits are all exactly %v: no jitter by default", at[1]-at[0])
		}
	})
}

// Doc: "If ctx ends first, Result returns ctx's error; the task goes on."
// At the exact instant of the deadline; the task completes later with its value.
func TestEdgeResultHonoursItsContextAtTheExactInstant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, mode := range []worker.Mode{worker.Goroutine, worker.OnDemand} {
			p := newPool(t, indexFactory, worker.Options{Mode: mode})
			f := submit(t, p, timed(2*time.Second, 7, nil))
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			start := time.Now()
			v, err := f.Result(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) || v != 0 || time.Since(start) != time.Second {
				t.Fatalf("%v: Result = %d, %v after %v", mode, v, err, time.Since(start))
			}
			ctx, cancel = context.WithCancel(context.Background())
			go func() { time.Sleep(500 * time.Millisecond); cancel() }()
			if _, err := f.Result(ctx); !errors.Is(err, context.Canceled) || time.Since(start) != 1500*time.Millisecond {
				t.Fatalf("%v: Result with a cancelled ctx = %v after %v", mode, err, time.Since(start))
			}
			if v, err := f.Result(context.Background()); v != 7 || err != nil || time.Since(start) != 2*time.Second {
				t.Fatalf("%v: the task did not go on: %d, %v after %v", mode, v, err, time.Since(start))
			}
			// A completed future answers even under an ended ctx.
			if v, err := f.Result(ctx); v != 7 || err != nil {
				t.Fatalf("%v: Result of a completed future under an ended ctx = %d, %v", mode, v, err)
			}
		}
	})
}

// Like Future.Result, Gather and Wait on futures that have all completed
// should report them even when ctx has ended already: "If ctx ends first"
// does not hold — the futures completed first. The outcome must at least be
// deterministic.
func TestEdgeGatherAndWaitOnCompletedFuturesUnderAnEndedContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{MaxWorkers: 3})
		var fs []*worker.Future[int]
		for range 3 {
			fs = append(fs, submit(t, p, index))
		}
		if _, err := worker.Gather(context.Background(), fs); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		gatherErrs, waitErrs := 0, 0
		for range 200 {
			if got, err := worker.Gather(ctx, fs); err != nil {
				gatherErrs++
			} else if !slices.Equal(got, []int{0, 1, 2}) {
				t.Fatalf("Gather = %v", got)
			}
			if _, pending, err := worker.Wait(ctx, fs, worker.AllCompleted); err != nil || len(pending) != 0 {
				waitErrs++
			}
		}
		if gatherErrs != 0 || waitErrs != 0 {
			t.Fatalf("of 200 calls on 3 completed futures under an ended ctx, Gather failed %d times and Wait %d times", gatherErrs, waitErrs)
		}
	})
}

// Doc (WithProgress): "calls fn(done, total) ... (first for those already
// complete) ... If fn panics, Gather or Wait returns at once with the
// *PanicError."
func TestEdgeProgressCallbackThatPanicsEndsGatherAndWaitAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := spread(t, timed(0, 0, nil), timed(time.Second, 1, nil), timed(time.Hour, 2, nil))
		synctest.Wait()
		start := time.Now()
		calls := 0
		_, err := worker.Gather(context.Background(), fs, worker.WithProgress(func(done, total int) {
			calls++
			if done == 2 {
				panic("progress bug")
			}
		}))
		var pe *worker.PanicError
		if !errors.Is(err, worker.ErrPanic) || !errors.As(err, &pe) || pe.Value != "progress bug" || time.Since(start) != time.Second || calls != 2 {
			t.Fatalf("Gather = %v after %v, %d calls", err, time.Since(start), calls)
		}
		for _, until := range []worker.ReturnWhen{worker.AllCompleted, worker.FirstCompleted, worker.FirstError} {
			done, pending, err := worker.Wait(context.Background(), fs, until, worker.WithProgress(func(d, total int) {
				if d != 1 || total != 3 {
					t.Errorf("%v: progress %d/%d first", until, d, total)
				}
				panic(errFlaky)
			}))
			if !errors.Is(err, worker.ErrPanic) || !errors.Is(err, errFlaky) || time.Since(start) != time.Second {
				t.Fatalf("%v: Wait = %v after %v", until, err, time.Since(start))
			}
			if len(done)+len(pending) != 3 {
				t.Fatalf("%v: Wait lost futures: %d done, %d pending", until, len(done), len(pending))
			}
		}
	})
}

// DESIGN: "Wait (AllCompleted, FirstCompleted, FirstError)". FirstError
// returns at the first failure even when it is the last future by input
// order, and a failure already complete returns at once.
func TestEdgeWaitFirstErrorAtTheInstantOfTheFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := spread(t, timed(time.Hour, 0, nil), timed(time.Second, 1, nil), timed(2*time.Second, 2, errFlaky))
		start := time.Now()
		done, pending, err := worker.Wait(context.Background(), fs, worker.FirstError)
		if err != nil || time.Since(start) != 2*time.Second || !slices.Equal(indices(fs, done), []int{1, 2}) || !slices.Equal(indices(fs, pending), []int{0}) {
			t.Fatalf("Wait = %v, %v, %v after %v", indices(fs, done), indices(fs, pending), err, time.Since(start))
		}
		done, _, err = worker.Wait(context.Background(), fs, worker.FirstError)
		if err != nil || time.Since(start) != 2*time.Second || len(done) != 2 {
			t.Fatalf("second Wait = %v, %v after %v", indices(fs, done), err, time.Since(start))
		}
	})
}

// DESIGN: "A panic in a task becomes that task's error with its stack; the
// worker lives on" — in every mode, on the same value.
func TestEdgeAPanicBecomesTheErrorWithItsStackInEveryMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, mode := range []worker.Mode{worker.Goroutine, worker.Sync, worker.OnDemand} {
			for _, retries := range []int{0, 2} {
				p := newCounterPool(t, worker.Options{Mode: mode, NumRetries: retries})
				f := submit(t, p, probePanickingTask)
				_, err := f.Result(context.Background())
				var pe *worker.PanicError
				if !errors.Is(err, worker.ErrPanic) || !errors.As(err, &pe) || pe.Value != "probe boom" ||
					!strings.Contains(string(pe.Stack), "probePanickingTask") || !strings.Contains(err.Error(), "probePanickingTask") {
					t.Fatalf("%v/%d: err = %v", mode, retries, err)
				}
				if n := result(t, submit(t, p, counting)); mode != worker.OnDemand && n != 2 || mode == worker.OnDemand && n != 1 {
					t.Fatalf("%v/%d: the next task counted %d", mode, retries, n)
				}
				if st := p.Stats().Workers[0]; st.Retried != 0 || st.Failed != 1 {
					t.Fatalf("%v/%d: a panic was retried or not counted: %+v", mode, retries, st)
				}
			}
		}
	})
}

func probePanickingTask(_ context.Context, n *int, _ concurry.Limiter) (int, error) {
	*n++
	panic("probe boom")
}

// Doc (Options.RetryOn): "A RetryOn that panics means no retry; the task's
// error then holds the *PanicError"; RetryUntil that panics rejects the
// result. With retries left, neither crashes the worker, and a RetryOn that
// calls runtime.Goexit does not retry.
func TestEdgeCallbacksThatPanicOrGoexitAreContained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, mode := range []worker.Mode{worker.Goroutine, worker.OnDemand} {
			attempts := 0
			p := newCounterPool(t, worker.Options{Mode: mode, NumRetries: 3, RetryWait: time.Millisecond,
				RetryOn: func(err error) bool { panic("retryon bug") }})
			_, err := submit(t, p, func(context.Context, *int, concurry.Limiter) (int, error) { attempts++; return 0, errFlaky }).Result(context.Background())
			var pe *worker.PanicError
			if attempts != 1 || !errors.Is(err, errFlaky) || !errors.As(err, &pe) || pe.Value != "retryon bug" {
				t.Fatalf("%v: RetryOn panic: %d attempts, %v", mode, attempts, err)
			}
			attempts = 0
			q := newCounterPool(t, worker.Options{Mode: mode, NumRetries: 3, RetryWait: time.Millisecond,
				RetryOn: func(err error) bool { runtime.Goexit(); return true }})
			_, err = submit(t, q, func(context.Context, *int, concurry.Limiter) (int, error) { attempts++; return 0, errFlaky }).Result(context.Background())
			if attempts != 1 || !errors.Is(err, worker.ErrGoexit) {
				t.Fatalf("%v: RetryOn Goexit: %d attempts, %v", mode, attempts, err)
			}
			attempts = 0
			_, err = submit(t, q, func(context.Context, *int, concurry.Limiter) (int, error) { attempts++; return attempts, nil },
				worker.RetryUntil(func(r int) bool {
					if r < 3 {
						panic(fmt.Sprint("until bug ", r))
					}
					return true
				})).Result(context.Background())
			if err != nil || attempts != 3 {
				t.Fatalf("%v: RetryUntil panics then accepts: %d attempts, %v", mode, attempts, err)
			}
			if _, err := submit(t, q, counting).Result(context.Background()); err != nil {
				t.Fatalf("%v: worker dead after callback Goexit: %v", mode, err)
			}
		}
	})
}

// DESIGN: "Stop(ctx) drains or cancels, waits for every goroutine, and is
// idempotent"; Doc: "Submit fails with ErrStopped from now on, and so do
// Submit calls blocked on a full queue" — also the blocked OnDemand Submit,
// Run, and New/NewWorker pools. No goroutine outlives Stop.
func TestEdgeStopLeavesNoGoroutineAndEverySubmitFailsWithErrStopped(t *testing.T) {
	ign := goleak.IgnoreCurrent()
	for _, mode := range []worker.Mode{worker.Goroutine, worker.OnDemand, worker.Sync} {
		for _, drain := range []bool{false, true} {
			p, err := worker.New(context.Background(), worker.Options{Mode: mode, MaxWorkers: 2 - boolInt(mode == worker.Sync),
				MaxQueuedTasks: 1, NumRetries: 3, RetryWait: time.Hour, DrainOnStop: drain})
			if err != nil {
				t.Fatal(err)
			}
			var fs []*worker.Future[int]
			if mode != worker.Sync {
				release := make(chan struct{})
				for range 2 { // both workers busy, both queues full
					f, err := worker.Submit(context.Background(), p, worker.Func(func(ctx context.Context, _ concurry.Limiter) (int, error) {
						select {
						case <-release:
							return 1, nil
						case <-ctx.Done():
							return 0, context.Cause(ctx)
						}
					}))
					if err != nil {
						t.Fatal(err)
					}
					fs = append(fs, f)
				}
				blocked := make(chan error, 1)
				go func() {
					_, err := worker.Submit(context.Background(), p, worker.Func(func(context.Context, concurry.Limiter) (int, error) { return 2, nil }))
					blocked <- err
				}()
				time.Sleep(10 * time.Millisecond)
				close(release)
				if err := p.Stop(context.Background()); err != nil {
					t.Fatalf("%v/%v: Stop = %v", mode, drain, err)
				}
				// The blocked Submit either got a slot before Stop (draining
				// or not, its task then ran or failed with ErrStopped) or
				// failed with ErrStopped.
				if err := <-blocked; err != nil && !errors.Is(err, worker.ErrStopped) {
					t.Fatalf("%v/%v: blocked Submit = %v", mode, drain, err)
				}
			} else if err := p.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			for k, f := range fs {
				if !f.Completed() {
					t.Fatalf("%v/%v: future %d pending after Stop", mode, drain, k)
				}
			}
			for range 2 {
				if err := p.Stop(context.Background()); err != nil {
					t.Fatalf("%v/%v: second Stop = %v", mode, drain, err)
				}
			}
			if _, err := worker.Submit(context.Background(), p, worker.Func(func(context.Context, concurry.Limiter) (int, error) { return 0, nil })); !errors.Is(err, worker.ErrStopped) {
				t.Fatalf("%v/%v: Submit after Stop = %v", mode, drain, err)
			}
			if _, err := worker.Run(context.Background(), p, worker.Func(func(context.Context, concurry.Limiter) (int, error) { return 0, nil })); !errors.Is(err, worker.ErrStopped) {
				t.Fatalf("%v/%v: Run after Stop = %v", mode, drain, err)
			}
			goleak.VerifyNone(t, ign)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A blocked OnDemand Submit (MaxWorkers tasks alive) fails with ErrStopped
// at the instant Stop begins.
func TestEdgeStopFailsABlockedOnDemandSubmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{Mode: worker.OnDemand, MaxWorkers: 2})
		for range 2 {
			submit(t, p, timed(time.Hour, 0, nil))
		}
		s := goSubmit(context.Background(), p, index)
		synctest.Wait()
		if s.done.Load() {
			t.Fatal("Submit did not block with MaxWorkers tasks alive")
		}
		stopped := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		go func() { stopped <- p.Stop(ctx) }()
		synctest.Wait()
		if !s.done.Load() || !errors.Is(s.err, worker.ErrStopped) {
			t.Fatalf("blocked Submit after Stop began: done %v, %v", s.done.Load(), s.err)
		}
		// The tasks sleep ignoring ctx: Stop gives up at its deadline.
		if err := <-stopped; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop = %v", err)
		}
		time.Sleep(time.Hour)
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// Documented ranges of every option, at both ends.
func TestEdgeOptionRangesAtBothEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ok := map[string]worker.Options{
			"MaxWorkers 0 is 1":           {MaxWorkers: 0},
			"MaxQueuedTasks MaxInt":       {MaxQueuedTasks: math.MaxInt},
			"MaxQueuedTasks MinInt":       {MaxQueuedTasks: math.MinInt},
			"NumRetries MaxInt":           {NumRetries: math.MaxInt},
			"RetryWait max":               {RetryWait: math.MaxInt64},
			"RetryMaxWait max":            {RetryMaxWait: math.MaxInt64},
			"RetryJitter 0":               {RetryJitter: 0},
			"RetryJitter 1":               {RetryJitter: 1},
			"RetryJitter smallest":        {RetryJitter: math.SmallestNonzeroFloat64},
			"Sync with 1 worker":          {Mode: worker.Sync, MaxWorkers: 1},
			"Random balancing":            {Balancing: worker.Random, MaxWorkers: 2},
			"OnDemand LeastTotal":         {Mode: worker.OnDemand, Balancing: worker.LeastTotal, MaxWorkers: 2},
			"Fixed":                       {RetryAlgorithm: worker.Fixed},
			"Limits nil + LimitSets nil":  {Limits: nil, LimitSets: nil},
			"OnDemand max workers 0 is 1": {Mode: worker.OnDemand},
		}
		for name, o := range ok {
			p, err := worker.NewPool(context.Background(), indexFactory, o)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if v, err := worker.Run(context.Background(), p, index); err != nil || v < 0 || v >= len(p.Stats().Workers) {
				t.Errorf("%s: Run = %d, %v", name, v, err)
			}
			st := p.Stats()
			if name == "MaxWorkers 0 is 1" || name == "OnDemand max workers 0 is 1" {
				if len(st.Workers) != 1 {
					t.Errorf("%s: %d workers", name, len(st.Workers))
				}
			}
			if name == "MaxQueuedTasks MinInt" && st.Workers[0].QueueCapacity != -1 {
				t.Errorf("%s: QueueCapacity %d", name, st.Workers[0].QueueCapacity)
			}
			if name == "MaxQueuedTasks MaxInt" && st.Workers[0].QueueCapacity != math.MaxInt {
				t.Errorf("%s: QueueCapacity %d", name, st.Workers[0].QueueCapacity)
			}
			if err := p.Stop(context.Background()); err != nil {
				t.Errorf("%s: Stop = %v", name, err)
			}
		}
		bad := map[string]worker.Options{
			"MaxWorkers limit+1 Goroutine": {MaxWorkers: worker.MaxWorkersLimit + 1},
			"MaxWorkers MinInt":            {MaxWorkers: math.MinInt},
			"NumRetries MinInt":            {NumRetries: math.MinInt},
			"RetryWait -1ns":               {RetryWait: -1},
			"RetryMaxWait -1ns":            {RetryMaxWait: -1},
			"RetryJitter NaN":              {RetryJitter: math.NaN()},
			"RetryJitter +Inf":             {RetryJitter: math.Inf(1)},
			"RetryJitter just above 1":     {RetryJitter: math.Nextafter(1, 2)},
			"RetryJitter just below 0":     {RetryJitter: -math.SmallestNonzeroFloat64},
			"Sync MaxWorkers 2":            {Mode: worker.Sync, MaxWorkers: 2},
			"Balancing Random+1":           {Balancing: worker.Random + 1},
			"RetryAlgorithm Fixed+1":       {RetryAlgorithm: worker.Fixed + 1},
			"Mode OnDemand+1":              {Mode: worker.OnDemand + 1},
			"LimitSets with a nil":         {LimitSets: []*concurry.LimitSet{nil}},
		}
		for name, o := range bad {
			if p, err := worker.NewPool(context.Background(), indexFactory, o); !errors.Is(err, worker.ErrInvalidOptions) {
				t.Errorf("%s: err = %v, want ErrInvalidOptions", name, err)
				if p != nil {
					p.Stop(context.Background())
				}
			}
		}
		for name, o := range map[string]worker.Options{"MaxWorkers 2": {MaxWorkers: 2}, "Sync": {Mode: worker.Sync}, "OnDemand": {Mode: worker.OnDemand}} {
			if _, err := worker.NewWorker(context.Background(), func(context.Context) (int, error) { return 0, nil }, o); !errors.Is(err, worker.ErrInvalidOptions) {
				t.Errorf("NewWorker %s: %v", name, err)
			}
		}
	})
}

// A task submitted under a context that has already ended does not run.
// Doc: "if ctx ends before the task starts, the task does not run and its
// future fails with ctx's error" — here ctx ends while the task is queued.
func TestEdgeAQueuedTaskWhoseContextEndsDoesNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, drain := range []bool{false, true} {
			p := newPool(t, indexFactory, worker.Options{DrainOnStop: drain})
			submit(t, p, timed(2*time.Second, 0, nil))
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ran := false
			f, err := worker.Submit(ctx, p, func(context.Context, int, concurry.Limiter) (int, error) { ran = true; return 1, nil })
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Result(context.Background())
			cancel()
			if ran || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("drain %v: ran %v, err %v", drain, ran, err)
			}
		}
	})
}

// Doc (RetryAfterError): "the pool then waits for the longer of Wait and its
// own backoff". A negative or zero RetryAfter wait never makes a wait
// negative or shorter than the backoff.
func TestEdgeRetryAfterNegativeOrZeroDoesNotShortenTheBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{RetryJitter: worker.NoJitter, NumRetries: 2, RetryWait: time.Second, RetryAlgorithm: worker.Fixed})
		start := time.Now()
		var at []time.Duration
		_, err := worker.Run(context.Background(), p, func(context.Context, int, concurry.Limiter) (int, error) {
			at = append(at, time.Since(start))
			switch len(at) {
			case 1:
				return 0, worker.RetryAfter(-time.Hour, errFlaky)
			case 2:
				return 0, worker.RetryAfter(0, nil)
			}
			return 1, nil
		})
		if err != nil || !slices.Equal(at, []time.Duration{0, time.Second, 2 * time.Second}) {
			t.Fatalf("attempts at %v, %v", at, err)
		}
	})
}

// Gather with CollectErrors: "the error of every future, in input order, nil
// where it succeeded"; panics and Goexit of tasks are in it, matched by
// errors.Is.
func TestEdgeGatherCollectsPanicsAndGoexits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := spread(t,
			timed(3*time.Second, 0, nil),
			func(context.Context, int, concurry.Limiter) (int, error) { time.Sleep(time.Second); panic("p") },
			func(context.Context, int, concurry.Limiter) (int, error) {
				time.Sleep(2 * time.Second)
				runtime.Goexit()
				return 0, nil
			},
		)
		start := time.Now()
		got, err := worker.Gather(context.Background(), fs, worker.CollectErrors())
		var ge *worker.GatherError
		if !errors.As(err, &ge) || len(ge.Errors) != 3 || ge.Errors[0] != nil || !errors.Is(ge.Errors[1], worker.ErrPanic) ||
			!errors.Is(ge.Errors[2], worker.ErrGoexit) || !errors.Is(err, worker.ErrPanic) || !errors.Is(err, worker.ErrGoexit) ||
			time.Since(start) != 3*time.Second || got[0] != 0 {
			t.Fatalf("Gather = %v, %v after %v", got, err, time.Since(start))
		}
		// Without CollectErrors: the panic of future 1 once future 0 has succeeded, at 3s.
		start = time.Now()
		fs = spread(t,
			timed(3*time.Second, 5, nil),
			func(context.Context, int, concurry.Limiter) (int, error) { time.Sleep(time.Second); panic("p") },
			timed(time.Hour, 0, nil),
		)
		got, err = worker.Gather(context.Background(), fs)
		if !errors.Is(err, worker.ErrPanic) || time.Since(start) != 3*time.Second || got[0] != 5 {
			t.Fatalf("Gather = %v, %v after %v", got, err, time.Since(start))
		}
	})
}

// The cap of a wait holds with a cap smaller than RetryWait too: Doc
// "RetryMaxWait caps each wait (before jitter)".
func TestEdgeRetryMaxWaitBelowRetryWaitCapsTheFirstWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		at, _ := attemptTimes(t, worker.Options{RetryJitter: worker.NoJitter, NumRetries: 3, RetryWait: time.Minute, RetryMaxWait: time.Second, RetryAlgorithm: worker.Linear}, 1000)
		if !slices.Equal(at, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}) {
			t.Fatalf("attempts at %v", at)
		}
	})
}

// Doc (Options.DrainOnStop): "makes Stop run every queued task (retries
// included) before it returns". A task in a retry wait when Stop begins
// goes on retrying at its exact instants, and Stop returns when it ends.
func TestEdgeDrainingStopLetsARetryingTaskFinishAtItsInstants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{RetryJitter: worker.NoJitter, DrainOnStop: true, NumRetries: 3, RetryWait: time.Second})
		start := time.Now()
		var at []time.Duration
		f := submit(t, p, func(context.Context, int, concurry.Limiter) (int, error) {
			at = append(at, time.Since(start))
			if len(at) < 3 {
				return 0, errFlaky
			}
			return 9, nil
		})
		queued := submit(t, p, index)
		time.Sleep(500 * time.Millisecond)
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) != 3*time.Second || !slices.Equal(at, []time.Duration{0, time.Second, 3 * time.Second}) {
			t.Fatalf("Stop returned after %v; attempts at %v", time.Since(start), at)
		}
		if v, err := f.Result(context.Background()); v != 9 || err != nil {
			t.Fatalf("retrying task = %d, %v", v, err)
		}
		if _, err := queued.Result(context.Background()); err != nil {
			t.Fatalf("queued task = %v", err)
		}
	})
}

// Doc (Task): "one that calls runtime.Goexit ... fails with an error
// matching ErrGoexit. Either way the worker, and its value, live on"; doc
// (ErrGoexit): "The task is not retried" — with retries configured too.
func TestEdgeGoexitWithRetriesIsNotRetriedAndTheWorkerLivesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, mode := range []worker.Mode{worker.Goroutine, worker.OnDemand} {
			p := newCounterPool(t, worker.Options{Mode: mode, NumRetries: 3, RetryWait: time.Millisecond, RetryOn: func(error) bool { return true }})
			attempts := 0
			_, err := submit(t, p, func(ctx context.Context, n *int, lim concurry.Limiter) (int, error) {
				attempts++
				*n++
				runtime.Goexit()
				return 0, nil
			}).Result(context.Background())
			if !errors.Is(err, worker.ErrGoexit) || attempts != 1 {
				t.Fatalf("%v: %d attempts, %v", mode, attempts, err)
			}
			if n := result(t, submit(t, p, counting)); mode == worker.Goroutine && n != 2 || mode == worker.OnDemand && n != 1 {
				t.Fatalf("%v: count %d after Goexit", mode, n)
			}
			if st := p.Stats().Workers[0]; st.Retried != 0 || st.Failed != 1 || st.InFlight != 0 {
				t.Fatalf("%v: stats %+v", mode, st)
			}
		}
	})
}

// Sync mode runs one task at a time: a second Submit waits, honouring its
// ctx (failing at its deadline's instant), and fails with ErrStopped once
// Stop begins.
func TestEdgeSyncSubmitWaitingForTheRunningTaskHonoursCtxAndStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{Mode: worker.Sync})
		running := make(chan struct{})
		release := make(chan struct{})
		go worker.Submit(context.Background(), p, func(context.Context, int, concurry.Limiter) (int, error) {
			close(running)
			<-release
			return 0, nil
		})
		<-running
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if _, err := worker.Submit(ctx, p, index); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("Sync Submit behind a running task = %v after %v", err, time.Since(start))
		}
		s := make(chan error, 1)
		go func() { _, err := worker.Submit(context.Background(), p, index); s <- err }()
		synctest.Wait()
		stopped := make(chan error, 1)
		go func() { stopped <- p.Stop(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-s:
			if !errors.Is(err, worker.ErrStopped) {
				t.Fatalf("waiting Sync Submit after Stop = %v", err)
			}
		default:
			t.Fatal("a waiting Sync Submit still waits after Stop began")
		}
		close(release)
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
	})
}

// DESIGN: "Blocked ... first-come first-served" for the submission queue (doc
// of acquire: "waiting while there is none, first come first served"): a
// Submit arriving at the very instant a slot frees does not overtake the
// submitter already waiting for it, and the tasks run in that order.
func TestEdgeASubmitAtTheInstantASlotFreesDoesNotOvertakeTheWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, indexFactory, worker.Options{MaxQueuedTasks: 1})
		var order []string
		tag := func(s string) worker.Task[int, int] {
			return func(context.Context, int, concurry.Limiter) (int, error) { order = append(order, s); return 0, nil }
		}
		a := submit(t, p, timed(time.Second, 0, nil))
		w := goSubmit(context.Background(), p, tag("waiter"))
		synctest.Wait()
		n := make(chan *worker.Future[int], 1)
		go func() {
			time.Sleep(time.Second) // the same instant as the first task's end
			f, err := worker.Submit(context.Background(), p, tag("newcomer"))
			if err != nil {
				t.Error(err)
			}
			n <- f
		}()
		result(t, a)
		nf := <-n
		synctest.Wait()
		if !w.done.Load() || w.err != nil {
			t.Fatalf("waiter: %v", w.err)
		}
		result(t, w.f)
		result(t, nf)
		if !slices.Equal(order, []string{"waiter", "newcomer"}) {
			t.Fatalf("run order %v", order)
		}
	})
}

// DESIGN: "each attempt re-acquires its limits" and "a per-worker LimitPool
// (WorkerIndex = the worker's index) from a []*LimitSet" — on the
// cross-process backend: sets on a real Unix-socket server. What a failed or
// panicking attempt left acquired is back in the server before the next
// attempt, and worker i takes its first acquisition from set i.
func TestEdgeRetriesReacquireOnUnixsockSetsAndTheWorkerIndexHolds(t *testing.T) {
	path := testutil.SocketPath(t)
	srv, err := unixsock.Listen(path, unixsock.ServerOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client, err := unixsock.Dial(path, unixsock.Options{DisableAutoHost: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var sets []*concurry.LimitSet
	for k := range 2 {
		s, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
			concurry.WithName(fmt.Sprintf("probeE/%d", k)), concurry.WithBackend(client), concurry.WithConfig(map[string]any{"n": k}))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sets = append(sets, s)
	}
	p, err := worker.NewPool(context.Background(), indexFactory, worker.Options{MaxWorkers: 2, LimitSets: sets,
		NumRetries: 2, RetryWait: time.Millisecond, RetryOn: func(error) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	var fs []*worker.Future[string]
	for range 2 {
		attempt := 0
		fs = append(fs, submit(t, p, func(ctx context.Context, i int, lim concurry.Limiter) (string, error) {
			attempt++
			var acq *concurry.Acquisition
			var err error
			if attempt == 1 {
				acq, err = lim.Acquire(ctx, nil)
			} else {
				acq, err = lim.TryAcquire(ctx, nil) // fails if an earlier attempt still holds a unit
			}
			if err != nil {
				return "", fmt.Errorf("attempt %d: %w", attempt, err)
			}
			n := acq.Config()["n"]
			switch attempt {
			case 1:
				if n != i {
					return "", fmt.Errorf("worker %d's first acquisition came from set %v", i, n)
				}
				return "", errFlaky // leaves the unit held
			case 2:
				panic("holding a unit") // leaves it held again
			}
			return fmt.Sprintf("worker %d set %v attempt %d", i, n, attempt), nil
		}))
	}
	got, err := worker.Gather(context.Background(), fs, worker.CollectErrors())
	if err != nil {
		t.Fatalf("Gather = %v, %v", got, err)
	}
	for _, s := range sets {
		st, err := s.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := st.Limit("conn"); r.InUse != 0 {
			t.Fatalf("a unit is still held after the tasks: %+v", r)
		}
	}
}

// Doc (Pool.Limiter): "The sets the pool made are closed by Stop" — and only
// those: a shared Limiter and the LimitSets given stay usable. A Stop whose
// ctx has already ended returns ctx's error; the next Stop waits and closes.
func TestEdgeStopClosesOnlyTheSetsThePoolMade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared, _ := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}})
		given, _ := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}})
		pools := map[string]*worker.Pool[int]{}
		for name, o := range map[string]worker.Options{
			"shared":    {Limiter: shared},
			"limitSets": {LimitSets: []*concurry.LimitSet{given}},
			"limits":    {Limits: []concurry.Limit{concurry.ResourceLimit{Key: "c", Capacity: 1}}},
			"none":      {},
		} {
			p, err := worker.NewPool(context.Background(), indexFactory, o)
			if err != nil {
				t.Fatal(err)
			}
			pools[name] = p
			result(t, submit(t, p, index))
			ended, cancel := context.WithCancel(context.Background())
			cancel()
			if err := p.Stop(ended); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("%s: Stop(ended ctx) = %v", name, err)
			}
			if err := p.Stop(context.Background()); err != nil {
				t.Fatalf("%s: Stop = %v", name, err)
			}
		}
		for _, s := range []*concurry.LimitSet{shared, given} {
			a, err := s.TryAcquire(context.Background(), nil)
			if err != nil {
				t.Fatalf("a set the user gave was closed by Stop: %v", err)
			}
			a.Release()
		}
		for _, name := range []string{"limits", "none"} {
			if _, err := pools[name].Limiter(0).TryAcquire(context.Background(), nil); !errors.Is(err, concurry.ErrClosed) {
				t.Fatalf("%s: the pool's own set after Stop: %v, want ErrClosed", name, err)
			}
		}
	})
}

// Doc (ErrStopped): "reports a submission to a stopped pool, or a task
// cancelled because its pool was stopped before or while it ran". A running
// task that does the usual thing on cancellation — return ctx.Err(), or the
// error of lim.Acquire(ctx) — is a task cancelled because its pool was
// stopped while it ran: does its future's error match ErrStopped?
func TestEdgeARunningTaskCancelledByStopFailsWithErrStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conns, _ := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}})
		held, _ := conns.Acquire(context.Background(), nil)
		defer held.Release()
		tasks := map[string]worker.Task[int, int]{
			"returns ctx.Err()": func(ctx context.Context, _ int, _ concurry.Limiter) (int, error) {
				<-ctx.Done()
				return 0, ctx.Err()
			},
			"returns Acquire's error": func(ctx context.Context, _ int, lim concurry.Limiter) (int, error) {
				_, err := lim.Acquire(ctx, nil)
				return 0, err
			},
		}
		for name, task := range tasks {
			for _, mode := range []worker.Mode{worker.Goroutine, worker.OnDemand} {
				p, _ := worker.NewPool(context.Background(), indexFactory, worker.Options{Mode: mode, Limiter: conns})
				f := submit(t, p, task)
				synctest.Wait()
				if err := p.Stop(context.Background()); err != nil {
					t.Fatal(err)
				}
				if err := f.Err(); !errors.Is(err, worker.ErrStopped) {
					t.Errorf("%v, task %s: future error %v does not match ErrStopped", mode, name, err)
				}
			}
		}
	})
}

// Doc (Options.RetryJitter): "a wait w becomes a uniform draw from
// [w·(1−RetryJitter), w] ... 1 is full jitter" — at the top of the range
// too: a RetryWait of the longest Duration (or an Exponential wait that
// saturates to it) is still drawn at random.
func TestEdgeFullJitterAppliesToTheLongestWait(t *testing.T) {
	longest := 0
	for range 5 {
		synctest.Test(t, func(t *testing.T) {
			at, _ := attemptTimes(t, worker.Options{NumRetries: 1, RetryAlgorithm: worker.Fixed, RetryWait: math.MaxInt64, RetryJitter: 1}, 1)
			if len(at) != 2 {
				t.Fatalf("%d attempts", len(at))
			}
			t.Logf("wait %v (%d)", at[1], int64(at[1]))
			if at[1] >= math.MaxInt64/10*8 {
				longest++
			}
		})
	}
	if longest == 5 {
		t.Fatalf("5 full-jitter draws of the longest wait were all ≥ 80%% of it: not jittered")
	}
}

// DESIGN: "Submit blocks ... when that worker is full" and a task's end frees
// its slot however it ends: runtime.Goexit included, at the exact instant.
func TestEdgeAGoexitingTaskFreesItsSlotAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newCounterPool(t, worker.Options{MaxQueuedTasks: 1})
		gone := submit(t, p, func(context.Context, *int, concurry.Limiter) (int, error) {
			time.Sleep(time.Second)
			runtime.Goexit()
			return 0, nil
		})
		start := time.Now()
		f, err := worker.Submit(context.Background(), p, counting)
		if err != nil || time.Since(start) != time.Second {
			t.Fatalf("Submit behind a Goexit = %v after %v", err, time.Since(start))
		}
		if !errors.Is(gone.Err(), worker.ErrGoexit) {
			t.Fatalf("Goexit task: %v", gone.Err())
		}
		if n := result(t, f); n != 1 {
			t.Fatalf("count %d", n)
		}
	})
}
