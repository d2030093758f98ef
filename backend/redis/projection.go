package redis

import (
	"context"
	"errors"
	"fmt"

	"github.com/concurry/concurry/backend"
)

// projectDeadline fails, with a deadline refusal (matching
// context.DeadlineExceeded), when the rate limits and pauses cannot grant
// w before ctx's deadline even if every waiter ahead of it in this process
// is granted as soon as it can, as the in-memory backend does. Waiters of
// other processes are not counted: they are not ordered with this
// process's. It returns the spec that keeps w waiting (-1 if unknown). When
// Redis cannot be reached the projection is skipped; the wait finds out.
func (s *set) projectDeadline(ctx context.Context, w *waiter) (int, error) {
	r, err := s.project(ctx, w.amounts, w)
	switch {
	case errors.Is(err, backend.ErrBackendUnavailable):
		return -1, nil
	case err != nil:
		return -1, err
	}
	return r.blocker(), s.checkDeadline(ctx, r, true)
}

// project returns, as a refusal's reply, when the rate limits and pauses
// could grant amounts if every waiter of this process ahead of it is
// granted first, each as soon as it can and keeping the resources it takes:
// the waiters ahead of w, or every waiter when w is nil. It holds the turn
// meanwhile, so that no waiter it counts is being granted.
func (s *set) project(ctx context.Context, amounts []int64, w *waiter) (reply, error) {
	if err := s.takeTurn(ctx); err != nil {
		return reply{}, err
	}
	defer s.giveTurn()
	l := s.line
	l.mu.Lock()
	var ahead [][]int64
	for _, x := range l.queue {
		if x == w {
			break
		}
		if x.claim == nil || !x.claim.Taken() {
			ahead = append(ahead, x.amounts)
		}
	}
	l.mu.Unlock()
	args := append(s.newArgs(1+(len(ahead)+1)*s.n), len(ahead))
	for _, a := range append(ahead, amounts) {
		for _, n := range a {
			args = append(args, n)
		}
	}
	res, err := s.do(ctx, projectEntry, args, nil, false)
	if err != nil {
		return reply{}, err
	}
	v, err := integers(res, 0)
	if err != nil || len(v) != 4 {
		return reply{}, fmt.Errorf("%w: projection %v", ErrScript, res)
	}
	return reply{code: codeRefused, now: v[0], ready: v[1], slow: int(v[2]) - 1, short: int(v[3]) - 1}, nil
}
