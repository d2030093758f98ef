package redis

import (
	"context"
	"strconv"
	"time"

	"github.com/concurry/concurry/backend"
)

// armRenew schedules the next renewal of the held leases. Requires mu held.
func (s *Set) armRenew() {
	period := s.b.opts.LeaseTTL / 3
	if s.renew == nil {
		s.renew = time.AfterFunc(period, s.renewLeases)
		return
	}
	s.renew.Reset(period)
}

// renewLeases moves the expiry of every lease this Set holds, in one script
// call, and forgets the leases Redis no longer has (they expired: their
// settle would change nothing). It runs on the renewal timer's goroutine.
func (s *Set) renewLeases() {
	s.mu.Lock()
	ids := make([]any, 0, len(s.leases))
	for id := range s.leases {
		ids = append(ids, strconv.FormatUint(uint64(id), 10))
	}
	s.mu.Unlock()
	if len(ids) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), s.b.opts.RenewTimeout)
		res, err := s.run(ctx, renewScript, ids...)
		cancel()
		if err == nil {
			s.forget(res)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.leases) > 0 {
		s.armRenew()
	}
}

// forget drops the leases named in lost.
func (s *Set) forget(lost []any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range lost {
		str, _ := v.(string)
		if id, err := strconv.ParseUint(str, 10, 64); err == nil {
			delete(s.leases, backend.Lease(id))
		}
	}
}
