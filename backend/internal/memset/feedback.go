package memset

import (
	"context"
	"fmt"
	"math"

	"github.com/concurry/concurry/backend"
)

// Pause implements backend.Feedback: nothing is granted from spec (every
// spec when spec < 0) before until, in Unix nanoseconds. Waiters for it wake
// exactly at until, a refusal during the pause says to retry then, and
// Stats reports nothing available until then. A pause never shortens a
// longer one; one that has already ended changes nothing and returns
// backend.ErrFeedbackStale. It fails with
// backend.ErrClosed after Close, and for a spec the set does not have.
func (h *Handle) Pause(_ context.Context, spec int, until int64) error {
	return h.s.pause(h, spec, until)
}

// Lower implements backend.Feedback: it lowers what rate spec has available
// now to at most remaining, taking the difference now (algorithms.State
// Lower says how each algorithm takes it; every algorithm goes into debt
// for a negative remaining). A report with asOf (Unix nanoseconds) older
// than the newest one already applied to spec lowers nothing and returns
// backend.ErrFeedbackStale. It fails with
// backend.ErrClosed after Close, and for a spec the set does not have or
// that is a resource.
func (h *Handle) Lower(_ context.Context, spec int, remaining, asOf int64) error {
	return h.s.lower(h, spec, remaining, asOf)
}

// pause implements Handle.Pause.
func (s *Set) pause(h *Handle, spec int, until int64) error {
	if spec >= len(s.specs) {
		return fmt.Errorf("concurry: pause of limit %d: the set has %d limits", spec, len(s.specs))
	}
	t := now()
	s.lock()
	defer s.mu.Unlock()
	if h.closed() {
		return backend.ErrClosed
	}
	if until <= t {
		return backend.ErrFeedbackStale
	}
	s.catchUp(t)
	s.freeze() // a solo set grants nothing without the lock until the pause ends
	s.invalidate()
	x := s.extra()
	if x.paused == nil {
		x.paused = make([]int64, len(s.specs))
	}
	lo, hi := spec, spec+1
	if spec < 0 {
		lo, hi = 0, len(s.specs)
	}
	for i := lo; i < hi; i++ {
		x.paused[i] = max(x.paused[i], until)
	}
	x.pausedEnd = max(x.pausedEnd, until)
	if s.waiting() {
		s.serve(t) // the head's timer moves to the pause's end, or its deadline fails
	}
	return nil
}

// lower implements Handle.Lower.
func (s *Set) lower(h *Handle, spec int, remaining, asOf int64) error {
	switch {
	case spec < 0 || spec >= len(s.specs):
		return fmt.Errorf("concurry: lower of limit %d: the set has %d limits", spec, len(s.specs))
	case s.specs[spec].Kind == backend.Resource:
		return fmt.Errorf("concurry: lower of limit %d (%q): a resource limit has no rate to lower", spec, s.specs[spec].Key)
	}
	t := now()
	s.lock()
	defer s.mu.Unlock()
	if h.closed() {
		return backend.ErrClosed
	}
	x := s.extra()
	if x.reported == nil {
		x.reported = make([]int64, len(s.specs))
		for i := range x.reported {
			x.reported[i] = math.MinInt64
		}
	}
	if asOf < x.reported[spec] {
		return backend.ErrFeedbackStale // a newer report was applied
	}
	x.reported[spec] = asOf
	s.catchUp(t)
	s.invalidate()
	sp := &s.specs[spec]
	s.state().lower(sp, spec, offsetOf(s.specs, spec), t, remaining)
	if s.waiting() {
		s.serve(t) // the head's timer moves later, or its deadline fails
	}
	return nil
}
