package concurry

import (
	"context"
	"math"
	"time"

	"github.com/concurry/concurry/backend"
)

// LimitStats describes one limit of a set. Available, InUse, Debt and
// Utilization are read from the backend, so for a shared set they cover every
// process; the counters (Granted to Feedback) count what this LimitSet value
// did. Every counter saturates at math.MaxInt64 rather than wrapping.
// Refunded counts what the algorithm gave back, which a full bucket caps
// (TokenBucket, GCRA); on backend/unixsock, whose Release does not wait for
// the server, a refund counts as asked.
type LimitStats struct {
	Key         string
	Kind        LimitKind
	Algorithm   Algorithm     // rate and call limits only
	Capacity    int64         //
	Window      time.Duration // rate and call limits only
	Available   int64         // units that could be taken now; never negative
	InUse       int64         // resource units held now
	Debt        int64         // rate units charged beyond the limit (overage) that still count: not yet refilled, drained or expired
	Utilization float64       // 0..1: the share of capacity not available now
	Granted     int64         // units granted
	Rejected    int64         // TryAcquire calls refused that asked for this limit
	Blocked     int64         // requests this limit kept from being granted at once (refusals it caused and waits on it)
	Waited      time.Duration // total time requests waited on this limit, the one that blocked them
	Refunded    int64         // units given back because they were granted but not used (refunding algorithms); see above
	Overage     int64         // units used beyond what was granted, charged as debt
	Feedback    int64         // upstream feedback applied to this limit (Pause, Lower); a pause of every key counts on the first
}

// Refusals counts failed acquisitions of a set by cause (see RefusalCause).
type Refusals struct {
	WouldBlock  int64 // TryAcquire could not be granted at once
	Deadline    int64 // a deadline came, or would come, before the grant
	Canceled    int64 // the caller's context was cancelled
	Closed      int64 // the set was closed
	Unavailable int64 // a shared backend could not be reached
	Invalid     int64 // the request could never be granted
}

// Stats describes a LimitSet at an instant.
type Stats struct {
	Name   string
	Limits []LimitStats // in definition order
	// Degraded counts the decisions a shared backend made while its store
	// was unreachable (refusals when failing closed, grants when failing
	// open); 0 for backends without an outage policy.
	Degraded int64
	// RenewFailures counts lease renewals of this set's holdings that failed
	// (Redis); LeasesLost counts holdings that ended before their release (a
	// lease expired, a Unix-socket connection dropped while holding). Both
	// are 0 for the in-memory backend.
	RenewFailures int64
	LeasesLost    int64
	// Refusals counts the acquisitions of this LimitSet value that failed,
	// by cause.
	Refusals Refusals
}

// Limit returns the stats of key's limit; where several limits share the key,
// the one with the shortest window.
func (s Stats) Limit(key string) (LimitStats, bool) {
	var best LimitStats
	found := false
	for _, l := range s.Limits {
		if l.Key == key && (!found || l.Window < best.Window) {
			best, found = l, true
		}
	}
	return best, found
}

// Stats returns the state and counters of every limit of the set. When a
// shared backend cannot report its state (its store is unreachable), Stats
// returns the backend's error together with what this process knows: the
// counters and Degraded, with Available, InUse and Utilization left zero.
func (ls *LimitSet) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Name: ls.name, Limits: make([]LimitStats, len(ls.specs))}
	if d, ok := ls.set.(backend.DegradedCounter); ok {
		st.Degraded = d.Degraded()
	}
	r := &ls.refusals
	st.Refusals = Refusals{
		WouldBlock: r[CauseWouldBlock].Load(), Deadline: r[CauseDeadline].Load(), Canceled: r[CauseCanceled].Load(),
		Closed: r[CauseClosed].Load(), Unavailable: r[CauseUnavailable].Load(), Invalid: r[CauseInvalid].Load(),
	}
	if f, ok := ls.set.(backend.FaultCounter); ok {
		faults := f.Faults()
		st.RenewFailures, st.LeasesLost = faults.RenewFailures, faults.LeasesLost
	}
	var now []backend.SpecStats
	var err error
	if ls.set != nil {
		now, err = ls.set.Stats(ctx)
	}
	auto := ls.grants.auto() // one unit of every call and resource limit each
	for i, sp := range ls.specs {
		c := &ls.perLimit[i]
		granted := ls.grants.spec(i)
		if ls.kinds[i] != KindRate {
			if granted += auto; granted < auto { // saturate, as the counters do
				granted = math.MaxInt64
			}
		}
		l := LimitStats{
			Key: sp.Key, Kind: ls.kinds[i], Capacity: sp.Capacity,
			Granted: granted, Rejected: c.rejected.Load(), Blocked: c.blocked.Load(), Waited: time.Duration(c.waited.Load()),
			Refunded: c.refunded.Load(), Overage: c.overage.Load(), Feedback: c.feedback.Load(),
		}
		if sp.Kind == backend.Rate {
			l.Algorithm, l.Window = Algorithm(sp.Algorithm), sp.Window
		}
		if err == nil {
			l.Available, l.InUse, l.Debt = now[i].Available, now[i].InUse, now[i].Debt
			l.Utilization = min(1, max(0, float64(sp.Capacity-l.Available)/float64(sp.Capacity)))
		}
		st.Limits[i] = l
	}
	return st, err
}
