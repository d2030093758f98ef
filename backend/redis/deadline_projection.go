package redis

import (
	"context"
	"errors"
	"fmt"

	"github.com/concurry/concurry/backend"
)

// projectDeadline fails, with an error matching context.DeadlineExceeded,
// when the rate limits cannot grant w before ctx's deadline even if every
// waiter ahead of it in this process is granted as soon as it can, as the
// in-memory backend does. Waiters of other processes are not counted: they
// are not ordered with this process's. When Redis cannot be reached the
// projection is skipped; the wait finds out.
func (s *set) projectDeadline(ctx context.Context, w *waiter) error {
	if err := s.takeTurn(ctx); err != nil {
		return err
	}
	defer s.giveTurn()
	s.mu.Lock()
	var ahead [][]int64
	for _, x := range s.queue {
		if x == w {
			break
		}
		if x.claim == nil || !x.claim.Taken() {
			ahead = append(ahead, x.amounts)
		}
	}
	s.mu.Unlock()
	if len(ahead) == 0 {
		return nil
	}
	args := append(s.newArgs(1+(len(ahead)+1)*s.n), len(ahead))
	for _, a := range append(ahead, w.amounts) {
		for _, n := range a {
			args = append(args, n)
		}
	}
	res, err := s.do(ctx, projectEntry, args, nil)
	if errors.Is(err, backend.ErrBackendUnavailable) {
		return nil
	}
	if err != nil {
		return err
	}
	v, err := integers(res, 0)
	if err != nil || len(v) != 2 {
		return fmt.Errorf("%w: projection %v", ErrScript, res)
	}
	return checkDeadline(ctx, reply{now: v[0], ready: v[1]})
}
