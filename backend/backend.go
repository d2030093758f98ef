package backend

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/concurry/concurry/algorithms"
)

// Kind says how a limit is held.
type Kind uint8

const (
	// Rate limits are consumed over time: CallLimit and RateLimit.
	Rate Kind = iota
	// Resource limits are counting semaphores held until release.
	Resource
)

// Spec is one limit as a backend sees it. Window and Algorithm are ignored
// for Resource limits.
type Spec struct {
	Key       string
	Kind      Kind
	Algorithm algorithms.Kind
	Window    time.Duration
	Capacity  int64
}

// Backend opens limit sets. Implementations must be safe for concurrent use.
type Backend interface {
	// Open returns the set of the given name and limits. An empty name asks
	// for a private set (only the in-memory backend allows that). A shared
	// backend that already holds the name with other specs returns an error
	// matching ErrLimitMismatch.
	Open(ctx context.Context, name string, specs []Spec) (Set, error)
}

// Lease identifies one granted acquisition within its set. Its meaning is
// the backend's own; the zero Lease is valid.
type Lease uint64

// AcquireOptions tune one Set.Acquire call.
type AcquireOptions struct {
	// Wait makes Acquire block until the request can be granted or ctx
	// ends. Without it Acquire fails with ErrWouldBlock unless it can grant
	// at once and no earlier request is waiting.
	Wait bool
	// Claim, when not nil, is shared by several concurrent Acquire calls on
	// different sets (a LimitPool waiting on all of them). A set grants only
	// after it wins the claim, and abandons the wait with ErrClaimed when
	// another set has won it.
	Claim *Claim
	// Report, when not nil, receives what the call learned about waiting.
	// A backend fills it before Acquire returns, granted or not.
	Report *AcquireReport
	// OnWait, when not nil, is called once, outside any lock, at the instant
	// the request starts to wait (it could not be granted at once), with the
	// index of the spec that blocks it (-1 when the backend cannot tell). It
	// is how hooks learn of a wait as it begins.
	OnWait func(spec int)
}

// AcquireReport is what one Set.Acquire call reports besides its result.
type AcquireReport struct {
	// Waited is true when the request was not granted at once but queued
	// (whatever the outcome of the wait).
	Waited bool
	// Blocker is the index of the spec that kept the request from being
	// granted at once, -1 when none did or the backend cannot tell.
	Blocker int
	// Duration is how long the request waited, from the instant it queued
	// to the instant its wait ended; 0 when it did not wait.
	Duration time.Duration
	// Degraded is true when the decision was made without the backend's
	// store (an outage policy granted or refused it).
	Degraded bool
}

// Set is one named set of limits inside a backend. Implementations must be
// safe for concurrent use.
type Set interface {
	// Acquire takes amounts[i] units of spec i for every i where amounts[i]
	// is positive, all of them or none. Blocked requests are served first
	// come, first served. A ctx deadline that cannot be met fails at once
	// with an error matching context.DeadlineExceeded; cancellation while
	// waiting leaves the set as it was. Closing the set wakes waiters with
	// ErrClosed.
	Acquire(ctx context.Context, amounts []int64, opts AcquireOptions) (Lease, error)
	// Settle applies reported usage to a granted lease. For each Rate spec
	// i, delta[i] is the usage not yet accounted: positive charges overage
	// (the limit may go into debt), negative refunds where the algorithm
	// refunds. delta may be nil. When final is true the lease ends and the
	// Resource units in held are returned; a backend may defer non-final
	// deltas until the final call. Settle returns the units it refunded per
	// spec in refunded when that is not nil.
	//
	// The root package settles each lease once, at Release, with final true
	// and the whole usage; non-final calls are for other users of a Set.
	Settle(ctx context.Context, lease Lease, held, delta []int64, final bool, refunded []int64) error
	// Stats reports, per spec in definition order, the units available now
	// and (for Resource specs) the units held.
	Stats(ctx context.Context) ([]SpecStats, error)
	// Close wakes every waiter with ErrClosed and fails later acquisitions;
	// granted leases can still be settled. Close is idempotent.
	Close() error
}

// SpecStats is one limit's state at an instant.
type SpecStats struct {
	Available int64 // units that could be taken now (never negative)
	InUse     int64 // Resource units held
	Debt      int64 // Rate units charged beyond the limit (overage) not yet refilled; 0 when none
}

// Claim is a one-shot token: the first TryClaim returns true, every later one
// false. The zero value is ready to use and safe for concurrent use.
type Claim struct {
	taken atomic.Bool
	check bool // see NewCheckClaim

	// AcrossBackends, set before the Acquire calls sharing the claim start,
	// says that they go to more than one Backend (a LimitPool over sets of
	// different backends). A backend whose grants are made elsewhere, where
	// the other backends' takers of the claim cannot be seen (a server),
	// then asks there only whether a request fits, with a claim from
	// NewCheckClaim, and takes the claim before it takes units: a set that
	// loses takes nothing, even of a limit that cannot give units back.
	AcrossBackends bool
}

// NewCheckClaim returns a claim that no TryClaim ever wins and that is never
// Taken: an Acquire with Wait that carries it waits like any other request
// and, at the instant it would be granted, returns ErrClaimed having taken
// nothing; without Wait it returns ErrClaimed at once when it would be
// granted now. It tells when a request fits, for a caller that then takes
// the real claim and acquires.
func NewCheckClaim() *Claim { return &Claim{check: true} }

