package redis

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/concurry/concurry/backend"
)

// armRenew schedules the next renewal of the held leases, unless one is
// scheduled or running. Requires mu held.
func (s *set) armRenew() {
	if s.armed {
		return
	}
	s.armed = true
	period := s.b.opts.LeaseTTL / 3
	if s.renew == nil {
		s.renew = time.AfterFunc(period, s.renewLeases)
		return
	}
	s.renew.Reset(period)
}

// stopRenew stops the renewals once no lease is held. Requires mu held.
func (s *set) stopRenew() {
	if len(s.leases) == 0 && s.renew != nil && s.renew.Stop() {
		s.armed = false
	}
}

// renewLeases moves the expiry of every lease this set holds and has not
// lost, in one script call bounded by Options.RenewTimeout, and marks lost
// the leases Redis no longer has. It runs on the renewal timer's goroutine.
// A failed renewal is counted and logged, and the next one comes a period
// later: a lease survives failed renewals until it expires.
func (s *set) renewLeases() {
	s.mu.Lock()
	var clock any = "" // Redis TIME
	if s.b.clock != nil {
		clock = s.b.clock()
	}
	args := append(s.newArgs(1+len(s.leases)), clock)
	ids := make([]backend.Lease, 0, len(s.leases))
	for id, h := range s.leases {
		if !h.lost {
			args = append(args, h.member)
			ids = append(ids, id)
		}
	}
	sent := time.Now()
	if len(ids) > 0 {
		s.renewals = append(s.renewals, sent)
	}
	s.mu.Unlock()
	if len(ids) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), s.b.opts.RenewTimeout)
		call := func(ctx context.Context) (any, error) {
			res, err := s.b.call(ctx, renewEntry, s.keys, s.boxed, args, s.params, false)
			if err != nil {
				err = classify(ctx, err)
			}
			s.b.reached(err)
			return res, err
		}
		res, err := s.async(ctx, call, func(res any, err error) { s.renewed(ids, sent, res, err, false) })
		cancel()
		s.renewed(ids, sent, res, err, true)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = false
	for _, h := range s.leases {
		if !h.lost {
			s.armRenew()
			break
		}
	}
}

// renewed applies the outcome of the renewal of ids sent at sent. A renewal
// that timed out is counted as failed (when counting), and applied later if
// its answer comes.
func (s *set) renewed(ids []backend.Lease, sent time.Time, res any, err error, counting bool) {
	abandoned := isAbandoned(err)
	if err != nil {
		if counting {
			s.renewFailures.Add(1)
			s.logger().Warn("concurry: lease renewal failed", "leases", len(ids), "err", err,
				"lease_ttl", s.b.opts.LeaseTTL)
		}
		if abandoned {
			return // the answer may still come: the renewal stays in flight
		}
	}
	receipt := time.Now()
	s.mu.Lock()
	if i := slices.Index(s.renewals, sent); i >= 0 {
		s.renewals = slices.Delete(s.renewals, i, i+1)
	}
	if err != nil {
		s.mu.Unlock()
		return
	}
	gone := make(map[backend.Lease]bool)
	lost, _ := res.([]any)
	for _, v := range lost {
		str, _ := v.(string)
		str, _, _ = strings.Cut(str, " ")
		if id, err := strconv.ParseUint(str, 10, 64); err == nil {
			gone[backend.Lease(id)] = true
		}
	}
	var newly []backend.Lease
	for _, id := range ids {
		h := s.leases[id]
		switch {
		case h == nil: // settled meanwhile
		case gone[id]:
			if s.markLost(h) {
				newly = append(newly, id)
			}
		default:
			h.expires = receipt.Add(s.b.opts.LeaseTTL)
		}
	}
	s.mu.Unlock()
	for _, id := range newly {
		s.logLost(id, "a renewal found it expired")
	}
}
