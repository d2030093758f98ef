package concurry

import (
	"slices"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// definition is what a LimitSet derives from its limits once: the specs the
// backend sees and the tables that turn a request into one amount per spec.
// It never changes after newDefinition, so several sets may share one (every
// identity of a Keyed does).
type definition struct {
	limits   []Limit
	specs    []backend.Spec
	kinds    []LimitKind
	keys     []string
	keySpecs [][]int // per key of keys: indices of its specs, shortest window first
	// lookup is the order in which a request's keys are looked up: the
	// indices of keys, RateLimit keys first, since requests and usage name
	// them and rarely the others (a lookup that misses costs a hash).
	lookup []int
	// lead is the first key of lookup when it has a single spec, and
	// leadSpec that spec (−1 when the first key has several): a request or
	// usage naming that key alone, the common case, is filled with one
	// lookup and no loop (see LimitSet.fill and checkUsage).
	lead     string
	leadSpec int
	// leadBase is, when a request naming lead alone can be granted without
	// a holding (see LimitSet.acquireLead), what such a request takes of
	// every spec but leadSpec: 1 of each call and resource limit, 0 of the
	// other rate limits (and 0 at leadSpec, whose amount the request
	// gives). It is nil for a set of more than maxLeadSpecs limits or with
	// a SlidingWindow, whose grants take the general path.
	leadBase []int64
	index    map[string][]int // key → its entry of keySpecs
	auto     []int            // specs a request takes 1 of when it does not name them
	refunds  []bool           // per spec: a rate limit whose algorithm refunds
	hasRate  bool
	// noRate is set when every limit is a CallLimit or a ResourceLimit:
	// a request naming no key then takes one of each, ones, and its grant
	// has nothing to settle but the resources (see LimitSet.acquireLight).
	noRate bool
	// rateSpecs has bit i set for every rate spec i, and allUnreported is
	// the ErrUsageNotReported error naming every rate key (see
	// LimitSet.unreported).
	rateSpecs     uint64
	allUnreported error
	hasResource   bool
	ones, zeros   []int64 // one amount per spec: 1, 0
}

// maxLeadSpecs is the most limits a set may have for a request naming its
// lead key alone to be granted without a holding: the handle's Update
// checks usage against a vector of one amount per spec on its stack.
const maxLeadSpecs = 8

func isSlidingWindow(sp backend.Spec) bool {
	return sp.Kind == backend.Rate && sp.Algorithm == algorithms.SlidingWindow
}

// newDefinition validates limits and derives their definition.
func newDefinition(limits []Limit) (*definition, error) {
	specs, err := validateLimits(limits)
	if err != nil {
		return nil, err
	}
	d := &definition{
		limits:  slices.Clone(limits),
		specs:   specs,
		kinds:   make([]LimitKind, len(specs)),
		refunds: make([]bool, len(specs)),
		index:   make(map[string][]int),
	}
	for i, l := range limits {
		d.kinds[i] = kindOf(l)
		key := specs[i].Key
		if _, seen := d.index[key]; !seen {
			d.keys = append(d.keys, key)
		}
		d.index[key] = append(d.index[key], i)
		d.refunds[i] = specs[i].Kind == backend.Rate && specs[i].Algorithm.Refunds()
		if d.kinds[i] == KindRate {
			d.hasRate = true
		} else {
			d.auto = append(d.auto, i)
		}
		d.hasResource = d.hasResource || d.kinds[i] == KindResource
	}
	d.noRate = !d.hasRate
	var rateKeys []string
	for i, sp := range specs {
		if d.kinds[i] == KindRate {
			d.rateSpecs |= 1 << i
			if !containsStr(rateKeys, sp.Key) {
				rateKeys = append(rateKeys, sp.Key)
			}
		}
	}
	d.allUnreported = &unreportedError{rateKeys}
	d.ones, d.zeros = make([]int64, len(specs)), make([]int64, len(specs))
	for i := range d.ones {
		d.ones[i] = 1
	}
	for k, key := range d.keys {
		idx := d.index[key]
		slices.SortStableFunc(idx, func(a, b int) int { return int(specs[a].Window - specs[b].Window) })
		d.keySpecs = append(d.keySpecs, idx)
		if d.kinds[idx[0]] == KindRate {
			d.lookup = append(d.lookup, k)
		}
	}
	for k, key := range d.keys {
		if d.kinds[d.index[key][0]] != KindRate {
			d.lookup = append(d.lookup, k)
		}
	}
	d.leadSpec = -1
	if len(d.lookup) > 0 && len(d.keySpecs[d.lookup[0]]) == 1 {
		d.lead, d.leadSpec = d.keys[d.lookup[0]], d.keySpecs[d.lookup[0]][0]
	}
	if d.leadSpec >= 0 && len(specs) <= maxLeadSpecs && !slices.ContainsFunc(specs, isSlidingWindow) {
		d.leadBase = make([]int64, len(specs))
		for _, i := range d.auto {
			d.leadBase[i] = 1
		}
		d.leadBase[d.leadSpec] = 0
	}
	return d, nil
}
