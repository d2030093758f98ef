package concurry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/concurry/concurry/backend"
)

// inlineSpecs is how many limits an Acquisition tracks without a second
// allocation.
const inlineSpecs = 4

// Acquisition is what a granted request holds. Report the real usage of its
// RateLimits with Update, then Release it (or let Do do both). Resources are
// held until Release. An Acquisition is safe for concurrent use.
//
// The acquisitions of an empty LimitSet hold nothing: Update accepts any usage
// and Release always returns nil.
type Acquisition struct {
	set    *LimitSet
	ext    []int64 // the vectors, when the set has more than inlineSpecs limits
	lease  backend.Lease
	keyed  *keyedEntry // the Keyed identity that granted it, or nil
	report backend.AcquireReport

	mu       sync.Mutex
	released bool   // guarded by mu
	lostSeen bool   // guarded by mu; the LeaseLost hook was called
	reported uint64 // guarded by mu; bit i: spec i's usage was reported

	// buf holds four vectors of one amount per spec: granted (0 where not
	// taken; fixed once granted), accounted (rate usage charged so far),
	// scratch (deltas for Settle) and refunded (what Settle gave back). The
	// last three are guarded by mu.
	buf [4 * inlineSpecs]int64
}

func newAcquisition(ls *LimitSet) *Acquisition {
	a := &Acquisition{set: ls}
	if n := len(ls.specs); n > inlineSpecs {
		a.ext = make([]int64, 4*n)
	}
	return a
}

func (a *Acquisition) vec(k int) []int64 {
	n := len(a.set.specs)
	b := a.buf[:]
	if a.ext != nil {
		b = a.ext
	}
	return b[k*n : (k+1)*n : (k+1)*n]
}

func (a *Acquisition) granted() []int64   { return a.vec(0) }
func (a *Acquisition) accounted() []int64 { return a.vec(1) }
func (a *Acquisition) scratch() []int64   { return a.vec(2) }
func (a *Acquisition) refunded() []int64  { return a.vec(3) }

// Config returns a copy of the config of the set that granted the
// acquisition (for a LimitPool, the set it chose), nil if that set has none.
func (a *Acquisition) Config() map[string]any { return maps.Clone(a.set.config) }

// Set returns the LimitSet that granted the acquisition.
func (a *Acquisition) Set() *LimitSet { return a.set }

// Granted returns the amount granted for key, 0 when the acquisition does not
// hold it.
func (a *Acquisition) Granted(key string) int64 {
	if idx, ok := a.set.index[key]; ok && a.set.set != nil {
		return a.granted()[idx[0]]
	}
	return 0
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
	ls := a.set
	if ls.set == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.released {
		return ErrReleased
	}
	if err := a.checkUsage(usage); err != nil {
		return err
	}
	accounted := a.accounted()
	for k, key := range ls.keys {
		n, ok := usage[key]
		if !ok {
			continue
		}
		for _, i := range ls.keySpecs[k] {
			accounted[i] = n
			a.reported |= 1 << i
		}
	}
	if c, ok := ls.set.(backend.LeaseChecker); ok {
		if err := c.CheckLease(a.lease); err != nil { // the usage is recorded all the same
			if h := ls.hooks; h != nil && h.LeaseLost != nil && !a.lostSeen {
				a.lostSeen = true
				a.mu.Unlock()
				callHook(h.LeaseLost, LeaseLostInfo{Set: ls, Err: err})
				a.mu.Lock()
			}
			return err
		}
	}
	return nil
}

// checkUsage validates usage against what the acquisition holds.
func (a *Acquisition) checkUsage(usage Amounts) error {
	ls := a.set
	granted := a.granted()
	found := 0
	for k, key := range ls.keys {
		n, ok := usage[key]
		if !ok {
			continue
		}
		found++
		i := ls.keySpecs[k][0]
		if granted[i] == 0 {
			return fmt.Errorf("%w: %q is not held by this acquisition", ErrUnknownKey, key)
		}
		if n < 0 || n > MaxCapacity {
			return fmt.Errorf("%w: usage %d of %q is outside [0, 2^50]", ErrInvalidRequest, n, key)
		}
		if ls.kinds[i] != KindRate && n != granted[i] {
			return fmt.Errorf("%w: usage of %s key %q is fixed at %d", ErrInvalidRequest, ls.kinds[i], key, granted[i])
		}
	}
	if found != len(usage) {
		return ls.unknownKey(usage)
	}
	return nil
}

// Release settles the acquisition and ends it: it applies the usage reported
// with Update (refunds and overage) and returns the resources. It always
// releases everything, even when it reports an error: if a RateLimit of the
// acquisition was never updated, its usage counts as the full request and
// Release returns ErrUsageNotReported. Later calls return nil.
func (a *Acquisition) Release() error {
	ls := a.set
	if ls.set == nil {
		return nil
	}
	a.mu.Lock()
	if a.released {
		a.mu.Unlock()
		return nil
	}
	a.released = true
	var missing []string
	granted, accounted, delta, refunded := a.granted(), a.accounted(), a.scratch(), a.refunded()
	for i, n := range granted {
		if n > 0 && ls.kinds[i] == KindRate && a.reported&(1<<i) == 0 && !containsStr(missing, ls.specs[i].Key) {
			missing = append(missing, ls.specs[i].Key)
		}
		delta[i] = accounted[i] - n
	}
	a.mu.Unlock() // released: nothing else touches the vectors now
	err := a.settle(granted, delta, refunded)
	if missing != nil {
		if err == nil {
			err = &unreportedError{missing}
		} else {
			err = errors.Join(&unreportedError{missing}, err)
		}
	}
	if a.keyed != nil {
		a.keyed.unref()
	}
	return err
}

// settle ends the lease in the backend, counts refunds and overage, and
// calls the Settled and LeaseLost hooks.
func (a *Acquisition) settle(granted, delta, refunded []int64) error {
	ls := a.set
	var err error
	if r, ok := ls.set.(backend.Releaser); ok {
		err = r.Release(context.Background(), a.lease, granted, delta)
		for i, d := range delta {
			refunded[i] = 0
			if d < 0 && ls.kinds[i] != KindResource && ls.specs[i].Algorithm.Refunds() {
				refunded[i] = -d
			}
		}
	} else {
		clear(refunded)
		err = ls.set.Settle(context.Background(), a.lease, granted, delta, true, refunded)
	}
	h := ls.hooks
	for i, d := range delta {
		if d > 0 {
			addCount(&ls.counters[i].overage, d)
		}
		if refunded[i] > 0 {
			addCount(&ls.counters[i].refunded, refunded[i])
		}
		if h != nil && h.Settled != nil && (d > 0 || refunded[i] > 0) && ls.index[ls.specs[i].Key][0] == i {
			callHook(h.Settled, SettleInfo{Set: ls, Key: ls.specs[i].Key, Refunded: refunded[i], Overage: max(d, 0)})
		}
	}
	if err != nil && h != nil && h.LeaseLost != nil && errors.Is(err, ErrLeaseLost) && !a.lostSeen {
		callHook(h.LeaseLost, LeaseLostInfo{Set: ls, Err: err})
	}
	return err
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
		case rerr != nil && !errors.Is(rerr, ErrUsageNotReported):
			err = errors.Join(err, rerr)
		}
	}()
	return fn(ctx, acq)
}
