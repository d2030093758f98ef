package concurry

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
)

// KeyedOptions configure NewKeyed. The zero value of each field is its
// default.
type KeyedOptions struct {
	// Limits is the definition every identity gets. Ignored when LimitsFor
	// is set.
	Limits []Limit
	// LimitsFor, when set, returns the definition of one identity (tiers:
	// free users one set of limits, paying users another). It is called once
	// when the identity's set is made, and again only after the set was
	// forgotten; an error fails that acquisition and is returned wrapped. It
	// must be safe for concurrent use; a panic in it is returned as an error.
	LimitsFor func(identity string) ([]Limit, error)
	// Name prefixes the name of every identity's set: identity id uses the
	// set Name + "/" + id. A shared backend requires it; with the in-memory
	// backend it only names the sets in Stats.
	Name string
	// Backend holds the sets; nil means a private in-memory backend.
	Backend backend.Backend
	// Config is handed to every identity's set, as WithConfig does.
	Config map[string]any
	// Hooks are called by every identity's set, as WithHooks does; nil
	// means none.
	Hooks *Hooks
}

// Keyed gives every identity — a user, an API key, an IP address, a tenant —
// a LimitSet of its own, made from one definition (or one per tier) when the
// identity is first seen, and forgotten again when it is idle and back to
// full, so that memory follows the identities that are active, not every
// identity ever seen. An identity that comes back after it was forgotten
// starts full, which is exactly where it was: only sets that no acquisition
// holds, no request waits on, and whose every limit is full again are
// forgotten, so forgetting never resets a budget early.
//
// Forgetting is generational and amortised. The identities live in 32
// shards. A shard is swept when a new identity arrives once the shard has
// grown by half its size since its last sweep (by 32 identities at least)
// and the longest window of the limits (of any tier) has passed since that
// sweep; a sweep forgets the identities that are idle, full, and have not
// been used since the shard's previous sweep, so not for a window at least.
// An identity used again within a window keeps its set however soon it
// refills (it is not made anew on every request); a sweep costs a few steps
// per identity made since the last; and a shard holds the identities used
// over its last two sweep intervals and those not yet full — once a window
// has passed, at most one and a half times its size after its last sweep.
// Sweep forgets every idle and full identity at once.
//
// With a shared backend (unixsock, Redis) each identity's set is shared by
// every process that uses the same Name; the backend expires idle sets on its
// side, and Keyed forgets its local handle of an idle identity.
//
// A Keyed is safe for concurrent use.
type Keyed struct {
	opts  KeyedOptions
	local bool            // the sets live in this process: forget only full ones
	open  backend.Backend // opens the identities' sets: opts.Backend, lazily where it can (see lazyOpen)
	def   *definition     // of Limits, shared by every identity; nil with LimitsFor

	tiersMu  sync.Mutex
	tiers    map[string]*definition       // guarded by tiersMu; LimitsFor's definitions, by their text
	counters map[*definition]*setCounters // guarded by tiersMu; the counters of each definition's identities
	seed     maphash.Seed
	pace     atomic.Int64 // the longest window of any definition in use, in nanoseconds
	shards   [keyedShards]keyedShard
}

const keyedShards = 32

// keyedMinGrowth is how many identities new to a shard prompt its sweep at
// least: a small shard is not swept after every few identities.
const keyedMinGrowth = 32

type keyedShard struct {
	mu       sync.Mutex
	m        map[string]*keyedEntry // guarded by mu
	epoch    uint32                 // guarded by mu; bumped by every sweep
	sweepAt  int                    // guarded by mu; len(m) from which a new identity prompts a sweep
	swept    time.Time              // guarded by mu; when the last sweep began
	sweeping bool                   // guarded by mu; a sweep prompted by growth runs
}

// keyedEntry is one identity's set, how many calls and acquisitions use it
// now, and the shard epoch of its last use.
type keyedEntry struct {
	set    *LimitSet
	shard  *keyedShard
	id     string
	active atomic.Int64 // raised only under shard.mu; lowered without it
	used   uint32       // guarded by shard.mu; the shard's epoch at the last use
}

