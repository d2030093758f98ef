package memset

import (
	"sync/atomic"

	"github.com/concurry/concurry/backend"
)

// A set of one resource limit (a solo set: the connection or concurrency
// limit alone, as a semaphore is) grants and returns units without its
// mutex while nobody waits: its held count, block[0], is then changed by
// compare-and-swap alone, where x/sync/semaphore takes a lock. The mutex
// is still what orders everything else, and the frozen bit of block[0] is
// how the two meet:
//
//   - A holder of mu sets frozen (freeze) before it reads the count to
//     decide, and from then on it alone writes the word (with atomic
//     stores, since lock-free paths keep loading it); the lock-free paths
//     see the bit and take the lock instead. So a decision under mu sees
//     the exact count, and no lock-free grant can jump a queue.
//   - The bit stays set while requests wait or a pause is in force;
//     otherwise the holder clears it before unlocking (thaw). A thaw that
//     is skipped costs only speed: the next lock-free call takes the lock
//     and thaws on its way out.
//
// Every read of a resource word masks the bit (heldAt): in any other set it
// is never set, and a count never reaches it (held ≤ MaxCapacity = 2^50).
// Reads are atomic loads even under mu, since a lock-free path may still
// try a compare-and-swap that fails (the race detector counts that as a
// write); on amd64 and arm64 an atomic load is a plain load.
const frozen int64 = 1 << 62

// heldAt returns the units held of the resource whose word is *w.
func heldAt(w *int64) int64 { return atomic.LoadInt64(w) &^ frozen }

// solo reports whether s is a set of one resource limit. specs never
// change, so no lock is needed.
func (s *Set) solo() bool { return len(s.specs) == 1 && s.specs[0].Kind == backend.Resource }

// acquireSolo grants n units of a solo set at once without the lock, and
// reports whether it did: not when the set is frozen (requests wait, a pause
// is in force, a holder of mu is deciding), when there is no room, or when
// h is closed, each of which the locked path answers.
func (s *Set) acquireSolo(h *Handle, n int64) bool {
	if h.closed() {
		return false
	}
	w, c := &s.block[0], s.specs[0].Capacity
	for {
		old := atomic.LoadInt64(w)
		if old&frozen != 0 || n > c-old {
			return false
		}
		if atomic.CompareAndSwapInt64(w, old, old+n) {
			return true
		}
	}
}

// releaseSolo returns n units of a solo set without the lock (never more
// than are held), and reports whether it did: not while the set is
// frozen, when the locked path must return them and serve the queue.
func (s *Set) releaseSolo(n int64) bool {
	w := &s.block[0]
	for {
		old := atomic.LoadInt64(w)
		if old&frozen != 0 {
			return false
		}
		if atomic.CompareAndSwapInt64(w, old, old-min(n, old)) {
			return true
		}
	}
}

// freeze stops the lock-free paths of a solo set, so that the holder of mu
// reads its exact count and alone writes it. A projection of the queue made
// while the set was not frozen may miss lock-free grants and releases, so
// it is dropped. Requires mu held; a no-op for other sets.
func (s *Set) freeze() {
	if !s.solo() {
		return
	}
	// A compare-and-swap, not atomic.OrInt64: the race detector orders
	// the plain reads under mu after it only then.
	w := &s.block[0]
	for {
		old := atomic.LoadInt64(w)
		if old&frozen != 0 {
			return
		}
		if atomic.CompareAndSwapInt64(w, old, old|frozen) {
			s.invalidate()
			return
		}
	}
}

// thaw lets the lock-free paths of a solo set go on when nobody waits and
// no pause is in force. Requires mu held and s solo.
func (s *Set) thaw() {
	if s.waiting() || s.x != nil && s.x.pausedEnd != 0 && s.x.pausedEnd > now() {
		return
	}
	// Frozen, the word changes only under mu: a store clears the bit.
	w := &s.block[0]
	if old := atomic.LoadInt64(w); old&frozen != 0 {
		atomic.StoreInt64(w, old&^frozen)
	}
}

// addHeld adds n (which may be negative) to the units held in word w of
// the set's block. Requires mu held and, in a solo set, the set frozen:
// lock-free paths still load the word then, so it is written atomically.
func (s *Set) addHeld(w *int64, n int64) {
	if s.solo() {
		atomic.AddInt64(w, n)
		return
	}
	*w += n
}
