package concurry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync/atomic"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
)

// Amounts maps limit keys to whole units: a request ("tokens": 500), or a
// report of usage. Amounts are exact integers; express money in micro-units.
type Amounts map[string]int64

// Limiter is what a task acquires from: a *LimitSet or a *LimitPool.
type Limiter interface {
	// Acquire blocks until every limit of req is granted, all at once, or
	// ctx ends.
	Acquire(ctx context.Context, req Amounts) (*Acquisition, error)
	// TryAcquire grants req at once or fails with ErrWouldBlock; it never
	// waits and never jumps ahead of a blocked Acquire.
	TryAcquire(ctx context.Context, req Amounts) (*Acquisition, error)
	// Do acquires req, runs fn, and releases.
	Do(ctx context.Context, req Amounts, fn func(context.Context, *Acquisition) error) error
}

// LimitSet grants several limits at once, all or nothing: a request for 500
// tokens on a set holding a CallLimit, a RateLimit of tokens and a
// ResourceLimit of connections takes one call, 500 tokens and one connection
// together, or waits until it can.
//
// A request names RateLimit keys with the amount it expects to use; every
// CallLimit and ResourceLimit it does not name is added with amount 1. Blocked
// requests are served first come, first served, and are woken at the exact
// instant their request fits or a release makes room: nothing polls.
//
// A LimitSet with no limits grants everything at once and at no cost.
// The state lives in a backend: a private in-memory one by default, or a
// shared one given with [WithBackend]. A LimitSet is safe for concurrent use.
type LimitSet struct {
	*definition  // shared with every set made from the same limits (Keyed)
	name         string
	config       map[string]any
	set          backend.Set // nil for an empty set
	*setCounters             // shared by every identity of a Keyed
	closed       atomic.Bool
	releaser     backend.Releaser     // set's, when it implements it
	pipelined    bool                 // set's Release does not wait (backend.Pipeliner)
	leases       backend.LeaseChecker // set's, when it implements it
	light        bool                 // grants of no named key skip the holding (see acquireLight)
	leaseFree    bool                 // the set implements backend.LeaseFree and says so
	leadGrant    backend.LeadGranter  // set's, when a request naming lead alone needs no holding (see acquireLead)
	hooks        *Hooks               // nil when none were given
}

// counters are what a LimitSet counts: per limit, and refusals by cause. The
// sets of a Keyed's identities share one.
type setCounters struct {
	perLimit []limitCounters
	refusals [causeCount]atomic.Int64
	// grants counts what was granted (see grantCounts).
	grants grantCounts
	// backend is what the sets counted here are opened on (a LimitPool
	// tells whether its sets share one). It lives here, not in each
	// LimitSet, since every identity of a Keyed shares it.
	backend backend.Backend
}

func newCounters(n int, b backend.Backend) *setCounters {
	return &setCounters{perLimit: make([]limitCounters, n), grants: newGrantCounts(n), backend: b}
}

// limitCounters are one limit's counters but Granted (see grantCounts). Each
// saturates at MaxInt64 rather than wrapping (see addCount).
type limitCounters struct {
	rejected, blocked, waited, refunded, overage, feedback atomic.Int64
}

// addCount adds n ≥ 0 to c, saturating at math.MaxInt64: a counter that
// would wrap stays at the maximum instead of turning negative.
func addCount(c *atomic.Int64, n int64) {
	if v := c.Add(n); v < 0 {
		c.Store(math.MaxInt64)
	}
}

// NewLimitSet returns a set of the given limits. It fails with
// ErrInvalidLimit when a limit can never be right (see [RateLimit]), and with
// the backend's error (such as ErrLimitMismatch) when a shared backend refuses
// the definitions.
func NewLimitSet(limits []Limit, opts ...Option) (*LimitSet, error) {
	var o setOptions
	for _, opt := range opts {
		opt.applySet(&o)
	}
	def, err := newDefinition(limits)
	if err != nil {
		return nil, err
	}
	return newLimitSet(context.Background(), def, &o)
}

// defaultBackend holds the private sets of LimitSets given no backend.
var defaultBackend = memory.New()