// NewKeyed returns a Keyed for the given definition. It fails with
// ErrInvalidLimit when neither Limits nor LimitsFor is given, or when Limits
// is invalid (LimitsFor's definitions are checked as identities appear).
func NewKeyed(opts KeyedOptions) (*Keyed, error) {
	var def *definition
	if opts.LimitsFor == nil {
		var err error
		if def, err = newDefinition(opts.Limits); err != nil {
			return nil, err
		}
	}
	if opts.Backend == nil {
		opts.Backend = memory.New()
	}
	_, local := opts.Backend.(*memory.Backend)
	k := &Keyed{opts: opts, seed: maphash.MakeSeed(), local: local, def: def, open: opts.Backend}
	if lo, ok := opts.Backend.(backend.LazyOpener); ok {
		k.open = lazyOpen{lo}
	}
	if def != nil {
		k.paceFor(def)
	}
	for i := range k.shards {
		k.shards[i].m = make(map[string]*keyedEntry)
		k.shards[i].sweepAt = keyedMinGrowth
	}
	return k, nil
}

// Acquire acquires req from identity's set, as LimitSet.Acquire does.
func (k *Keyed) Acquire(ctx context.Context, identity string, req Amounts) (*Acquisition, error) {
	return k.acquire(ctx, identity, req, true)
}

// TryAcquire acquires req from identity's set if it can at once, as
// LimitSet.TryAcquire does.
func (k *Keyed) TryAcquire(ctx context.Context, identity string, req Amounts) (*Acquisition, error) {
	return k.acquire(ctx, identity, req, false)
}

// Do acquires req from identity's set, runs fn and releases, as LimitSet.Do
// does.
func (k *Keyed) Do(ctx context.Context, identity string, req Amounts, fn func(context.Context, *Acquisition) error) error {
	return do(ctx, k.For(identity), req, fn)
}

// For returns the Limiter of one identity, for code written against a
// Limiter (a worker pool's tasks, a LimitPool). It holds no state: calls
// through it are calls to k with that identity.
func (k *Keyed) For(identity string) Limiter { return keyedLimiter{k, identity} }

// Stats returns the stats of identity's set. Available, InUse and Debt are
// the identity's own; the counters (Granted to Feedback, and Refusals) count
// for every identity of the same definition (or tier) together, so that an
// identity costs no counters of its own. With the in-memory backend, an
// identity that has no set now (never seen, or forgotten) has full limits;
// Stats then reports the definition's capacities as available without making
// a set. A shared backend keeps an identity's state when this process has no
// handle on it (other processes may spend it; a handle is forgotten without
// asking whether the set is full): Stats then opens the identity's set, asks
// the backend, and closes it again.
func (k *Keyed) Stats(ctx context.Context, identity string) (Stats, error) {
	sh := k.shard(identity)
	sh.mu.Lock()
	e := sh.m[identity]
	if e != nil {
		e.active.Add(1)
	}
	sh.mu.Unlock()
	if e != nil {
		defer e.unref()
		return e.set.Stats(ctx)
	}
	if k.local {
		return k.fullStats(identity)
	}
	set, err := k.newSet(ctx, identity)
	if err != nil {
		return Stats{}, err
	}
	defer set.Close()
	return set.Stats(ctx)
}

// Limits returns the limits of identity's set: the definition, or the tier
// LimitsFor gives it. It makes no set.
func (k *Keyed) Limits(identity string) ([]Limit, error) {
	sh := k.shard(identity)
	sh.mu.Lock()
	e := sh.m[identity]
	sh.mu.Unlock()
	if e != nil {
		return e.set.Limits(), nil
	}
	if k.opts.LimitsFor != nil {
		return k.limitsFor(identity)
	}
	return slices.Clone(k.opts.Limits), nil
}

