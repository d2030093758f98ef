package provider

import (
	"math"
	"time"
)

// bucket is the provider's accounting of one per-minute quota: a token
// bucket of capacity units, full at the start, refilling continuously at
// capacity per minute. It works in float64, deliberately independent of
// concurry's integer arithmetic. Not safe for concurrent use: its account
// guards it.
type bucket struct {
	quota           int64 // the per-minute quota it enforces
	capacity, level float64
	perNano         float64 // refill rate, units per nanosecond
	last            time.Time
}

func newBucket(quota int64, minute time.Duration, now time.Time) *bucket {
	c := float64(quota)
	return &bucket{quota: quota, capacity: c, level: c, perNano: c / float64(minute), last: now}
}

// refill adds what flowed in since the last refill, up to capacity. A now
// before the last refill changes nothing.
func (b *bucket) refill(now time.Time) {
	if now.After(b.last) {
		b.level = math.Min(b.capacity, b.level+float64(now.Sub(b.last))*b.perNano)
		b.last = now
	}
}

// wait returns how long until n units are there: 0 when they are, or will
// be within a nanosecond. That nanosecond of slack keeps float rounding
// from refusing a call that exact arithmetic would admit at the same
// instant, whatever the rate.
func (b *bucket) wait(n float64) time.Duration {
	if n <= b.level+b.perNano {
		return 0
	}
	return b.until(n - b.level)
}

// until returns how long the bucket takes to refill n units, rounded up to
// a nanosecond — ignoring a hundredth of one, which is float rounding: so a
// wait of exactly 1ms is 1ms, not 1ms and 1ns.
func (b *bucket) until(n float64) time.Duration {
	return ceilDuration(n/b.perNano - 0.01)
}

// take spends n units; the level may not go below zero, which admission
// has checked (up to a nanosecond's refill).
func (b *bucket) take(n float64) { b.level = math.Max(0, b.level-n) }

// give returns n units, up to capacity.
func (b *bucket) give(n float64) { b.level = math.Min(b.capacity, b.level+n) }

// full reports whether the bucket holds its capacity, or will within a
// nanosecond.
func (b *bucket) full() bool { return b.level >= b.capacity-b.perNano }

// state returns what the rate-limit headers report of the bucket: its
// quota, the whole units a call could take now (as wait counts them), and
// the time until it is full again.
func (b *bucket) state() limitState {
	s := limitState{Limit: b.quota, Remaining: int64(math.Floor(min(b.level+b.perNano, b.capacity)))}
	if !b.full() {
		s.Reset = b.until(b.capacity - b.level)
	}
	return s
}

// ceilDuration rounds ns up to a whole nanosecond, at least 1, at most
// math.MaxInt64.
func ceilDuration(ns float64) time.Duration {
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(max(1, math.Ceil(ns)))
}

// limitState is one quota as the rate-limit headers report it.
type limitState struct {
	Limit     int64         // the quota per minute
	Remaining int64         // whole units left now
	Reset     time.Duration // until the quota is full again; 0 when it is
}

// share returns the fraction of the quota left.
func (s limitState) share() float64 { return float64(s.Remaining) / float64(s.Limit) }