// newLimitSet opens a set of def with the options o.
func newLimitSet(ctx context.Context, def *definition, o *setOptions) (*LimitSet, error) {
	if len(o.name) > MaxNameLen {
		return nil, fmt.Errorf("%w: set name of %d bytes, more than %d", ErrInvalidLimit, len(o.name), MaxNameLen)
	}
	ls := &LimitSet{definition: def, name: o.name, config: o.config, hooks: o.hooks, setCounters: o.counters}
	b, openName := o.backend, o.name
	if b == nil {
		b, openName = defaultBackend, ""
	}
	if ls.setCounters == nil {
		ls.setCounters = newCounters(len(def.specs), b)
	}
	if len(def.specs) == 0 {
		return ls, nil
	}
	if o.private {
		openName = ""
	}
	var err error
	if ls.set, err = b.Open(ctx, openName, def.specs); err != nil {
		return nil, err
	}
	ls.releaser, _ = ls.set.(backend.Releaser)
	if p, ok := ls.set.(backend.Pipeliner); ok {
		ls.pipelined = p.Pipelined()
	}
	ls.leases, _ = ls.set.(backend.LeaseChecker)
	lf, _ := ls.set.(backend.LeaseFree)
	ls.leaseFree = ls.releaser != nil && lf != nil && lf.LeaseFree()
	ls.light = def.noRate && ls.leaseFree
	if lg, ok := ls.set.(backend.LeadGranter); ok && ls.leaseFree && ls.leases == nil && def.leadBase != nil {
		ls.leadGrant = lg
	}
	return ls, nil
}

// Name returns the name given with WithName, or "".
func (ls *LimitSet) Name() string { return ls.name }

// Limit returns the limit of key; where several limits share the key, the one
// with the shortest window.
func (ls *LimitSet) Limit(key string) (Limit, bool) {
	idx, ok := ls.index[key]
	if !ok {
		return nil, false
	}
	return ls.limits[idx[0]], true
}

// Limits returns every limit of the set in definition order.
func (ls *LimitSet) Limits() []Limit { return slices.Clone(ls.limits) }

// Keys returns each key of the set once, in definition order.
func (ls *LimitSet) Keys() []string { return slices.Clone(ls.keys) }

// Config returns a copy of the metadata given with WithConfig, nil if none.
func (ls *LimitSet) Config() map[string]any { return maps.Clone(ls.config) }

// Acquire blocks until every limit of req is granted, all at once, or ctx
// ends. It fails at once, taking nothing, when req names an unknown key
// (ErrUnknownKey), an amount ≤ 0 (ErrInvalidRequest), more than a limit's
// capacity (ErrExceedsCapacity), or when ctx has a deadline before the instant
// the rate limits could grant req (an error matching context.DeadlineExceeded).
// If ctx ends while waiting, Acquire returns ctx's error and the set is as it
// was. The acquisition must be released.
func (ls *LimitSet) Acquire(ctx context.Context, req Amounts) (*Acquisition, error) {
	// The handle is small, and Acquire is inlined: it lives on the
	// caller's stack when the caller keeps it there.
	return ls.wait(ctx, req, new(Acquisition))
}

// wait and try are Acquire and TryAcquire with the handle given, so that
// those two stay small enough to be inlined (and so must not be inlined
// themselves).
//
//go:noinline
func (ls *LimitSet) wait(ctx context.Context, req Amounts, a *Acquisition) (*Acquisition, error) {
	if err := ls.acquire(ctx, req, true, nil, a); err != nil {
		return nil, err
	}
	return a, nil
}

//go:noinline
func (ls *LimitSet) try(ctx context.Context, req Amounts, a *Acquisition) (*Acquisition, error) {
	if err := ls.acquire(ctx, req, false, nil, a); err != nil {
		return nil, err
	}
	return a, nil
}

// TryAcquire grants req at once or fails with ErrWouldBlock, holding
// nothing. It fails while an earlier Acquire is waiting in the set, so it never
// jumps that queue. Invalid requests fail as for Acquire.
func (ls *LimitSet) TryAcquire(ctx context.Context, req Amounts) (*Acquisition, error) {
	return ls.try(ctx, req, new(Acquisition))
}

