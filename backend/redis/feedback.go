package redis

import (
	"context"
	"fmt"

	"github.com/concurry/concurry/backend"
)

// Pause implements backend.Feedback: nothing is granted from spec (every
// spec when spec < 0) before until (Unix nanoseconds, rounded up to the
// µs), by any process sharing the set. The pause is stored in the set's
// state in one script call; a pause never shortens a longer one, and one
// that has already ended (by Redis time) changes nothing and returns
// backend.ErrFeedbackStale. Waiters in every
// process are told to look again, so that they sleep until the pause ends
// (or fail at once when it passes their deadline). A refusal during the
// pause names the paused spec and says to retry when it ends; Stats reports
// nothing available from it meanwhile. It fails with backend.ErrClosed
// after Close, and for a spec the set does not have.
func (s *set) Pause(ctx context.Context, spec int, until int64) error {
	if spec >= s.n {
		return fmt.Errorf("concurry: pause of limit %d: the set has %d limits", spec, s.n)
	}
	if s.isClosed() {
		return backend.ErrClosed
	}
	args := append(s.newArgs(2), max(spec, -1)+1, min(ceilMicros(until), maxDelta)) // 2^52 µs: the year 2112
	return applied(s.do(ctx, pauseEntry, args, nil, false))
}

// Lower implements backend.Feedback: what rate spec has available now is
// lowered to at most remaining, for every process sharing the set, in one
// script call that takes the difference now, as the algorithm's Lower does
// (every algorithm goes into debt for a negative remaining). A report
// with asOf (Unix nanoseconds, compared to the µs) older than the newest
// one already applied to spec lowers nothing and returns
// backend.ErrFeedbackStale. Lower never raises what is
// available. Waiters in every process are told to look again. It fails
// with backend.ErrClosed after Close, and for a spec the set does not have
// or that is a resource.
func (s *set) Lower(ctx context.Context, spec int, remaining, asOf int64) error {
	switch {
	case spec < 0 || spec >= s.n:
		return fmt.Errorf("concurry: lower of limit %d: the set has %d limits", spec, s.n)
	case !s.rate[spec]:
		return fmt.Errorf("concurry: lower of limit %d (%q): a resource limit has no rate to lower", spec, s.specs[spec].Key)
	case s.isClosed():
		return backend.ErrClosed
	}
	remaining = min(max(remaining, -maxDelta), maxDelta)
	args := append(s.newArgs(3), spec+1, remaining, min(max(floorMicros(asOf), -maxDelta), maxDelta))
	return applied(s.do(ctx, lowerEntry, args, nil, false))
}

// applied turns the reply of a pause or lower, 1 when applied and 0 when
// too late, into nil or backend.ErrFeedbackStale.
func applied(res any, err error) error {
	if err == nil && res == int64(0) {
		return backend.ErrFeedbackStale
	}
	return err
}

// ceilMicros returns the Unix nanoseconds ns in µs, rounded up.
func ceilMicros(ns int64) int64 {
	us := ns / 1000
	if ns%1000 > 0 {
		us++
	}
	return us
}

// floorMicros returns the Unix nanoseconds ns in µs, rounded down.
func floorMicros(ns int64) int64 {
	us := ns / 1000
	if ns%1000 < 0 {
		us--
	}
	return us
}
