package provider

import (
	"maps"
	"math"
	"sync"
	"time"
)

// dimension is one per-minute quota of an account.
type dimension int

const (
	dimRequests dimension = iota
	dimInput
	dimOutput
	dimTokens // input and output together; only with Quota.TokensPerMinute
	numDims
)

// dimNames name the dimensions in reports and rejection counts.
var dimNames = [numDims]string{"requests", "input_tokens", "output_tokens", "tokens"}

// DimConcurrency names the concurrency cap in AccountReport's
// RejectedByDimension, beside "requests", "input_tokens", "output_tokens"
// and "tokens".
const DimConcurrency = "concurrency"

// cost is what a call takes of each per-minute quota.
type cost [numDims]float64

// callCost returns the cost of a call of in input tokens that may produce
// up to maxOut output tokens.
func callCost(in, maxOut int64) cost {
	return cost{1, float64(in), float64(maxOut), float64(in) + float64(maxOut)}
}

// snapshot is every quota of an account at one instant, as the rate-limit
// headers report it.
type snapshot struct {
	at        time.Time
	dims      [numDims]limitState
	hasTokens bool // dims[dimTokens] is a quota of its own
}

// refusal is why a call was refused, and for how long.
type refusal struct {
	dim        string        // the quota that refused: a dimension name or DimConcurrency
	retryAfter time.Duration // until the call would fit if nothing else changed
	tooLarge   bool          // the call exceeds the quota's capacity: it can never fit
	limit      int64         // the quota that refused
	requested  int64         // what the call asked of it
}

// account is one (region, account) of the provider: its quotas, its calls
// in flight, and its own accounting. Safe for concurrent use.
type account struct {
	region, name  string
	concurrency   int64
	busyRetry     time.Duration // the Retry-After of a refusal by the concurrency cap
	mu            sync.Mutex
	buckets       [numDims]*bucket // guarded by mu; buckets[dimTokens] is nil without TokensPerMinute
	foreign       foreignClient    // guarded by mu
	inFlight      int64            // guarded by mu
	maxInFlight   int64            // guarded by mu
	served        int64            // guarded by mu
	rejected      int64            // guarded by mu
	usedIn        int64            // guarded by mu
	usedOut       int64            // guarded by mu
	rejectedByDim map[string]int64 // guarded by mu
}

func newAccount(region, name string, o Options, now time.Time) *account {
	q := o.Quota
	a := &account{
		region: region, name: name, concurrency: q.Concurrency,
		busyRetry: max(time.Millisecond, o.Minute/1000), rejectedByDim: map[string]int64{},
	}
	for d, perMinute := range [numDims]int64{q.RequestsPerMinute, q.InputTokensPerMinute, q.OutputTokensPerMinute, q.TokensPerMinute} {
		if perMinute > 0 {
			a.buckets[d] = newBucket(perMinute, o.Minute, now)
		}
	}
	a.foreign = newForeignClient(o, now)
	return a
}

// admit charges a call of cost c and counts it in flight, or refuses it. It
// returns the quotas as they are after the decision.
func (a *account) admit(now time.Time, c cost) (snapshot, *refusal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance(now)
	if r := a.check(c); r != nil {
		a.rejected++
		a.rejectedByDim[r.dim]++
		return a.snapshot(now), r
	}
	for d, b := range a.buckets {
		if b != nil {
			b.take(c[d])
		}
	}
	a.inFlight++
	a.maxInFlight = max(a.maxInFlight, a.inFlight)
	return a.snapshot(now), nil
}

// check returns why a call of cost c cannot be admitted now, or nil: a quota
// it exceeds, else the quota it waits longest for, else the concurrency cap.
// Requires mu held.
func (a *account) check(c cost) *refusal {
	var r *refusal
	for d, b := range a.buckets {
		if b == nil {
			continue
		}
		if c[d] > b.capacity+b.perNano {
			return &refusal{dim: dimNames[d], tooLarge: true, limit: b.quota, requested: asInt(c[d])}
		}
		if w := b.wait(c[d]); w > 0 && (r == nil || w > r.retryAfter) {
			r = &refusal{dim: dimNames[d], retryAfter: w, limit: b.quota, requested: asInt(c[d])}
		}
	}
	if r == nil && a.inFlight >= a.concurrency {
		r = &refusal{dim: DimConcurrency, retryAfter: a.busyRetry, limit: a.concurrency, requested: 1}
	}
	return r
}

// finish ends an admitted call that used in input tokens and produced out
// of the maxOut it reserved: the unused output comes back.
func (a *account) finish(now time.Time, in, maxOut, out int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance(now)
	unused := float64(maxOut - out)
	for _, d := range []dimension{dimOutput, dimTokens} {
		if b := a.buckets[d]; b != nil {
			b.give(unused)
		}
	}
	a.inFlight--
	a.served++
	a.usedIn = addSaturating(a.usedIn, in)
	a.usedOut = addSaturating(a.usedOut, out)
}

// peek returns the quotas at now, charging nothing.
func (a *account) peek(now time.Time) snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance(now)
	return a.snapshot(now)
}

// advance runs the foreign client's calls due by now, then refills every
// bucket to now. Requires mu held.
func (a *account) advance(now time.Time) {
	a.foreign.run(now, &a.buckets)
	for _, b := range a.buckets {
		if b != nil {
			b.refill(now)
		}
	}
}

// snapshot returns the quotas as they are. Requires mu held and advance
// called at now.
func (a *account) snapshot(now time.Time) snapshot {
	s := snapshot{at: now, hasTokens: a.buckets[dimTokens] != nil}
	for d, b := range a.buckets {
		if b != nil {
			s.dims[d] = b.state()
		}
	}
	return s
}

// report returns the account's accounting at now.
func (a *account) report(now time.Time) AccountReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance(now)
	return AccountReport{
		Region: a.region, Account: a.name, Served: a.served, Rejected: a.rejected,
		RejectedByDimension: maps.Clone(a.rejectedByDim), InputTokens: a.usedIn, OutputTokens: a.usedOut,
		MaxInFlight: a.maxInFlight, ForeignServed: a.foreign.served, ForeignRejected: a.foreign.rejected,
	}
}

// asInt returns the whole units of a cost, at most 2^62.
func asInt(units float64) int64 { return int64(math.Min(units, 1<<62)) }

// addSaturating returns a+b for b ≥ 0, or math.MaxInt64 where that
// overflows.
func addSaturating(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
