package concurry

import (
	"context"
	"time"

	"github.com/concurry/concurry/backend"
)

// LimitStats describes one limit of a set. Available, InUse and Utilization
// are read from the backend, so for a shared set they cover every process; the
// counters (Granted to Overage) count what this LimitSet value did.
type LimitStats struct {
	Key         string
	Kind        LimitKind
	Algorithm   Algorithm     // rate and call limits only
	Capacity    int64         //
	Window      time.Duration // rate and call limits only
	Available   int64         // units that could be taken now
	InUse       int64         // resource units held now
	Utilization float64       // 0..1: the share of capacity not available now
	Granted     int64         // units granted (every counter saturates at MaxInt64, never wraps)
	Rejected    int64         // TryAcquire calls refused that asked for this limit
	Waited      time.Duration // total time granted Acquire calls spent waiting
	Refunded    int64         // units given back by Update
	Overage     int64         // units used beyond what was granted
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
	if f, ok := ls.set.(backend.FaultCounter); ok {
		faults := f.Faults()
		st.RenewFailures, st.LeasesLost = faults.RenewFailures, faults.LeasesLost
	}
	var now []backend.SpecStats
	var err error
	if ls.set != nil {
		now, err = ls.set.Stats(ctx)
	}
	for i, sp := range ls.specs {
		c := &ls.counters[i]
		l := LimitStats{
			Key: sp.Key, Kind: ls.kinds[i], Capacity: sp.Capacity,
			Granted: c.granted.Load(), Rejected: c.rejected.Load(), Waited: time.Duration(c.waited.Load()),
			Refunded: c.refunded.Load(), Overage: c.overage.Load(),
		}
		if sp.Kind == backend.Rate {
			l.Algorithm, l.Window = Algorithm(sp.Algorithm), sp.Window
		}
		if err == nil {
			l.Available, l.InUse = now[i].Available, now[i].InUse
			l.Utilization = min(1, max(0, float64(sp.Capacity-l.Available)/float64(sp.Capacity)))
		}
		st.Limits[i] = l
	}
	return st, err
}
