package concurry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/concurry/concurry/backend"
)

// LimitPool spreads acquisitions over several LimitSets, such as one per
// region or account, and fails over between them: TryAcquire tries the set it
// picks, then the others in order, and takes the first that can grant;
// Acquire does the same, then waits on every set at once and takes whichever
// grants first (only one does). The acquisition carries the granting set's
// config, so the caller knows which endpoint to call.
//
// RoundRobin picking starts at the pool's worker index; Random picks
// uniformly. A LimitPool is safe for concurrent use.
type LimitPool struct {
	sets        []*LimitSet
	balancing   Balancing
	workerIndex int
	next        atomic.Uint64
	dispatched  []atomic.Int64
	hooks       *Hooks // nil when none were given
}

// NewLimitPool returns a pool over sets, which must not be empty or hold nil.
// It fails with ErrInvalidLimit for no sets, a nil set, an unknown balancing
// or a negative worker index.
func NewLimitPool(sets []*LimitSet, opts ...PoolOption) (*LimitPool, error) {
	var o poolOptions
	for _, opt := range opts {
		opt.applyPool(&o)
	}
	if len(sets) == 0 {
		return nil, fmt.Errorf("%w: a LimitPool needs at least one LimitSet", ErrInvalidLimit)
	}
	for i, s := range sets {
		if s == nil {
			return nil, fmt.Errorf("%w: LimitSet %d of the pool is nil", ErrInvalidLimit, i)
		}
	}
	if o.balancing > Random {
		return nil, fmt.Errorf("%w: unknown balancing %v", ErrInvalidLimit, o.balancing)
	}
	if o.workerIndex < 0 {
		return nil, fmt.Errorf("%w: negative worker index %d", ErrInvalidLimit, o.workerIndex)
	}
	return &LimitPool{
		sets:        append([]*LimitSet(nil), sets...),
		balancing:   o.balancing,
		workerIndex: o.workerIndex,
		dispatched:  make([]atomic.Int64, len(sets)),
		hooks:       o.hooks,
	}, nil
}

// Len returns the number of sets in the pool.
func (p *LimitPool) Len() int { return len(p.sets) }

// At returns the i-th set of the pool; it panics when i is out of range.
func (p *LimitPool) At(i int) *LimitSet { return p.sets[i] }

func (p *LimitPool) pick() int {
	n := len(p.sets)
	if p.balancing == Random {
		return rand.IntN(n)
	}
	return int((uint64(p.workerIndex) + p.next.Add(1) - 1) % uint64(n))
}

// TryAcquire tries the set the balancing picks, then the others in order,
// and returns the first acquisition granted. It fails with ErrWouldBlock when
// no set can grant now, or with the first set's error when every set refuses
// the request for another reason (such as ErrUnknownKey).
func (p *LimitPool) TryAcquire(ctx context.Context, req Amounts) (*Acquisition, error) {
	a, _, err := p.tryAll(ctx, req)
	return p.outcome(req, a, err, 0)
}

// outcome calls the pool's Granted or Refused hook for the result of one
// acquisition from the pool, and returns it.
func (p *LimitPool) outcome(req Amounts, a *Acquisition, err error, waited time.Duration) (*Acquisition, error) {
	h := p.hooks
	switch {
	case h == nil:
	case err == nil && h.Granted != nil:
		if !callGranted(h.Granted, GrantInfo{Set: a.Set(), Request: req, Waited: waited}, a) {
			return nil, ErrReleased // unreachable: the goroutine has exited
		}
	case err != nil && h.Refused != nil:
		info := RefusalInfo{Request: req, Cause: CauseOf(err), Err: err}
		var r *RefusalError
		if errors.As(err, &r) {
			info.Key, info.RetryAfter = r.Key, r.RetryAfter
		}
		callHook(h.Refused, info)
	}
	return a, err
}

