package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

// Run starts a provider on 127.0.0.1 (in the process alone with
// cfg.InMemory), sends it a batch of cfg.Prompts
// prompts, and returns what happened, with the provider's own accounting.
// It fails with ErrInvalidConfig for settings that can never run. When ctx
// ends first, or some prompt failed for good, it returns the summary so far
// and that error. Run stops every goroutine it started before it returns.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return Summary{}, err
	}
	// The tasks run under a context of Run's own, ended when Run returns:
	// the HTTP transport keeps contexts derived from a call's for a while.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var limits []concurry.Limit
	if !cfg.Naive {
		if limits, err = cfg.ClientLimits(); err != nil {
			return Summary{}, err
		}
	}
	prov, err := startProvider(cfg)
	if err != nil {
		return Summary{}, err
	}
	defer func() { _ = prov.Close(context.Background()) }()
	r := newRun(cfg, prov)
	var pool *concurry.LimitPool
	if !cfg.Naive {
		sets, p, err := r.newLimits(limits, prov)
		if err != nil {
			return Summary{}, err
		}
		defer closeSets(sets)
		if cfg.Observe != nil {
			if err := cfg.Observe(p); err != nil {
				return Summary{}, err
			}
		}
		pool = p
	}
	hc, closeIdle := r.httpStack(prov, pool)
	defer closeIdle()
	factory := func(context.Context, int) (*client, error) { return newClient(hc, sdkBaseURL, cfg.Stream), nil }
	wp, err := worker.NewPool(ctx, factory, r.poolOptions())
	if err != nil {
		return Summary{}, err
	}
	futures, wall, runErr := r.execute(ctx, wp)
	stopErr := wp.Stop(context.Background())
	s := r.summarize(prov.Report(), futures, wall)
	if pool != nil {
		s.bottlenecks(context.Background(), pool)
	}
	if runErr == nil && s.Failed > 0 {
		runErr = fmt.Errorf("%w: %d of %d; first: %s", ErrPromptsFailed, s.Failed, s.Prompts, s.Errors[0])
	}
	return s, errors.Join(runErr, stopErr)
}

// poolOptions returns the worker pool's options. Each worker's queue holds
// two tasks and the pool gives each task to the least busy worker, so the
// batch is handed out as workers free up and no worker is left with a long
// queue at the end. The limiter is in the workers' HTTP client, not in the
// pool. 429s that reach the SDK and transport errors are retried, after the
// longer of the provider's Retry-After and an exponential backoff with full
// jitter.
func (r *run) poolOptions() worker.Options {
	return worker.Options{
		MaxWorkers:     r.cfg.Workers,
		Balancing:      worker.LeastActive,
		MaxQueuedTasks: 2,
		NumRetries:     r.cfg.Retries,
		RetryOn:        retryable,
		RetryAlgorithm: worker.Exponential,
		RetryWait:      r.cfg.Minute / 50,
		RetryJitter:    1,
		RetryMaxWait:   r.cfg.Minute,
	}
}

// execute submits every prompt, waits for all of them, and returns their
// futures and the wall time. It returns ctx's error if ctx ended first.
func (r *run) execute(ctx context.Context, wp *worker.Pool[*client]) ([]*worker.Future[Result], time.Duration, error) {
	r.start = time.Now()
	stopProgress := r.startProgress()
	futures := make([]*worker.Future[Result], 0, len(r.prompts))
	var err error
	for _, p := range r.prompts {
		f, serr := worker.Submit(ctx, wp, r.task(p))
		if serr != nil {
			err = serr
			break
		}
		futures = append(futures, f)
	}
	// The tasks run under ctx, so they end soon after it: wait for them all.
	_, _ = worker.Gather(context.WithoutCancel(ctx), futures, worker.CollectErrors())
	wall := time.Since(r.start)
	stopProgress()
	if err == nil {
		err = ctx.Err()
	}
	if r.cfg.Progress != nil {
		done := 0
		for _, f := range futures {
			if f.Completed() {
				done++
			}
		}
		r.cfg.Progress(Progress{Done: done, Total: len(r.prompts), RateLimited: r.totalRateLimited(), Elapsed: wall, Final: true})
	}
	return futures, wall, err
}

// startProgress calls cfg.Progress every ProgressInterval until the returned
// function is called, which waits for the goroutine to end.
func (r *run) startProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.cfg.Progress(Progress{
					Done: int(r.completed.Load()), Total: len(r.prompts),
					RateLimited: r.totalRateLimited(), Elapsed: time.Since(r.start),
				})
			case <-done:
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