// Len returns how many identities have a set in this process now.
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Sweep forgets every identity that is idle and full now, used since the
// last sweep or not, and returns how many it forgot. Keyed also forgets idle
// and full identities by itself as new ones arrive (see Keyed), so calling
// Sweep is never needed for memory to stay bounded; it is for programs that
// want the memory back at a quiet moment.
func (k *Keyed) Sweep(ctx context.Context) int {
	n := 0
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.Lock()
		n += k.sweepShard(ctx, sh, true) // unlocks
	}
	return n
}

// Close closes every identity's set (waiters fail with ErrClosed) and
// forgets them. Later calls make new sets.
func (k *Keyed) Close() error {
	var errs []error
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.Lock()
		m := sh.m
		sh.m = make(map[string]*keyedEntry)
		sh.sweepAt = keyedMinGrowth
		sh.mu.Unlock()
		for _, e := range m {
			errs = append(errs, e.set.Close())
		}
	}
	return errors.Join(errs...)
}

func (k *Keyed) shard(identity string) *keyedShard {
	return &k.shards[maphash.String(k.seed, identity)%keyedShards]
}

func (k *Keyed) acquire(ctx context.Context, identity string, req Amounts, wait bool) (*Acquisition, error) {
	e, err := k.ref(ctx, identity)
	if err != nil {
		// no set refused: the identity has none (an identity too long for a
		// set name, LimitsFor's error, a backend that could not open it)
		if h := k.opts.Hooks; h != nil && h.Refused != nil {
			callHook(h.Refused, RefusalInfo{Request: req, Cause: CauseOf(err), Err: err})
		}
		return nil, err
	}
	a := &Acquisition{set: e.set, keyed: e} // its Release unrefs e
	defer func() {
		// Once a holds a grant, its Release unrefs e (also the Release a
		// Goexit in Granted or WaitDone makes). Else e is unrefd here, also
		// when a hook (Refused, WaitStart, WaitDone) ended the goroutine.
		if a.holdsNothing() {
			e.unref()
		}
	}()
	if err := e.set.acquire(ctx, req, wait, nil, a); err != nil {
		return nil, err
	}
	return a, nil
}

// ref returns identity's entry, made if missing, counted as active.
func (k *Keyed) ref(ctx context.Context, identity string) (*keyedEntry, error) {
	sh := k.shard(identity)
	sh.mu.Lock()
	if e := sh.m[identity]; e != nil {
		e.active.Add(1)
		e.used = sh.epoch
		sh.mu.Unlock()
		return e, nil
	}
	sh.mu.Unlock()
	identity = strings.Clone(identity) // kept: not a slice of a larger string
	set, err := k.newSet(ctx, identity)
	if err != nil {
		return nil, err
	}
	sh.mu.Lock()
	e := sh.m[identity]
	if e == nil {
		e = &keyedEntry{set: set, shard: sh, id: identity}
		sh.m[identity] = e
	}
	e.active.Add(1)
	e.used = sh.epoch
	if e.set != set || sh.sweeping || len(sh.m) < sh.sweepAt || time.Since(sh.swept) < time.Duration(k.pace.Load()) {
		sh.mu.Unlock()
	} else {
		sh.sweeping = true
		k.sweepShard(ctx, sh, false) // unlocks
	}
	if e.set != set {
		_ = set.Close() // another call made it first
	}
	return e, nil
}

// unref marks one use of e as ended. It takes no lock: only an increment
// must exclude a sweep's decision (see sweepShard), and increments are made
// under the shard's lock.
func (e *keyedEntry) unref() { e.active.Add(-1) }

// newSet makes identity's set.
func (k *Keyed) newSet(ctx context.Context, identity string) (*LimitSet, error) {
	def := k.def
	if def == nil {
		limits, err := k.limitsFor(identity)
		if err != nil {
			return nil, err
		}
		if def, err = k.tier(limits); err != nil {
			return nil, err
		}
		k.paceFor(def)
	}
	name := identity
	if k.opts.Name != "" {
		name = k.opts.Name + "/" + identity
	}
	if len(name) > MaxNameLen {
		return nil, fmt.Errorf("%w: identity of %d bytes makes a set name over %d bytes", ErrInvalidRequest, len(identity), MaxNameLen)
	}
	return newLimitSet(ctx, def, &setOptions{name: name, backend: k.open, config: k.opts.Config, private: k.local, hooks: k.opts.Hooks, counters: k.countersOf(def)})
}