// Do acquires req, runs fn with the acquisition and releases it, also when fn
// panics. It returns fn's error, or else Release's: a RateLimit fn did not
// update is reported (ErrUsageNotReported) only when fn succeeded.
func (ls *LimitSet) Do(ctx context.Context, req Amounts, fn func(context.Context, *Acquisition) error) error {
	return do(ctx, ls, req, fn)
}

// Close fails every Acquire waiting on the set, and every later Acquire and
// TryAcquire, with ErrClosed. Granted acquisitions can still be updated and
// released. Close is idempotent.
func (ls *LimitSet) Close() error {
	if ls.closed.Swap(true) || ls.set == nil {
		return nil
	}
	return ls.set.Close()
}

// acquire grants req into a, a fresh handle.
func (ls *LimitSet) acquire(ctx context.Context, req Amounts, wait bool, claim *backend.Claim, a *Acquisition) error {
	a.set = ls
	if ctx.Err() != nil {
		return ls.refuse(req, backend.ContextError(ctx), nil)
	}
	if ls.closed.Load() {
		return ls.refuse(req, ErrClosed, nil)
	}
	if ls.set == nil {
		if hk := ls.hooks; hk != nil && hk.Granted != nil {
			callGranted(hk.Granted, GrantInfo{Set: ls, Request: req}, a)
		}
		return nil
	}
	if ls.light && !wait && claim == nil && len(req) == 0 {
		return ls.acquireLight(ctx, req, a)
	}
	if ls.leadGrant != nil && claim == nil && len(req) == 1 {
		if n, ok := req[ls.lead]; ok {
			i := ls.leadSpec
			if n <= 0 || n > ls.specs[i].Capacity {
				return ls.refuse(req, ls.badAmount(ls.lead, n, i), nil)
			}
			if ls.leadGrant.GrantLead(ls.leadBase, i, n) {
				return ls.acquireLead(req, n, a)
			}
			// not at once: the general path grants, queues or refuses it
		}
	}
	h := newHolding(ls)
	h.keyed = a.keyed // before any hook: a Goexit in Granted releases through it
	granted := h.granted()
	if err := ls.fill(req, granted); err != nil {
		h.free()
		return ls.refuse(req, err, nil)
	}
	rep := &h.report
	rep.Blocker = -1
	opts := backend.AcquireOptions{Wait: wait, Claim: claim, Report: rep}
	if hk := ls.hooks; hk != nil && hk.WaitStart != nil {
		opts.OnWait = func(spec int) { callHook(hk.WaitStart, WaitInfo{Set: ls, Request: req, Key: ls.keyOf(spec)}) }
	}
	lease, err := ls.set.Acquire(ctx, granted, opts)
	if err != nil && claim != nil && claim.Taken() {
		err = backend.ErrClaimed // another set of the pool granted; its cancel of this wait is no refusal
	}
	if rep.Waited && rep.Blocker >= 0 {
		c := &ls.perLimit[rep.Blocker]
		addCount(&c.blocked, 1)
		addCount(&c.waited, int64(rep.Duration))
	}
	if err != nil {
		err = ls.refuseAfter(req, err, granted, rep)
		h.free()
		return err
	}
	h.lease = lease
	ls.countGrant(granted)
	a.h, a.gen = h, h.state.Load()>>1
	if ls.hooks != nil && !ls.waitDone(req, rep, nil, a) {
		return ErrReleased // unreachable: the goroutine has exited, and a was released
	}
	if hk := ls.hooks; hk != nil && hk.Granted != nil {
		info := GrantInfo{Set: ls, Request: req, Waited: rep.Duration, Key: ls.keyOf(rep.Blocker), Degraded: rep.Degraded}
		if !callGranted(hk.Granted, info, a) {
			return ErrReleased // unreachable: the goroutine has exited
		}
	}
	return nil
}

// waitDone calls the WaitDone hook, if any, for a request that waited and
// ended with err. After a grant (err nil) a holds it, and a hook that ends
// its goroutine with runtime.Goexit releases it, as for Granted: waitDone
// then reports false.
func (ls *LimitSet) waitDone(req Amounts, rep *backend.AcquireReport, err error, a *Acquisition) bool {
	hk := ls.hooks
	if hk.WaitDone == nil || !rep.Waited {
		return true
	}
	info := WaitInfo{Set: ls, Request: req, Key: ls.keyOf(rep.Blocker), Waited: rep.Duration, Err: err}
	if err != nil {
		callHook(hk.WaitDone, info)
		return true
	}
	return callGranted(hk.WaitDone, info, a)
}

