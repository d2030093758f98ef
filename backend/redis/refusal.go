package redis

import (
	"context"
	"errors"
	"time"

	"github.com/concurry/concurry/backend"
)

// refusal returns the refusal of the request r answered: a non-waiting one
// names the resource without room (RetryAfter 0: only a release can make
// room), or else the bottleneck and how long until its instant; a deadline
// refusal names the bottleneck whose instant is after the deadline, and how
// long until it, whatever resources are held. queued says that earlier
// requests of this process are waiting. RetryAfter is computed by the
// script, from the algorithms and pauses, in Redis time.
func (s *set) refusal(r reply, deadline, queued bool) *backend.RefusalError {
	e := &backend.RefusalError{Deadline: deadline, Queued: queued}
	switch {
	case r.short >= 0 && (!deadline || r.ready <= r.now || r.slow < 0):
		e.Key = s.specs[r.short].Key
	case r.slow >= 0:
		e.Key = s.specs[r.slow].Key
		e.RetryAfter = time.Duration(max(r.ready-r.now, 0)) * time.Microsecond
	}
	return e
}

// queuedRefusal returns the refusal of a non-waiting request made while
// requests of this process wait in the set: Queued, with the key and
// RetryAfter projected through the waiters (see projectDeadline). When the
// projection cannot be made, the refusal says only that it is queued.
func (s *set) queuedRefusal(ctx context.Context, amounts []int64, req *request) error {
	r, err := s.project(ctx, amounts, nil)
	if err != nil {
		req.refused(-1)
		if errors.Is(err, backend.ErrBackendUnavailable) {
			return &backend.RefusalError{Queued: true}
		}
		return err
	}
	req.refused(r.blocker())
	return s.refusal(r, false, true)
}
