package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/concurry/concurry"
)

// Pool runs tasks on workers, each of which owns one value of type T built by
// the pool's factory. In the default Goroutine mode each of MaxWorkers
// workers is an actor: one goroutine that runs the tasks given to it one at a
// time, in submission order, so T needs no locks. A pool of one worker
// (MaxWorkers 1, the default) is a single actor. See [Mode] for Sync and
// OnDemand.
//
// Submit tasks with [Submit] or [Run]; stop the pool with Stop, which every
// pool needs. If T implements io.Closer, the pool closes each value when its
// worker ends. A Pool is safe for concurrent use.
type Pool[T any] struct {
	core
	factory func(ctx context.Context, index int) (T, error)
	workers []*worker[T]  // Goroutine mode
	sync    *env[T]       // Sync mode
	syncSem chan struct{} // Sync mode: held while a task runs
	od      *onDemand     // OnDemand mode
}

// core is the part of a pool that does not depend on T.
type core struct {
	opts     Options
	lims     []concurry.Limiter   // per worker index
	owned    []*concurry.LimitSet // sets the pool made; closed by Stop
	counters []counters           // per worker index
	rr       atomic.Uint64        // RoundRobin cursor
	parkers  *sync.Pool           // spare parkers of the futures' Result calls; apart, as futures keep it

	slots    []taskSlot    // per worker index: the running task's context
	halting  atomic.Bool   // start no task; see halt
	closing  chan struct{} // closed when Stop begins
	stopped  atomic.Bool   // Stop has begun
	exited   chan struct{} // closed when stopping and no goroutine is left
	finalize sync.Once

	mu        sync.Mutex
	stopping  bool    // guarded by mu
	active    int     // guarded by mu; worker goroutines, OnDemand tasks, Sync calls
	closeErrs []error // guarded by mu; from closing values
}

// counters are the statistics of one worker index.
type counters struct {
	dispatched, completed, failed, retried atomic.Int64
}

// NewPool builds a pool. In Goroutine mode it starts MaxWorkers workers and
// calls factory once in each worker's goroutine, with ctx and the worker's
// index (0 to MaxWorkers−1); in Sync mode it calls factory once; in OnDemand
// mode factory is called for every task instead, with the task's context and
// the index of the worker slot it runs in. NewPool fails with
// ErrInvalidOptions for options that can never be right and, when a factory
// fails, with an error matching ErrFactory and the factory's errors, having
// stopped whatever it started.
func NewPool[T any](ctx context.Context, factory func(ctx context.Context, index int) (T, error), opts Options) (*Pool[T], error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if factory == nil {
		return nil, fmt.Errorf("%w: nil factory", ErrInvalidOptions)
	}
	lims, owned, err := o.limiters()
	if err != nil {
		return nil, err
	}
	p := &Pool[T]{factory: factory}
	p.core = core{
		opts: o, lims: lims, owned: owned, counters: make([]counters, o.MaxWorkers), slots: make([]taskSlot, o.MaxWorkers),
		closing: make(chan struct{}), exited: make(chan struct{}), parkers: new(sync.Pool),
	}
	switch o.Mode {
	case Sync:
		err = p.startSync(ctx)
	case OnDemand:
		p.od = newOnDemand(o.MaxWorkers)
	default:
		err = p.startWorkers(ctx)
	}
	if err != nil {
		p.opts.DrainOnStop = false
		_ = p.Stop(context.Background()) // every goroutine has its value or failed; none blocks
		return nil, err
	}
	return p, nil
}

func (p *Pool[T]) startSync(ctx context.Context) error {
	var t T
	err := contained(func() (err error) {
		t, err = build(ctx, p.factory, 0)
		return err
	})
	if err != nil {
		if !errors.Is(err, ErrFactory) { // the factory called runtime.Goexit
			err = wrapFactory(0, err)
		}
		return err
	}
	p.sync = &env[T]{c: &p.core, st: &p.counters[0], t: t}
	p.syncSem = make(chan struct{}, 1)
	return nil
}

// runSync runs c in the calling goroutine, after any Sync task running now.
func (p *Pool[T]) runSync(ctx context.Context, c job[T]) error {
	select {
	case p.syncSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.closing:
		return ErrStopped
	}
	defer func() { <-p.syncSem }()
	if !p.enter() {
		return ErrStopped
	}
	defer p.exit()
	p.sync.st.dispatched.Add(1)
	c.run(p.sync)
	return nil
}

// enter registers a goroutine or Sync call, unless the pool is stopping.
func (c *core) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return false
	}
	c.active++
	return true
}

func (c *core) exit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active--; c.active == 0 && c.stopping {
		close(c.exited)
	}
}

func (c *core) addCloseErr(err error) {
	if err != nil {
		c.mu.Lock()
		c.closeErrs = append(c.closeErrs, err)
		c.mu.Unlock()
	}
}

// Stop stops the pool: Submit fails with ErrStopped from now on, and so do
// Submit calls blocked on a full queue. Without Options.DrainOnStop, tasks
// not yet started fail with ErrStopped, and the contexts of running tasks and
// of retry waits end at once with cause ErrStopped; with it, every queued
// task runs to its end. Stop then waits until every goroutine of the pool has
// exited, by which time every future of the pool has completed, and returns
// the errors of closing the workers' values (a panic or runtime.Goexit in
// Close included), if any.
//
// If ctx ends first, Stop cancels whatever is left as if DrainOnStop were
// false — tasks not yet started fail with ErrStopped — and returns ctx's
// error without waiting further; call Stop again to wait. Stop is idempotent
// and safe for concurrent use.
func (p *Pool[T]) Stop(ctx context.Context) error {
	if p.beginStop() {
		for _, w := range p.workers {
			w.stop()
		}
	}
	select {
	case <-p.exited:
	default:
		select {
		case <-p.exited:
		case <-ctx.Done():
			p.halt()
			return ctx.Err()
		}
	}
	p.finalize.Do(func() {
		p.halt()
		closeAll(p.owned)
		if p.sync != nil {
			p.addCloseErr(contained(func() error { return closeValue(p.sync.t) }))
		}
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.closeErrs...)
}

// beginStop marks the pool stopping and reports whether this call did.
func (c *core) beginStop() bool {
	c.mu.Lock()
	first := !c.stopping
	if first {
		c.stopping = true
		c.stopped.Store(true)
		close(c.closing)
		if c.active == 0 {
			close(c.exited)
		}
	}
	c.mu.Unlock()
	if first && !c.opts.DrainOnStop {
		c.halt()
	}
	return first
}

// Limiter returns the limiter of the worker (or, in OnDemand mode, the worker
// slot) of index i, from 0 to MaxWorkers−1, which its tasks receive behind
// the wrapper [Unwrap] removes: Options.Limiter itself when given; a
// *concurry.LimitSet of Options.Limits private to that worker; a
// *concurry.LimitPool over Options.LimitSets whose round robin starts at i;
// or, with no limits, an empty *concurry.LimitSet shared by every worker. The
// sets the pool made are closed by Stop. Limiter panics when i is out of
// range. It is safe for concurrent use.
func (p *Pool[T]) Limiter(i int) concurry.Limiter {
	if i < 0 || i >= len(p.lims) {
		panic(fmt.Sprintf("concurry: worker index %d out of range [0, %d)", i, len(p.lims)))
	}
	return p.lims[i]
}
