package concurry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
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
// A set that loses the pool's claim takes nothing, on every backend. The
// sets of one backend share the claim where their grants are made (in
// memory, on one Unix-socket server, on Redis); when the sets are of
// several backends (several Unix-socket servers, or memory and a server),
// a Unix-socket set asks its server only whether the request fits, takes
// the claim, and then acquires, as a Redis set always does: one round trip
// more for the set that wins, and the winner may wait again if another
// request took the units in between (no other set of the pool grants
// meanwhile).
//
// In the first pass each set's try gets its share of ctx's remaining
// time, so that a set whose backend stalls does not keep the others from
// being tried: one that does not answer within its share counts as blocked,
// and Acquire waits on it with the others.
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
// and returns the first acquisition granted. When no set can grant now it
// fails with the refusal of the set that could grant soonest, which matches
// ErrWouldBlock and carries that set's facts (a [RefusalError]: its key and
// RetryAfter; RetryAfter 0 only when every set waits for a release). When
// every set refuses the request for another reason (such as ErrUnknownKey)
// it fails with the first set's error.
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
// at once when no set can meet ctx's deadline, with an error that matches
// context.DeadlineExceeded and joins the sets' refusals, the one that could
// grant soonest first: errors.As finds its [RefusalError].
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
		switch info := (WaitInfo{Request: req, Waited: waited, Err: err}); {
		case h.WaitDone == nil:
		case err != nil:
			callHook(h.WaitDone, info)
		case !callGranted(h.WaitDone, info, a): // a Goexit: a was released
			return nil, ErrReleased // unreachable: the goroutine has exited
		}
	}
	return p.outcome(req, a, err, waited)
}

// Do acquires req from the pool, runs fn and releases, as LimitSet.Do does.
func (p *LimitPool) Do(ctx context.Context, req Amounts, fn func(context.Context, *Acquisition) error) error {
	return do(ctx, p, req, fn)
}

// tryAll makes one non-blocking pass and returns an acquisition, or the
// indices of the sets that would block and the refusal of the one that could
// grant soonest.
func (p *LimitPool) tryAll(ctx context.Context, req Amounts) (*Acquisition, []int, error) {
	start, n := p.pick(), len(p.sets)
	var blocked []int
	var first, soonest error
	for k := range n {
		i := (start + k) % n
		a := &Acquisition{set: p.sets[i]}
		tctx, cancel := p.tryContext(ctx)
		err := p.sets[i].acquire(tctx, req, false, nil, a)
		cancel()
		switch {
		case err == nil:
			p.dispatched[i].Add(1)
			return a, nil, nil
		case ctx.Err() == nil && tctx.Err() != nil:
			// this set did not answer within its share of the deadline
			// (a stalled backend): the pass goes on, and Acquire waits
			// on it with the others
			blocked = append(blocked, i)
			if soonest == nil {
				soonest = err
			}
		case errors.Is(err, ErrWouldBlock):
			blocked = append(blocked, i)
			if soonest == nil || compareRefusals(err, soonest) < 0 {
				soonest = err
			}
		case ctx.Err() != nil:
			return nil, nil, err
		case first == nil:
			first = err
		}
	}
	if blocked != nil {
		return nil, blocked, soonest
	}
	return nil, nil, first
}

// tryContext bounds one set's try of the non-blocking pass to its share of
// ctx's remaining time, so that a set whose backend does not answer cannot
// spend the whole deadline before the others are asked.
func (p *LimitPool) tryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok || len(p.sets) < 2 {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, time.Now().Add(time.Until(d)/time.Duration(len(p.sets))))
}

// compareRefusals orders two refusals by when their sets could grant: one
// whose RefusalError has a RetryAfter comes first, the sooner the earlier;
// then one whose set waits for a release (RetryAfter 0); then one that
// carries no facts. It returns -1, 0 or +1, as cmp.Compare does.
func compareRefusals(x, y error) int {
	rank := func(err error) (int, time.Duration) {
		var r *RefusalError
		switch {
		case !errors.As(err, &r):
			return 2, 0
		case r.RetryAfter == 0:
			return 1, 0
		}
		return 0, r.RetryAfter
	}
	rx, ax := rank(x)
	ry, ay := rank(y)
	return cmp.Or(cmp.Compare(rx, ry), cmp.Compare(ax, ay))
}

// errHookExited ends a pool's wait on one set when a hook of that set ended
// the goroutine waiting on it with runtime.Goexit (a grant it had was
// released). The pool goes on waiting on its other sets, unless the exited
// goroutine had won the pool's claim; the caller gets it when no set grants.
var errHookExited = errors.New("concurry: a hook of the set called runtime.Goexit while the pool waited on it")

type poolResult struct {
	i   int
	a   *Acquisition
	err error
}

// waitAny waits on the given sets at once; one claim makes sure at most one
// of them grants. When none does, the error joins the sets' errors, the
// refusal of the set that could grant soonest first (see compareRefusals).
func (p *LimitPool) waitAny(ctx context.Context, req Amounts, sets []int) (*Acquisition, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	claim := new(backend.Claim)
	for _, i := range sets[1:] {
		if !sameBackend(p.sets[i].backend, p.sets[sets[0]].backend) {
			claim.AcrossBackends = true // a server cannot see the claim taken elsewhere: see backend.Claim
		}
	}
	results := make(chan poolResult, len(sets))
	for _, i := range sets {
		go func() {
			r := poolResult{i: i, err: errHookExited}
			defer func() { results <- r }() // also when a hook of the set ends this goroutine
			a := &Acquisition{set: p.sets[i]}
			r.err = p.sets[i].acquire(ctx, req, true, claim, a)
			r.a = a
		}()
	}
	var won *Acquisition
	var failed []poolResult
	for range sets {
		r := <-results
		switch {
		case r.err == nil:
			won = r.a
			p.dispatched[r.i].Add(1)
			cancel() // the others lose the claim; stop their waits
		case r.err == errHookExited:
			failed = append(failed, r)
			if won == nil && claim.Taken() {
				cancel() // the exited goroutine won the claim: no other set can grant
			}
		case !errors.Is(r.err, backend.ErrClaimed) && !errors.Is(r.err, context.Canceled):
			failed = append(failed, r)
		}
	}
	if won != nil {
		return won, nil
	}
	if err := backend.ContextError(ctx); err != nil && len(failed) == 0 {
		return nil, err
	}
	slices.SortFunc(failed, func(x, y poolResult) int {
		return cmp.Or(compareRefusals(x.err, y.err), cmp.Compare(x.i, y.i))
	})
	errs := make([]error, len(failed))
	for k, r := range failed {
		errs[k] = r.err
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

// sameBackend reports whether a and b are the same backend; backends whose
// values cannot be compared are taken as different.
func sameBackend(a, b backend.Backend) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !reflect.TypeOf(a).Comparable() || !reflect.TypeOf(b).Comparable() {
		return false
	}
	return a == b
}