// lazyOpen opens sets with OpenLazy: an identity's set is made inside its
// first call, which checks the definitions anyway, so Open's own check would
// only cost every new or returning identity a round trip.
type lazyOpen struct{ b backend.LazyOpener }

func (l lazyOpen) Open(_ context.Context, name string, specs []backend.Spec) (backend.Set, error) {
	return l.b.OpenLazy(name, specs)
}

// countersOf returns the counters the identities of def share.
func (k *Keyed) countersOf(def *definition) *setCounters {
	k.tiersMu.Lock()
	defer k.tiersMu.Unlock()
	if c, ok := k.counters[def]; ok {
		return c
	}
	b := k.open
	if b == nil {
		b = defaultBackend
	}
	c := newCounters(len(def.specs), b)
	if k.counters == nil {
		k.counters = make(map[*definition]*setCounters)
	}
	k.counters[def] = c
	return c
}

// tier returns the definition of limits, shared with every identity whose
// tier has the same limits.
func (k *Keyed) tier(limits []Limit) (*definition, error) {
	var text strings.Builder
	for _, l := range limits {
		if l == nil {
			return newDefinition(limits) // the error
		}
		text.WriteString(l.String())
		text.WriteByte(0)
	}
	k.tiersMu.Lock()
	defer k.tiersMu.Unlock()
	if d, ok := k.tiers[text.String()]; ok {
		return d, nil
	}
	d, err := newDefinition(limits)
	if err != nil {
		return nil, err
	}
	if k.tiers == nil {
		k.tiers = make(map[string]*definition)
	}
	if len(k.tiers) < 1024 { // tiers are few; a func making endless variants gets no cache
		k.tiers[text.String()] = d
	}
	return d, nil
}

// limitsFor calls LimitsFor, containing a panic or a runtime.Goexit in it:
// it runs in a goroutine of its own, so neither reaches the caller.
func (k *Keyed) limitsFor(identity string) ([]Limit, error) {
	var limits []Limit
	var err error
	if p, exited := callContained(func() { limits, err = k.opts.LimitsFor(identity) }); exited {
		return nil, fmt.Errorf("%w: KeyedOptions.LimitsFor(%q) %s", ErrInvalidLimit, identity, p)
	}
	if err != nil {
		return nil, fmt.Errorf("concurry: limits of identity %q: %w", identity, err)
	}
	return limits, nil
}

// fullStats returns the stats of a fresh set of identity's definition.
func (k *Keyed) fullStats(identity string) (Stats, error) {
	limits := k.opts.Limits
	if k.opts.LimitsFor != nil {
		var err error
		if limits, err = k.limitsFor(identity); err != nil {
			return Stats{}, err
		}
	}
	st := Stats{Name: identity, Limits: make([]LimitStats, len(limits))}
	if k.opts.Name != "" {
		st.Name = k.opts.Name + "/" + identity
	}
	for i, l := range limits {
		sp := l.spec()
		ls := LimitStats{Key: sp.Key, Kind: kindOf(l), Capacity: sp.Capacity, Available: sp.Capacity}
		if sp.Kind == backend.Rate {
			ls.Algorithm, ls.Window = Algorithm(sp.Algorithm), sp.Window
		}
		st.Limits[i] = ls
	}
	return st, nil
}

// keyedLimiter is Keyed.For's Limiter.
type keyedLimiter struct {
	k  *Keyed
	id string
}

func (l keyedLimiter) Acquire(ctx context.Context, req Amounts) (*Acquisition, error) {
	return l.k.Acquire(ctx, l.id, req)
}

func (l keyedLimiter) TryAcquire(ctx context.Context, req Amounts) (*Acquisition, error) {
	return l.k.TryAcquire(ctx, l.id, req)
}

func (l keyedLimiter) Do(ctx context.Context, req Amounts, fn func(context.Context, *Acquisition) error) error {
	return l.k.Do(ctx, l.id, req, fn)
}