// countGrant counts a grant of amounts, one per spec: as one auto grant when it
// took one unit of every call and resource limit, else per limit; its rate
// limits per limit.
func (ls *LimitSet) countGrant(amounts []int64) {
	auto := true
	for _, i := range ls.auto {
		auto = auto && amounts[i] == 1
	}
	if auto && len(ls.auto) > 0 {
		ls.grants.addAuto()
	}
	for i, n := range amounts {
		if n > 0 && (!auto || ls.kinds[i] == KindRate) {
			ls.grants.addSpec(i, n)
		}
	}
}

// acquireLight is acquire for a TryAcquire of no named key from a set of
// call and resource limits on a lease-free backend: the grant takes one of
// every limit, leaves nothing to settle but its resources, and so needs no
// holding: the handle alone records it (see Acquisition.light).
func (ls *LimitSet) acquireLight(ctx context.Context, req Amounts, a *Acquisition) error {
	if _, err := ls.set.Acquire(ctx, ls.ones, backend.AcquireOptions{}); err != nil {
		return ls.refuse(req, err, ls.ones)
	}
	ls.grants.addAuto() // every limit is a call or resource limit
	a.light = lightOnes // a is not shared yet
	if hk := ls.hooks; hk != nil && hk.Granted != nil {
		if !callGranted(hk.Granted, GrantInfo{Set: ls, Request: req, Key: ""}, a) {
			return ErrReleased // unreachable: the goroutine has exited
		}
	}
	return nil
}

// acquireLead records in a a grant of GrantLead: n of the lead key and
// leadBase of the other limits. Such a grant needs no holding: the handle
// records its amount, and the usage Update reports (see Acquisition.light).
func (ls *LimitSet) acquireLead(req Amounts, n int64, a *Acquisition) error {
	ls.countLead(n)
	a.lead, a.light = n, lightLead // a is not shared yet
	if hk := ls.hooks; hk != nil && hk.Granted != nil {
		if !callGranted(hk.Granted, GrantInfo{Set: ls, Request: req}, a) {
			return ErrReleased // unreachable: the goroutine has exited
		}
	}
	return nil
}

// countLead is countGrant for a grant of n of the lead key and leadBase of
// the others.
func (ls *LimitSet) countLead(n int64) {
	i := ls.leadSpec
	if rate := ls.kinds[i] == KindRate; rate || n == 1 {
		// every call and resource limit took 1
		if len(ls.auto) > 0 {
			ls.grants.addAuto()
		}
		if rate {
			ls.grants.addSpec(i, n)
		}
		return
	}
	for _, j := range ls.auto {
		m := int64(1)
		if j == i {
			m = n
		}
		ls.grants.addSpec(j, m)
	}
}

// refuse counts a failed acquisition by its cause, calls the Refused hook,
// and returns err. amounts is the request per spec, nil when it was not
// known yet.
func (ls *LimitSet) refuse(req Amounts, err error, amounts []int64) error {
	return ls.refuseAfter(req, err, amounts, nil)
}

// refuseAfter is refuse for a request that went to the backend, which
// reported on its wait in rep: the WaitDone hook is called after the
// counts, so that a Goexit in it loses none, and before Refused.
func (ls *LimitSet) refuseAfter(req Amounts, err error, amounts []int64, rep *backend.AcquireReport) error {
	if errors.Is(err, backend.ErrClaimed) {
		if rep != nil && ls.hooks != nil {
			ls.waitDone(req, rep, err, nil)
		}
		return err // a pool granted elsewhere: no refusal of the caller's
	}
	cause := CauseOf(err)
	addCount(&ls.refusals[cause], 1)
	var r *RefusalError
	hasFacts := errors.As(err, &r)
	if cause == CauseWouldBlock {
		for i, n := range amounts {
			if n > 0 {
				addCount(&ls.perLimit[i].rejected, 1)
			}
		}
		if hasFacts && r.Key != "" {
			if idx, ok := ls.index[r.Key]; ok {
				addCount(&ls.perLimit[idx[0]].blocked, 1)
			}
		}
	}
	if rep != nil && ls.hooks != nil {
		ls.waitDone(req, rep, err, nil)
	}
	if h := ls.hooks; h != nil && h.Refused != nil {
		info := RefusalInfo{Set: ls, Request: req, Cause: cause, Err: err}
		if hasFacts {
			info.Key, info.RetryAfter = r.Key, r.RetryAfter
		}
		callHook(h.Refused, info)
	}
	return err
}

