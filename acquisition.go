package concurry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/concurry/concurry/backend"
)

// inlineSpecs is how many limits a holding tracks without a second
// allocation.
const inlineSpecs = 4

// Acquisition is what a granted request holds. Report the real usage of its
// RateLimits with Update, then Release it (or let Do do both). Resources are
// held until Release. An Acquisition is safe for concurrent use.
//
// The acquisitions of an empty LimitSet hold nothing: Update accepts any usage
// and Release always returns nil.
//
// An Acquisition is a small handle. The common grants of an in-memory set
// (a request naming one key of one limit, or no key of a set of call and
// resource limits) are recorded in the handle alone. The others are
// recorded in a holding that is reused after Release (so that a grant
// allocates nothing in steady state); a generation number keeps a handle
// that was released from ever touching the holding's next owner. Either
// way, after Release, Update returns ErrReleased, Release nil and Granted 0.
type Acquisition struct {
	// light records a grant that needed no holding, and is 0 otherwise
	// (h is then the holding, or nil for an empty set): lightOnes for a
	// grant of one of every limit of a set of call and resource limits
	// (see LimitSet.acquireLight), lightLead for a grant of lead, n of the
	// set's lead key and its leadBase of the other limits (see
	// LimitSet.acquireLead). lightReleased is added at Release; for a lead
	// grant, lightReported and the usage (from bit lightUsageShift) at
	// Update, so that a report and the release are each one
	// compare-and-swap. Accessed atomically once the handle is returned; the
	// first word of the handle, so that 64-bit atomics find it aligned.
	light uint64
	lead  int64 // the lead key's grant, for lightLead; fixed once granted

	set *LimitSet
	h   *holding // nil for an empty set and for a light grant
	gen uint64   // h's generation when it was granted to this handle

	keyed *keyedEntry // set by Keyed before the grant, handed to the holding
}

// The bits of Acquisition.light.
const (
	lightOnes uint64 = 1 << iota
	lightLead
	lightReleased
	lightReported   // lightLead: usage was reported, and is in the bits from lightUsageShift
	lightUsageShift = iota
	lightFlags      = 1<<lightUsageShift - 1 // usage ≤ MaxCapacity = 2^50 fills bits 4 to 54
)

// holding is the state of one granted acquisition. Holdings are pooled:
// Release bumps the generation, which makes every handle on the holding
// stale at once, and returns the holding to the pool when it is done.
type holding struct {
	set    *LimitSet
	ext    []int64 // backs the vectors when the set has more than inlineSpecs limits
	lease  backend.Lease
	keyed  *keyedEntry // the Keyed identity that granted it, or nil
	report backend.AcquireReport

	// state is the generation, shifted left by one, and a lock bit: a
	// handle owns the holding while the generation is the one it was
	// granted, and locks it by setting the bit (see Acquisition.lock).
	// Release bumps the generation, unlocked, in one step: every handle on
	// the holding is stale from then on.
	state    atomic.Uint64
	lostSeen bool   // guarded by the lock; the LeaseLost hook was called
	reported uint64 // guarded by the lock; bit i: spec i's usage was reported

	// vecs are four vectors of one amount per spec: granted (0 where not
	// taken; fixed once granted), accounted (the usage reported of the
	// specs whose bit is set in reported; the others are charged as granted),
	// scratch (deltas for Settle) and refunded (what Settle gave back); the
	// last three are guarded by the lock. They are laid out in buf, or in ext for
	// more than inlineSpecs limits, for n specs, and kept across reuses of
	// the holding while n stays the same.
	vecs [4][]int64
	n    int
	buf  [4 * inlineSpecs]int64
}

var holdings = sync.Pool{New: func() any { return new(holding) }}

// newHolding returns a clean holding for a grant from ls.
func newHolding(ls *LimitSet) *holding {
	h := holdings.Get().(*holding)
	h.set = ls
	if n := len(ls.specs); n != h.n || h.vecs[0] == nil {
		h.layout(n)
	}
	return h
}

// layout lays the vectors out for n specs.
func (h *holding) layout(n int) {
	b := h.buf[:]
	if n > inlineSpecs {
		if cap(h.ext) < 4*n {
			h.ext = make([]int64, 4*n)
		}
		b = h.ext
	}
	for k := range h.vecs {
		h.vecs[k] = b[k*n : (k+1)*n : (k+1)*n]
	}
	h.n = n
	clear(h.vecs[0]) // it may hold what an earlier layout left
}