// Acquire makes the pass of TryAcquire, and when no set can grant now waits
// on every set that could later and returns whichever grants first. It fails
// at once when no set can meet ctx's deadline.
func (p *LimitPool) Acquire(ctx context.Context, req Amounts) (*Acquisition, error) {
	a, blocked, err := p.tryAll(ctx, req)
	if a != nil || len(blocked) == 0 {
		return p.outcome(req, a, err, 0)
	}
	h := p.hooks
	if h != nil && h.WaitStart != nil {
		callHook(h.WaitStart, WaitInfo{Request: req})
	}
	var start time.Time
	if h != nil {
		start = time.Now()
	}
	a, err = p.waitAny(ctx, req, blocked)
	var waited time.Duration
	if h != nil {
		waited = time.Since(start)
		if h.WaitDone != nil {
			callHook(h.WaitDone, WaitInfo{Request: req, Waited: waited, Err: err})
		}
	}
	return p.outcome(req, a, err, waited)
}

// Do acquires req from the pool, runs fn and releases, as LimitSet.Do does.
func (p *LimitPool) Do(ctx context.Context, req Amounts, fn func(context.Context, *Acquisition) error) error {
	return do(ctx, p, req, fn)
}

// tryAll makes one non-blocking pass and returns an acquisition, or the
// indices of the sets that would block.
func (p *LimitPool) tryAll(ctx context.Context, req Amounts) (*Acquisition, []int, error) {
	start, n := p.pick(), len(p.sets)
	var blocked []int
	var first error
	for k := range n {
		i := (start + k) % n
		a := &Acquisition{set: p.sets[i]}
		err := p.sets[i].acquire(ctx, req, false, nil, a)
		switch {
		case err == nil:
			p.dispatched[i].Add(1)
			return a, nil, nil
		case errors.Is(err, ErrWouldBlock):
			blocked = append(blocked, i)
		case ctx.Err() != nil:
			return nil, nil, err
		case first == nil:
			first = err
		}
	}
	if blocked != nil {
		return nil, blocked, ErrWouldBlock
	}
	return nil, nil, first
}

type poolResult struct {
	i   int
	a   *Acquisition
	err error
}

// waitAny waits on the given sets at once; one claim makes sure at most one
// of them grants.
func (p *LimitPool) waitAny(ctx context.Context, req Amounts, sets []int) (*Acquisition, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	claim := new(backend.Claim)
	results := make(chan poolResult, len(sets))
	for _, i := range sets {
		go func() {
			a := &Acquisition{set: p.sets[i]}
			err := p.sets[i].acquire(ctx, req, true, claim, a)
			results <- poolResult{i, a, err}
		}()
	}
	var won *Acquisition
	var errs []error
	for range sets {
		r := <-results
		if r.err == nil {
			won = r.a
			p.dispatched[r.i].Add(1)
			cancel() // the others lose the claim; stop their waits
			continue
		}
		if !errors.Is(r.err, backend.ErrClaimed) && !errors.Is(r.err, context.Canceled) {
			errs = append(errs, r.err)
		}
	}
	if won != nil {
		return won, nil
	}
	if err := backend.ContextError(ctx); err != nil && len(errs) == 0 {
		return nil, err
	}
	return nil, errors.Join(errs...)
}

// PoolStats describes a LimitPool at an instant.
type PoolStats struct {
	Balancing   Balancing
	WorkerIndex int
	Dispatched  []int64 // acquisitions granted per set
	Sets        []Stats // each set's stats, in pool order
}

// Stats returns the pool's dispatch counts and every set's stats.
func (p *LimitPool) Stats(ctx context.Context) (PoolStats, error) {
	st := PoolStats{Balancing: p.balancing, WorkerIndex: p.workerIndex}
	for i, s := range p.sets {
		ss, err := s.Stats(ctx)
		if err != nil {
			return PoolStats{}, err
		}
		st.Dispatched = append(st.Dispatched, p.dispatched[i].Load())
		st.Sets = append(st.Sets, ss)
	}
	return st, nil
}
