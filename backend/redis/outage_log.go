package redis

import (
	"sync/atomic"
	"time"
)

// outageLogEvery is how often, at most, a set logs the decisions its
// outage policy made: an outage can make thousands a second.
const outageLogEvery = time.Second

// outageLog rate-limits the log of a set's degraded decisions. The zero
// value is ready to use.
type outageLog struct {
	last     atomic.Int64 // when the latest line was logged (Unix ns); 0 before any
	unlogged atomic.Int64 // decisions made since that line
}

// degradedDecision counts a decision made without Redis (what it was: a
// request granted or refused, a settle dropped) in Degraded, and logs it:
// the first at once, then at most one line a second with how many were made
// since the previous line.
func (s *set) degradedDecision(what string, err error) {
	c := s.degradedCounter()
	c.Add(1)
	s.outages.unlogged.Add(1)
	now := time.Now().UnixNano()
	last := s.outages.last.Load()
	if now-last < int64(outageLogEvery) || !s.outages.last.CompareAndSwap(last, now) {
		return
	}
	n := s.outages.unlogged.Swap(0)
	s.logger().Warn("concurry: decided without redis", "decision", what, "policy", s.b.opts.Outage.String(),
		"decisions", n, "degraded_total", c.Load(), "err", err)
}
