package memset

import (
	"sync/atomic"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// state is the state of every limit of a set, as the set keeps it and as a
// projection copies it:
//
//   - block holds, spec after spec, the packed state of a rate limit
//     (algorithms.Limit.Words words: 3, or 4 for GCRA) and the held count of
//     a resource (one word). A SlidingWindow takes no words: its state
//     varies in size and is in windows.
//   - windows holds, per spec, the state of a SlidingWindow; it is nil when
//     the set has none, and nil at the other specs.
//
// So a set's whole state is one allocation, without a pointer or an object
// per limit.
type state struct {
	block   []int64
	windows []algorithms.State
}

// newState returns the state of a new set of specs: every rate limit full,
// every resource free.
func newState(specs []backend.Spec) state {
	words := 0
	for i := range specs {
		words += widthOf(&specs[i])
	}
	st := state{block: make([]int64, words)}
	off := 0
	for i := range specs {
		sp := &specs[i]
		switch {
		case sp.Kind == backend.Resource:
		case sp.Algorithm == algorithms.SlidingWindow:
			if st.windows == nil {
				st.windows = make([]algorithms.State, len(specs))
			}
			st.windows[i] = algorithms.New(sp.Algorithm, sp.Window, sp.Capacity)
		default:
			limitOf(sp).Start(st.block[off:])
		}
		off += widthOf(sp)
	}
	return st
}

// widthOf returns the number of words spec sp takes in a block.
func widthOf(sp *backend.Spec) int {
	if sp.Kind == backend.Resource {
		return 1
	}
	return limitOf(sp).Words()
}

// limitOf returns the rate limit of spec sp.
func limitOf(sp *backend.Spec) algorithms.Limit {
	return algorithms.Limit{Kind: sp.Algorithm, Window: int64(sp.Window), Capacity: sp.Capacity}
}

// offsetOf returns the offset of spec i's words in a block of specs.
func offsetOf(specs []backend.Spec, i int) int {
	off := 0
	for j := range i {
		off += widthOf(&specs[j])
	}
	return off
}

// clone returns a copy of st that shares nothing with it, in the buffers
// of into.
func (st state) clone(into state) state {
	// Word by word, atomically: a solo set's word may be read by a
	// lock-free path meanwhile (see solo.go).
	into.block = into.block[:0]
	for i := range st.block {
		into.block = append(into.block, atomic.LoadInt64(&st.block[i]))
	}
	if st.windows != nil {
		if len(into.windows) != len(st.windows) {
			into.windows = make([]algorithms.State, len(st.windows))
		}
		for i, w := range st.windows {
			if w != nil {
				into.windows[i] = w.Clone()
			}
		}
	}
	return into
}

// The functions of one limit, spec i (sp), whose words start at off, that
// the colder paths share; the hottest (fitIn, Set.take) spell out the same
// cases themselves, one call less per limit.

// available returns what rate spec i has available at t.
func (st state) available(sp *backend.Spec, i, off int, t int64) int64 {
	if sp.Algorithm == algorithms.SlidingWindow {
		return st.windows[i].Available(t)
	}
	return limitOf(sp).Available(st.block[off:], t)
}

// debt returns the debt of rate spec i at t.
func (st state) debt(sp *backend.Spec, i, off int, t int64) int64 {
	if sp.Algorithm == algorithms.SlidingWindow {
		return st.windows[i].Debt(t)
	}
	return limitOf(sp).Debt(st.block[off:], t)
}

// lower lowers what rate spec i has available at t to at most remaining.
func (st state) lower(sp *backend.Spec, i, off int, t, remaining int64) {
	if sp.Algorithm == algorithms.SlidingWindow {
		st.windows[i].Lower(t, remaining)
		return
	}
	limitOf(sp).Lower(st.block[off:], t, remaining)
}

// take records n > 0 units of spec i taken at t: from a rate limit, or
// held of a resource.
func (st state) take(sp *backend.Spec, i, off int, t, n int64) {
	switch {
	case sp.Kind == backend.Resource:
		st.block[off] += n
	case sp.Algorithm == algorithms.SlidingWindow:
		st.windows[i].Take(t, n)
	default:
		limitOf(sp).Take(st.block[off:], t, n)
	}
}