// free returns h to the pool. Every handle on h is stale by now (Release
// bumped the generation, or h was never granted): a stale handle reads
// only state, which is kept, so the rest is reset without the lock. Of the
// vectors only granted is cleared: accounted is read only where Update wrote
// it (see reported), Update writes into scratch what it reads back, and
// Release and settle write delta and refunded whole before they read them.
func (h *holding) free() {
	clear(h.vecs[0])
	h.set, h.lease, h.keyed, h.report = nil, 0, nil, backend.AcquireReport{}
	h.lostSeen, h.reported = false, 0
	holdings.Put(h)
}

func (h *holding) granted() []int64   { return h.vecs[0] }
func (h *holding) accounted() []int64 { return h.vecs[1] }
func (h *holding) scratch() []int64   { return h.vecs[2] }
func (h *holding) refunded() []int64  { return h.vecs[3] }

// holdsNothing reports whether a, just granted, holds nothing to release:
// a grant of an empty set.
func (a *Acquisition) holdsNothing() bool { return a.h == nil && atomic.LoadUint64(&a.light) == 0 }

// lock locks a's holding if a still owns it (it was not released), and
// reports whether it did; the caller must then unlock it. h is nil when a
// holds nothing (an empty set, or a grant of acquireLight). Two calls on
// one acquisition at once are rare, and the lock is held for a few
// instructions: a caller that finds it locked yields and tries again.
func (a *Acquisition) lock() (h *holding, live bool) {
	h = a.h
	if h == nil {
		return nil, false
	}
	want := a.gen << 1
	for {
		if h.state.CompareAndSwap(want, want|1) {
			return h, true
		}
		if h.state.Load()>>1 != a.gen {
			return h, false
		}
		runtime.Gosched()
	}
}

// unlock unlocks h, locked by lock.
func (h *holding) unlock() { h.state.Add(^uint64(0)) }

// end ends a's grant, if a still owns its holding, and reports whether it
// did: a Release. It bumps the generation and leaves the holding unlocked
// in one step, so that no other call can touch the holding afterwards.
func (a *Acquisition) end() bool {
	h, want := a.h, a.gen<<1
	for {
		if h.state.CompareAndSwap(want, want+2) {
			return true
		}
		if h.state.Load()>>1 != a.gen {
			return false
		}
		runtime.Gosched()
	}
}

// Config returns a copy of the config of the set that granted the
// acquisition (for a LimitPool, the set it chose), nil if that set has none.
func (a *Acquisition) Config() map[string]any { return maps.Clone(a.set.config) }

// Set returns the LimitSet that granted the acquisition.
func (a *Acquisition) Set() *LimitSet { return a.set }

// Granted returns the amount granted for key, 0 when the acquisition does not
// hold it or was released.
func (a *Acquisition) Granted(key string) int64 {
	idx, ok := a.set.index[key]
	if !ok {
		return 0
	}
	h, live := a.lock()
	if h == nil {
		switch w := atomic.LoadUint64(&a.light); {
		case w&lightReleased != 0:
		case w&lightOnes != 0:
			return a.set.ones[idx[0]]
		case w&lightLead != 0 && idx[0] == a.set.leadSpec:
			return a.lead
		case w&lightLead != 0:
			return a.set.leadBase[idx[0]]
		}
		return 0
	}
	if !live {
		return 0
	}
	n := h.granted()[idx[0]]
	h.unlock()
	return n
}

// Update reports the real usage of keys of the acquisition: each amount is
// the total used so far and replaces any earlier report of that key. The
// acquisition settles when it is released: usage below the grant is then
// refunded where the algorithm refunds (TokenBucket, GCRA), and usage above it
// is charged too, putting the limit into debt, because the provider will count
// it. Until then the granted units stay taken. Settling once, at release,
// makes a whole cycle one backend call after the grant on every backend.
//
// When the holding ended before its release (a Redis lease expired, the
// connection to a Unix-socket server dropped), Update records the usage all
// the same — it is charged at Release — and returns an error matching
// ErrLeaseLost, so that the holder knows its exclusivity ended.
//
// A CallLimit or ResourceLimit key may be reported only with the amount
// granted. Update fails, changing nothing, with ErrUnknownKey for a key the
// acquisition does not hold, ErrInvalidRequest for usage outside
// [0, MaxCapacity], and ErrReleased after Release.
func (a *Acquisition) Update(usage Amounts) error {
	h, live := a.lock()
	if h == nil {
		switch w := atomic.LoadUint64(&a.light); {
		case w&lightReleased != 0:
			return ErrReleased
		case w&lightOnes != 0: // nothing to record: usage can only be the grant
			_, err := a.set.checkUsage(usage, a.set.ones, nil)
			return err
		case w&lightLead != 0:
			return a.updateLead(usage, w)
		}
		return nil
	}
	if !live {
		return ErrReleased
	}
	ls := a.set
	// One lookup per key: the usage is checked into scratch (free until
	// Release), and recorded only when all of it is valid.
	scratch := h.scratch()
	seen, err := ls.checkUsage(usage, h.granted(), scratch)
	if err != nil {
		h.unlock()
		return err
	}
	accounted := h.accounted()
	for i := range accounted {
		if seen&(1<<i) != 0 {
			accounted[i] = scratch[i]
		}
	}
	h.reported |= seen
	if c := ls.leases; c != nil {
		if err := c.CheckLease(h.lease); err != nil { // the usage is recorded all the same
			hk := ls.hooks
			call := hk != nil && hk.LeaseLost != nil && !h.lostSeen
			h.lostSeen = h.lostSeen || call
			h.unlock()
			if call {
				callHook(hk.LeaseLost, LeaseLostInfo{Set: ls, Err: err})
			}
			return err
		}
	}
	h.unlock()
	return nil
}

