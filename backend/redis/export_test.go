package redis

import (
	"context"
	"time"

	"github.com/concurry/concurry/backend"
)

// SetClock makes every script of b use f() (µs since the Unix epoch) instead
// of Redis TIME. Tests only.
func SetClock(b *Backend, f func() int64) { b.clock = f }

// TakeWithID runs the acquire script once, taking amounts under lease id,
// and reports whether it was granted. Tests only: it replays an acquisition
// whose reply was lost.
func TakeWithID(ctx context.Context, s backend.Set, id backend.Lease, amounts []int64) (bool, error) {
	r, err := s.(*Set).attempt(ctx, "t", id, amounts)
	if r.code == codeGranted {
		s.(*Set).track(id)
	}
	return r.code == codeGranted, err
}

// ReadyIn runs the acquire script in check mode, which takes nothing, and
// returns how long until amounts could be taken (0: now). Tests only.
func ReadyIn(ctx context.Context, s backend.Set, amounts []int64) (time.Duration, error) {
	r, err := s.(*Set).attempt(ctx, "c", newLease(), amounts)
	if err != nil || r.code != codeRefused {
		return 0, err
	}
	return time.Duration(r.ready-r.now) * time.Microsecond, nil
}

// RenewNow renews s's held leases at once. Tests only.
func RenewNow(s backend.Set) { s.(*Set).renewLeases() }
