package provider

import "time"

// foreignClient is the foreign client of Options.ForeignShare on one
// account: another program spending the same quotas, unseen by the client
// under test. It makes a call every period, at start + k·period for k = 1,
// 2, …, each of one request and 1/RequestsPerMinute of every token quota,
// so that it spends ForeignShare of each. Its calls are instantaneous and
// admitted or refused like any other (all or nothing, never into debt). No
// goroutine runs them: the account runs every call due whenever it is
// consulted, in order, at the instant each was due, so the result is exact
// under real and fake time alike. Not safe for concurrent use: its account
// guards it.
type foreignClient struct {
	period           time.Duration // 0: no foreign client
	start            time.Time
	next             int64 // index of the next call
	cost             cost
	served, rejected int64
}

func newForeignClient(o Options, now time.Time) foreignClient {
	q, rpm := o.Quota, float64(o.Quota.RequestsPerMinute)
	return foreignClient{
		period: o.foreignPeriod(), start: now, next: 1,
		cost: cost{1, float64(q.InputTokensPerMinute) / rpm, float64(q.OutputTokensPerMinute) / rpm, float64(q.TokensPerMinute) / rpm},
	}
}

// run makes every call due by now against buckets.
//
// When every bucket is full at a call, each later call finds them full
// again (a period refills 1/ForeignShare ≥ 1 call's cost), until some
// other call spends: so run serves the calls up to the last one due at
// once, which bounds its work after a long idle spell.
func (f *foreignClient) run(now time.Time, buckets *[numDims]*bucket) {
	if f.period == 0 || !now.After(f.start) {
		return
	}
	due := int64(now.Sub(f.start) / f.period) // the index of the last call due
	for ; f.next <= due; f.next++ {
		at := f.start.Add(time.Duration(f.next) * f.period)
		refillAll(buckets, at)
		if allFull(buckets) && f.next < due {
			f.served += due - f.next
			f.next = due
			at = f.start.Add(time.Duration(due) * f.period)
			for _, b := range buckets {
				if b != nil {
					b.level, b.last = b.capacity, at
				}
			}
		}
		f.call(buckets)
	}
}

// call makes one call: all of its cost is taken, or none.
func (f *foreignClient) call(buckets *[numDims]*bucket) {
	for d, b := range buckets {
		if b != nil && b.wait(f.cost[d]) > 0 {
			f.rejected++
			return
		}
	}
	for d, b := range buckets {
		if b != nil {
			b.take(f.cost[d])
		}
	}
	f.served++
}

func refillAll(buckets *[numDims]*bucket, now time.Time) {
	for _, b := range buckets {
		if b != nil {
			b.refill(now)
		}
	}
}

func allFull(buckets *[numDims]*bucket) bool {
	for _, b := range buckets {
		if b != nil && !b.full() {
			return false
		}
	}
	return true
}
