package redis

import "time"

// due is what the latest refusal of this process said: the rate limits
// could grant at ready (Redis µs), an instant that had not come yet at the
// local time until, even counting the whole round trip against it. A
// request that starts to wait before until has been waiting since before
// ready, so ready is a valid hint for it.
type due struct {
	ready int64
	until time.Time
}

// clockRef is a reply's instant and when it came: it bounds Redis's clock
// from above at any local instant.
type clockRef struct {
	now     int64 // Redis µs
	receipt time.Time
	rtt     time.Duration
}

// bound returns an instant (Redis µs) no earlier than Redis's clock at the
// local instant x, or 0 if the reference is unknown.
func (c clockRef) bound(x time.Time) int64 {
	if c.now == 0 {
		return 0
	}
	return c.now + (x.Sub(c.receipt) + c.rtt).Microseconds() + 1
}

// noteDue records the refusal r. Requires l.mu held.
func (l *line) noteDue(r reply) {
	d := time.Duration(r.ready-r.now)*time.Microsecond - r.rtt
	if until := r.receipt.Add(d); r.ready > l.due.ready && until.After(r.receipt) {
		l.due = due{ready: r.ready, until: until}
	}
}

// dueHint returns the hint the latest refusal gives a request that starts to
// wait now, 0 if none. Requires l.mu held.
func (l *line) dueHint() int64 {
	if l.due.ready > 0 && time.Now().Before(l.due.until) {
		return l.due.ready
	}
	return 0
}

// firstHint returns the hint of w's first attempt: the instant the queue has
// been waiting since, but never before w arrived, so that no grant is dated
// before its request existed; 0 (no hint) when either is unknown.
func (s *set) firstHint(w *waiter) int64 {
	if w == nil || w.hint == 0 {
		return 0
	}
	l := s.line
	l.mu.Lock()
	defer l.mu.Unlock()
	arrived := l.ref.bound(w.arrived)
	if arrived == 0 {
		return 0
	}
	return max(w.hint, arrived)
}
