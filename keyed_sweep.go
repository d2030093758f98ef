package concurry

import (
	"context"
	"time"

	"github.com/concurry/concurry/backend"
)

// Forgetting idle identities: when a Keyed sweeps a shard, and which of its
// identities it may forget (see Keyed's doc comment for the rule).

// paceFor raises k's sweep pace to the longest window of def.
func (k *Keyed) paceFor(def *definition) {
	for _, sp := range def.specs {
		for {
			p := k.pace.Load()
			if int64(sp.Window) <= p || k.pace.CompareAndSwap(p, int64(sp.Window)) {
				break
			}
		}
	}
}

// sweepShard forgets the entries of sh that are idle and full: all of them
// when all is set, else those not used since sh's previous sweep. It
// requires sh.mu held, and unlocks it; it paces sh's next sweep.
//
// It decides in two steps, since a shared backend's isFull is I/O, which
// may not run under the lock: under the lock it holds the candidates (a use
// they keep from being forgotten); outside it, it asks each whether it is
// full; under the lock again it forgets those that are full, that nothing
// else uses, and that were not used since the sweep began (a use in between
// may have taken from the set after it was seen full: its epoch is cur or
// later, even if another sweep bumped it since). Uses are counted under the
// lock, so none can begin while the last step decides.
func (k *Keyed) sweepShard(ctx context.Context, sh *keyedShard, all bool) int {
	prev := sh.epoch
	sh.epoch++
	cur := sh.epoch
	sh.swept = time.Now()
	var idle []*keyedEntry
	for _, e := range sh.m {
		if e.active.Load() == 0 && (all || e.used != prev) {
			e.active.Add(1) // hold it while we look, outside the lock
			idle = append(idle, e)
		}
	}
	sh.mu.Unlock()
	full := make([]bool, len(idle))
	for i, e := range idle {
		full[i] = !k.local || e.set.isFull(ctx)
	}
	var gone []*LimitSet
	sh.mu.Lock()
	for i, e := range idle {
		if e.active.Add(-1) == 0 && full[i] && int32(e.used-cur) < 0 && sh.m[e.id] == e {
			delete(sh.m, e.id)
			gone = append(gone, e.set)
		}
	}
	sh.sweepAt = len(sh.m) + max(keyedMinGrowth, len(sh.m)/2)
	if !all {
		sh.sweeping = false
	}
	sh.mu.Unlock()
	for _, set := range gone {
		_ = set.Close()
	}
	return len(gone)
}

// isFull reports whether every limit of ls could grant its whole capacity
// now and no resource is held: a fresh set would be the same.
func (ls *LimitSet) isFull(ctx context.Context) bool {
	if ls.set == nil {
		return true
	}
	if i, ok := ls.set.(backend.Idler); ok {
		return i.Idle()
	}
	st, err := ls.set.Stats(ctx)
	if err != nil {
		return false
	}
	for i, s := range st {
		if s.Available < ls.specs[i].Capacity || s.InUse != 0 {
			return false
		}
	}
	return true
}