// CauseOf classifies the error of a failed Acquire or TryAcquire by its
// cause, as Stats.Refusals and the Refused hook do. An error that matches
// none of the known causes is CauseUnavailable.
func CauseOf(err error) RefusalCause {
	switch {
	case errors.Is(err, ErrWouldBlock):
		return CauseWouldBlock
	case errors.Is(err, context.DeadlineExceeded):
		return CauseDeadline
	case errors.Is(err, context.Canceled):
		return CauseCanceled
	case errors.Is(err, ErrClosed):
		return CauseClosed
	case errors.Is(err, ErrInvalidRequest), errors.Is(err, ErrUnknownKey), errors.Is(err, ErrExceedsCapacity), errors.Is(err, ErrInvalidLimit):
		return CauseInvalid
	}
	return CauseUnavailable
}

// keyOf returns the key of spec i, "" when i < 0.
func (ls *LimitSet) keyOf(i int) string {
	if i < 0 || i >= len(ls.specs) {
		return ""
	}
	return ls.specs[i].Key
}

// fill turns req into one amount per spec, validating it. It looks the set's
// keys up in req rather than ranging over req: lookups in a small map cost
// less than an iteration.
func (ls *LimitSet) fill(req Amounts, amounts []int64) error {
	if len(req) == 0 && ls.hasRate {
		return fmt.Errorf("%w: the request names no keys, but the set has rate limits (%v)", ErrInvalidRequest, ls.rateKeys())
	}
	if i := ls.leadSpec; len(req) == 1 && i >= 0 {
		if n, ok := req[ls.lead]; ok {
			if n <= 0 || n > ls.specs[i].Capacity {
				return ls.badAmount(ls.lead, n, i)
			}
			amounts[i] = n
			for _, j := range ls.auto {
				if amounts[j] == 0 {
					amounts[j] = 1
				}
			}
			return nil
		}
	}
	found := 0
	for _, k := range ls.lookup {
		key := ls.keys[k]
		if found == len(req) {
			break // every key of req is found: the others are absent
		}
		n, ok := req[key]
		if !ok {
			continue
		}
		found++
		for _, i := range ls.keySpecs[k] {
			if n <= 0 || n > ls.specs[i].Capacity {
				return ls.badAmount(key, n, i)
			}
			amounts[i] = n
		}
	}
	if found != len(req) {
		return ls.unknownKey(req)
	}
	for _, i := range ls.auto {
		if amounts[i] == 0 {
			amounts[i] = 1
		}
	}
	return nil
}

// badAmount returns the error for amount n of key, which is ≤ 0 or more
// than the capacity of spec i, one of the key's.
func (ls *LimitSet) badAmount(key string, n int64, i int) error {
	if n <= 0 {
		return fmt.Errorf("%w: amount %d of %q must be positive", ErrInvalidRequest, n, key)
	}
	return fmt.Errorf("%w: %d of %q, more than %v allows", ErrExceedsCapacity, n, key, ls.limits[i])
}

// unknownKey returns the ErrUnknownKey error for a key of m the set lacks.
func (ls *LimitSet) unknownKey(m Amounts) error {
	for key := range m {
		if _, ok := ls.index[key]; !ok {
			return fmt.Errorf("%w: %q (the set has %v)", ErrUnknownKey, key, ls.keys)
		}
	}
	return nil
}

func (ls *LimitSet) rateKeys() []string {
	var keys []string
	for _, k := range ls.keys {
		if ls.kinds[ls.index[k][0]] == KindRate {
			keys = append(keys, k)
		}
	}
	return keys
}
