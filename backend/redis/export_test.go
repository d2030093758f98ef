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
	m := member(id, amounts)
	r, err := s.(*Set).attempt(ctx, acquireEntry, m, amounts)
	if r.code == codeGranted {
		s.(*Set).track(id, m)
	}
	return r.code == codeGranted, err
}

// ReadyIn runs the acquire script in check mode, which takes nothing, and
// returns how long until amounts could be taken (0: now). Tests only.
func ReadyIn(ctx context.Context, s backend.Set, amounts []int64) (time.Duration, error) {
	r, err := s.(*Set).attempt(ctx, checkEntry, member(newLease(), amounts), amounts)
	if err != nil || r.code != codeRefused {
		return 0, err
	}
	return time.Duration(r.ready-r.now) * time.Microsecond, nil
}

// RenewNow renews s's held leases at once. Tests only.
func RenewNow(s backend.Set) { s.(*Set).renewLeases() }

// UseScripts makes b run its entry points as scripts (EVALSHA), as on a
// server without functions. Tests only.
func UseScripts(b *Backend) { b.scripts.Store(true) }

// UsesScripts reports whether b runs its entry points as scripts. Tests only.
func UsesScripts(b *Backend) bool { return b.scripts.Load() }
