package redis

import (
	"context"
	"strconv"
	"strings"
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
	var clock any = "" // Redis TIME
	if s.b.clock != nil {
		clock = s.b.clock()
	}
	args := append(s.newArgs(1+len(s.leases)), clock)
	for _, h := range s.leases {
		args = append(args, h.member)
	}
	s.mu.Unlock()
	if len(args) > 2 {
		ctx, cancel := context.WithTimeout(context.Background(), s.b.opts.RenewTimeout)
		res, err := s.b.call(ctx, renewEntry, s.keys, args)
		cancel()
		if lost, ok := res.([]any); err == nil && ok {
			s.forget(lost)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.leases) > 0 {
		s.armRenew()
	}
}

// forget drops the leases whose members are in lost.
func (s *Set) forget(lost []any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range lost {
		str, _ := v.(string)
		str, _, _ = strings.Cut(str, " ")
		if id, err := strconv.ParseUint(str, 10, 64); err == nil {
			delete(s.leases, backend.Lease(id))
		}
	}
}