// updateLead is Update of a lead grant, whose light word was w: the lead
// key's usage is recorded in the word with one compare-and-swap.
func (a *Acquisition) updateLead(usage Amounts, w uint64) error {
	ls := a.set
	i := ls.leadSpec
	var n int64
	ok := false
	if len(usage) == 1 {
		n, ok = usage[ls.lead]
	}
	var u uint64
	if ok && ls.usageOK(n, a.lead, i) {
		u = uint64(n) // the usual report, checked as checkUsage would
	} else {
		var g, out [maxLeadSpecs]int64
		granted := g[:len(ls.specs)]
		//lint:ignore S1001 a few words: the loop costs less than copy's call of memmove
		for j, m := range ls.leadBase {
			granted[j] = m
		}
		granted[i] = a.lead
		seen, err := ls.checkUsage(usage, granted, out[:len(granted)])
		if err != nil || seen&(1<<i) == 0 {
			return err // nothing to record: the other keys' usage can only be their grant
		}
		u = uint64(out[i])
	}
	u <<= lightUsageShift
	for {
		if w&lightReleased != 0 {
			return ErrReleased
		}
		if atomic.CompareAndSwapUint64(&a.light, w, w&lightFlags|lightReported|u) {
			return nil
		}
		w = atomic.LoadUint64(&a.light)
	}
}

// checkUsage validates usage against granted, the amounts an acquisition
// holds per spec. When out is not nil, it writes each reported usage into
// out at every spec of its key, and returns those specs as a bit set.
func (ls *LimitSet) checkUsage(usage Amounts, granted, out []int64) (seen uint64, err error) {
	if i := ls.leadSpec; len(usage) == 1 && i >= 0 {
		if n, ok := usage[ls.lead]; ok {
			if !ls.usageOK(n, granted[i], i) {
				return 0, ls.badUsage(ls.lead, n, granted, i)
			}
			if out != nil {
				out[i] = n
				seen = 1 << i
			}
			return seen, nil
		}
	}
	found := 0
	for _, k := range ls.lookup {
		key := ls.keys[k]
		if found == len(usage) {
			break // every key of usage is found: the others are absent
		}
		n, ok := usage[key]
		if !ok {
			continue
		}
		found++
		specs := ls.keySpecs[k]
		if i := specs[0]; !ls.usageOK(n, granted[i], i) {
			return 0, ls.badUsage(key, n, granted, i)
		}
		if out != nil {
			for _, j := range specs {
				out[j] = n
				seen |= 1 << j
			}
		}
	}
	if found != len(usage) {
		return 0, ls.unknownKey(usage)
	}
	return seen, nil
}

// usageOK reports whether an acquisition that was granted g of spec i may
// report usage n of the key whose first spec is i: it holds the key (g is
// not 0), n is in [0, MaxCapacity], and a call or resource key's usage is
// its grant.
func (ls *LimitSet) usageOK(n, g int64, i int) bool {
	return g != 0 && n >= 0 && n <= MaxCapacity && (ls.kinds[i] == KindRate || n == g)
}

// badUsage returns the error for usage n of key, whose first spec is i,
// when usageOK refuses it.
func (ls *LimitSet) badUsage(key string, n int64, granted []int64, i int) error {
	if granted[i] == 0 {
		return fmt.Errorf("%w: %q is not held by this acquisition", ErrUnknownKey, key)
	}
	if n < 0 || n > MaxCapacity {
		return fmt.Errorf("%w: usage %d of %q is outside [0, 2^50]", ErrInvalidRequest, n, key)
	}
	if ls.kinds[i] != KindRate && n != granted[i] {
		return fmt.Errorf("%w: usage of %s key %q is fixed at %d", ErrInvalidRequest, ls.kinds[i], key, granted[i])
	}
	return nil
}