// Checks reports whether c came from NewCheckClaim.
func (c *Claim) Checks() bool { return c.check }

// TryClaim takes the claim and reports whether this call took it.
func (c *Claim) TryClaim() bool { return !c.check && c.taken.CompareAndSwap(false, true) }

// Taken reports whether the claim has been taken.
func (c *Claim) Taken() bool { return c.taken.Load() }

// DegradedCounter is implemented by a Set that can make decisions while its
// store is unreachable (a fail-open or fail-closed outage policy). Degraded
// returns how many it made; LimitSet.Stats reports it.
type DegradedCounter interface {
	Degraded() int64
}

// FaultCounter is implemented by a Set whose holdings can end before their
// release (leases that must be renewed, connections that can drop). Faults
// returns what it counted so far; LimitSet.Stats reports it.
type FaultCounter interface {
	Faults() Faults
}

// Faults counts the ways holdings of a set ended early.
type Faults struct {
	// RenewFailures counts lease renewals that failed (the store was
	// unreachable or answered an error). A holding survives failed renewals
	// until its lease expires.
	RenewFailures int64
	// LeasesLost counts holdings that ended before their release: a lease
	// that expired, or a connection that dropped while holding.
	LeasesLost int64
}

// LeaseChecker is implemented by a Set whose holdings can end before their
// release (a lease that expired, a connection that dropped). CheckLease
// reports, without I/O, whether lease is still held: nil while it is, or an
// error matching ErrLeaseLost once it is known to be lost. The root package
// calls it from Update, so that a holder hears of the loss before Release.
type LeaseChecker interface {
	CheckLease(lease Lease) error
}

// Idler is implemented by a Set that can tell cheaply, without I/O or
// allocation, whether it is exactly as a new set of its specs would be:
// every limit full, nothing held, nobody waiting, no feedback in force. Keyed
// forgets only such sets.
type Idler interface {
	Idle() bool
}

// Releaser is implemented by a Set that ends a lease in one call: it
// applies the final usage delta (as Settle with final true) and returns the
// resources in held, without reporting refunded units. The root package
// prefers it to Settle when the release refunds nothing, or when the set
// is a Pipeliner.
type Releaser interface {
	Release(ctx context.Context, lease Lease, held, delta []int64) error
}

// Pipeliner is implemented by a Set whose Release does not wait for the
// outcome (backend/unixsock writes it and goes on), so that Settle, which
// must wait to report the units refunded, costs a round trip more.
// Pipelined reports whether this holds; the root package then counts a
// refund as asked, not as made.
type Pipeliner interface {
	Pipelined() bool
}

// LeaseFree is implemented by a Set whose grants hold no lease: Acquire
// returns the zero Lease, a grant of call limits alone leaves nothing to end
// (its Release, with every delta zero, would change nothing, so the caller
// may skip it), and a grant of call and resource limits is ended by
// Release with held alone. The root package uses it to keep such grants
// off its per-acquisition bookkeeping. LeaseFree reports whether this holds.
type LeaseFree interface {
	LeaseFree() bool
}

// LeadGranter is implemented by a LeaseFree Set that can grant and end the
// common request without keeping anything for it: one amount per spec as
// base gives them, with n at spec lead instead (base: 1 at every call and
// resource spec, 0 at the other rate specs). The caller keeps base
// unchanged; the Set keeps neither base nor anything of the grant, so the
// root package records such a grant in its handle alone.
type LeadGranter interface {
	// GrantLead grants base with n at spec lead when the set can grant it
	// at once, and reports whether it did. When it did not (nobody may
	// jump a waiter, a limit lacks room, a pause is in force, the set was
	// closed, or the set cannot tell without its general path) it took
	// nothing, and the caller asks Acquire, which grants, queues or refuses.
	GrantLead(base []int64, lead int, n int64) bool
	// ReleaseLead ends a grant of GrantLead as Release would with held
	// base (n at lead) and delta, the usage less the grant, at lead alone
	// (0 at every other spec). It returns the units the refund gave back
	// at lead, as Settle reports them. It cannot fail.
	ReleaseLead(base []int64, lead int, n, delta int64) (refunded int64)
}

// Feedback is implemented by a Set that accepts facts from the upstream the
// limits stand for (an API answering 429 or sending rate-limit headers),
// atomically and for every process sharing the set.
type Feedback interface {
	// Pause grants nothing from spec (every spec when spec < 0) before the
	// instant until (Unix nanoseconds); waiters wake at until. A pause
	// never shortens an earlier, longer one. A pause that has already ended
	// changes nothing and returns ErrFeedbackStale.
	Pause(ctx context.Context, spec int, until int64) error
	// Lower lowers what spec has available now to at most remaining, taking
	// the difference now (as debt where the algorithm keeps debt). asOf
	// (Unix nanoseconds) is when the upstream's report was true: a report
	// older than one already applied to spec lowers nothing and returns
	// ErrFeedbackStale. Lower never raises what is available.
	Lower(ctx context.Context, spec int, remaining, asOf int64) error
}
