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
// whose reply was lost. A narrow set (no resource, no SlidingWindow)
// records no lease: there, id is not sent, and a replay takes again.
func TakeWithID(ctx context.Context, s backend.Set, id backend.Lease, amounts []int64) (bool, error) {
	ok, _, err := TakeWithHint(ctx, s, id, amounts, 0)
	return ok, err
}

// TakeWithHint runs the acquire script once with the given hint (Redis µs;
// 0 for none, -1 for none but the instant of a grant wanted), taking
// amounts under lease id, and reports whether it was granted and, if so, the
// instant it was granted at; if not, the instant the rate limits could
// grant it. Tests only.
func TakeWithHint(ctx context.Context, s backend.Set, id backend.Lease, amounts []int64, hint int64) (bool, int64, error) {
	r, err := s.(*set).attempt(ctx, acquireEntry, id, testMember(s, id, amounts), amounts, hint, nil)
	return r.code == codeGranted, r.ready, err
}

// testMember is the member the test helpers send: none for a narrow set,
// which records no lease.
func testMember(s backend.Set, id backend.Lease, amounts []int64) string {
	if Narrow(s) {
		return ""
	}
	return member(id, amounts)
}

// Narrow reports whether s is narrow: it keeps its state, feedback and
// definition in one key, and its calls name no other. Tests only.
func Narrow(s backend.Set) bool { return len(s.(*set).keys) == 1 }

// Undo gives back a grant of amounts made as of p (Redis µs) as it does for
// a caller that is gone: under lease id when amounts take a resource.
// Tests only.
func Undo(s backend.Set, id backend.Lease, amounts []int64, p int64) {
	st, m := s.(*set), ""
	for i, n := range amounts {
		if n > 0 && !st.rate[i] {
			m = member(id, amounts)
		}
	}
	st.undo(id, m, amounts, p)
}

// ReadyIn runs the acquire script in check mode, which takes nothing, and
// returns how long until amounts could be taken (0: now). Tests only.
func ReadyIn(ctx context.Context, s backend.Set, amounts []int64) (time.Duration, error) {
	id := newLease()
	r, err := s.(*set).attempt(ctx, checkEntry, id, testMember(s, id, amounts), amounts, 0, nil)
	if err != nil || r.code != codeRefused {
		return 0, err
	}
	return time.Duration(r.ready-r.now) * time.Microsecond, nil
}

// RenewNow renews s's held leases at once. Tests only.
func RenewNow(s backend.Set) { s.(*set).renewLeases() }

// WaitBackground waits for the calls of s whose callers gave up. Tests only.
func WaitBackground(s backend.Set) { s.(*set).bg.Wait() }

// UseScripts makes b run its entry points as scripts (EVALSHA), as on a
// server without functions. Tests only.
func UseScripts(b *Backend) { b.scripts.Store(true) }

// UsesScripts reports whether b runs its entry points as scripts. Tests only.
func UsesScripts(b *Backend) bool { return b.scripts.Load() }

// SettleAgain runs the settle script once more for lease id, granted
// amounts, with deltas, as a retried call would, and returns the script's
// code: 1 settled, 2 lost (charged now or before), 0 unknown. Tests only.
func SettleAgain(ctx context.Context, s backend.Set, id backend.Lease, amounts, deltas []int64) (int64, error) {
	args := append(s.(*set).newArgs(1+len(deltas)), member(id, amounts))
	for _, d := range deltas {
		args = append(args, d)
	}
	res, err := s.(*set).run(ctx, settleEntry, args, false)
	if err != nil {
		return 0, err
	}
	v, err := integers(res, 0)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// FunctionName returns the name the library registers for entry point
// name ("acquire", "settle", ...), as FCALL sends it. Tests only.
func FunctionName(name string) string {
	for i, e := range entries {
		if e.name == name {
			return lib.funcs[i]
		}
	}
	return ""
}

// DegradedNames returns how many set names b keeps a counter of degraded
// decisions for. Tests only.
func DegradedNames(b *Backend) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.degraded)
}

// Lines returns how many set names b keeps a shared line for. Tests only.
func Lines(b *Backend) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.lines)
}