// Release settles the acquisition and ends it: it applies the usage reported
// with Update (refunds and overage) and returns the resources. It always
// releases everything, even when it reports an error: if a RateLimit of the
// acquisition was never updated, its usage counts as the full request and
// Release returns ErrUsageNotReported. Later calls return nil.
func (a *Acquisition) Release() error {
	h := a.h
	if h == nil {
		return a.releaseLight()
	}
	if !a.end() {
		return nil // released before
	}
	// Every handle on h is stale now: nothing else touches h.
	if e := h.keyed; e != nil {
		defer e.unref() // after the settle; also when a Settled or LeaseLost hook calls runtime.Goexit
	}
	ls := a.set
	unreported, work := h.deltas(ls.kinds)
	var err error
	if work || !ls.leaseFree { // the backend must hear of the release
		err = h.settle(h.granted(), h.scratch(), h.refunded())
	}
	if unreported != 0 {
		uerr := ls.unreported(unreported)
		if err == nil {
			err = uerr
		} else {
			err = errors.Join(uerr, err)
		}
	}
	h.free()
	return err
}

// deltas writes into scratch, per spec, the usage reported less the grant,
// and returns the rate specs granted whose usage was never reported (bit i
// for spec i), and whether a rate limit has usage to apply or a resource is
// held: whether the release has work for the backend.
func (h *holding) deltas(kinds []LimitKind) (unreported uint64, work bool) {
	granted, accounted, delta := h.vecs[0], h.vecs[1], h.vecs[2]
	for i, n := range granted {
		d := int64(0)
		if h.reported&(1<<i) != 0 {
			d = accounted[i] - n
		}
		delta[i] = d
		work = work || d != 0
		if n > 0 {
			switch kinds[i] {
			case KindRate:
				unreported |= 1 << i &^ h.reported
			case KindResource:
				work = true
			}
		}
	}
	return unreported, work
}

// releaseLight is Release of an acquisition without a holding: a light
// grant, or one of an empty set (which holds nothing).
func (a *Acquisition) releaseLight() error {
	// Loaded first: a compare-and-swap that fails costs as much as one
	// that succeeds.
	w := atomic.LoadUint64(&a.light)
	for {
		if w == 0 || w&lightReleased != 0 {
			return nil // an empty set's, or released before
		}
		if atomic.CompareAndSwapUint64(&a.light, w, w|lightReleased) {
			break
		}
		w = atomic.LoadUint64(&a.light)
	}
	ls, e := a.set, a.keyed
	if w&lightLead != 0 {
		if e != nil {
			defer e.unref() // after the settle; also when a Settled hook calls runtime.Goexit
		}
		return ls.releaseLead(a.lead, w)
	}
	var err error
	if ls.hasResource {
		err = ls.releaser.Release(context.Background(), 0, ls.ones, ls.zeros)
	}
	if e != nil {
		e.unref()
	}
	return err
}

// releaseLead settles and ends a lead grant of n, whose light word was w
// when Release ended it: as Release of a holding does, with one spec that
// can have usage to apply.
func (ls *LimitSet) releaseLead(n int64, w uint64) error {
	i := ls.leadSpec
	reported := w&lightReported != 0
	var delta int64
	if reported {
		delta = int64(w>>lightUsageShift) - n
	}
	if delta != 0 || ls.hasResource {
		r := ls.leadGrant.ReleaseLead(ls.leadBase, i, n, delta)
		ls.countSettle(i, delta, r)
		if hk := ls.hooks; hk != nil && hk.Settled != nil && ls.kinds[i] == KindRate && (delta > 0 || r > 0) {
			callHook(hk.Settled, SettleInfo{Set: ls, Key: ls.lead, Refunded: r, Overage: max(delta, 0)})
		}
	}
	if ls.kinds[i] == KindRate && !reported {
		return ls.unreported(1 << i)
	}
	return nil
}

// settle ends the lease in the backend, counts refunds and overage, and
// calls the Settled and LeaseLost hooks.
func (h *holding) settle(granted, delta, refunded []int64) error {
	ls := h.set
	var err error
	// A refund is counted as the backend made it (a full bucket caps it),
	// which only Settle reports; as asked when the set's Release does not
	// wait, where Settle would cost a round trip more.
	local := ls.releaser != nil && (ls.pipelined || !asksRefund(delta, ls.refunds))
	if local {
		err = ls.releaser.Release(context.Background(), h.lease, granted, delta)
	} else {
		clear(refunded)
		err = ls.set.Settle(context.Background(), h.lease, granted, delta, true, refunded)
	}
	hk := ls.hooks
	if err != nil && !(errors.Is(err, ErrLeaseLost) && !errors.Is(err, ErrUsageNotCharged)) {
		// nothing was applied (the backend was unreachable, or the lost
		// holding's usage could not be charged): nothing to count
		if hk != nil && hk.LeaseLost != nil && errors.Is(err, ErrLeaseLost) && !h.lostSeen {
			callHook(hk.LeaseLost, LeaseLostInfo{Set: ls, Err: err})
		}
		return err
	}
	for i, d := range delta {
		if local {
			refunded[i] = 0
			if d < 0 && ls.refunds[i] {
				refunded[i] = -d
			}
		}
		ls.countSettle(i, d, refunded[i])
	}
	// The hooks run once every count is made, so that a Goexit in one loses
	// none; once per key, with the most any of the key's limits refunded
	// (a key of several windows refunds in those that refund).
	if hk != nil && hk.Settled != nil {
		for k, specs := range ls.keySpecs {
			var r int64
			for _, j := range specs {
				r = max(r, refunded[j])
			}
			if d := delta[specs[0]]; ls.kinds[specs[0]] == KindRate && (d > 0 || r > 0) {
				callHook(hk.Settled, SettleInfo{Set: ls, Key: ls.keys[k], Refunded: r, Overage: max(d, 0)})
			}
		}
	}
	if err != nil && hk != nil && hk.LeaseLost != nil && errors.Is(err, ErrLeaseLost) && !h.lostSeen {
		callHook(hk.LeaseLost, LeaseLostInfo{Set: ls, Err: err})
	}
	return err
}

// countSettle counts what a settle did to spec i: usage d more than the
// grant (overage when positive), r units refunded.
func (ls *LimitSet) countSettle(i int, d, r int64) {
	if d > 0 {
		addCount(&ls.perLimit[i].overage, d)
	}
	if r > 0 {
		addCount(&ls.perLimit[i].refunded, r)
	}
}

// asksRefund reports whether delta gives back units of a limit whose
// algorithm refunds.
func asksRefund(delta []int64, refunds []bool) bool {
	for i, d := range delta {
		if d < 0 && refunds[i] {
			return true
		}
	}
	return false
}

// unreported returns the ErrUsageNotReported error naming the keys of the
// rate specs in the bit set specs. The usual case, every rate key of the set,
// is one error made once per definition (see definition.allUnreported), so
// that a caller who never reports usage on purpose (the HTTP middleware)
// allocates nothing for it.
func (ls *LimitSet) unreported(specs uint64) error {
	if specs == ls.rateSpecs {
		return ls.allUnreported
	}
	var keys []string
	for i := range ls.specs {
		if specs&(1<<i) != 0 && !containsStr(keys, ls.specs[i].Key) {
			keys = append(keys, ls.specs[i].Key)
		}
	}
	return &unreportedError{keys}
}

// unreportedError is ErrUsageNotReported naming the keys; it formats its
// message only when asked, since callers that count unreported usage as
// requested on purpose (the HTTP middleware) never read it.
type unreportedError struct{ keys []string }

func (e *unreportedError) Error() string {
	return fmt.Sprintf("%v: %v counted as requested", ErrUsageNotReported, e.keys)
}

func (e *unreportedError) Unwrap() error { return ErrUsageNotReported }

func containsStr(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// do is Limiter.Do for any acquirer.
func do(ctx context.Context, l interface {
	Acquire(context.Context, Amounts) (*Acquisition, error)
}, req Amounts, fn func(context.Context, *Acquisition) error) (err error) {
	acq, err := l.Acquire(ctx, req)
	if err != nil {
		return err
	}
	defer func() {
		rerr := acq.Release()
		switch {
		case err == nil:
			err = rerr
		default:
			if rest := withoutUnreported(rerr); rest != nil {
				err = errors.Join(err, rest)
			}
		}
	}()
	return fn(ctx, acq)
}

// withoutUnreported returns err, an error of Release, without what it says
// of usage not reported: nil when that is all it says. Do leaves that out
// beside fn's error, but never the rest (a holding lost early, say).
func withoutUnreported(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var rest []error
		for _, e := range j.Unwrap() {
			rest = append(rest, withoutUnreported(e))
		}
		return errors.Join(rest...)
	}
	if errors.Is(err, ErrUsageNotReported) {
		return nil
	}
	return err
}
