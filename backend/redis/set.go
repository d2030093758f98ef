package redis

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// degradedBit marks a lease granted without Redis under FailOpen.
const degradedBit = backend.Lease(1) << 63

// Set is one named set of limits kept in Redis; it implements backend.Set.
// Get one from [Backend.Open]. A Set is safe for concurrent use.
type Set struct {
	b        *Backend
	name     string
	def      string
	n        int
	keys     []string // the state, the leases, the SlidingWindow lists
	params   string   // the definition's digest, the lease TTL and every spec's numbers
	channel  string
	notify   bool // waits listen for release notices: a resource or a refunding limit
	degraded *atomic.Int64

	closed    chan struct{}
	closeOnce sync.Once
	notifier  notifier

	mu     sync.Mutex
	queue  []*waiter               // guarded by mu; this process's blocked Acquire calls, oldest first
	leases map[backend.Lease]*held // guarded by mu; the leases this process holds
	renew  *time.Timer             // guarded by mu; renews leases while any are held
}

// held is a lease this process holds.
type held struct {
	member  string  // its member in the lease zset: "id amount..."
	pending []int64 // deltas of non-final settles, sent with the final one; nil while none
}

func newSet(b *Backend, name string, specs []backend.Spec) *Set {
	tag := "{" + b.opts.Prefix + ":" + name + "}"
	s := &Set{
		b: b, name: name, def: define(specs), n: len(specs),
		keys:     []string{tag, tag + ":e"},
		channel:  tag + ":free",
		degraded: b.counter(name),
		closed:   make(chan struct{}),
		leases:   make(map[backend.Lease]*held),
	}
	sum := sha256.Sum256([]byte(s.def))
	ps := strconv.AppendUint(nil, binary.BigEndian.Uint64(sum[:])>>12, 10) // below 2^52: exact in Lua
	ps = strconv.AppendInt(append(ps, ' '), b.opts.LeaseTTL.Microseconds(), 10)
	for i, sp := range specs {
		for _, v := range params(sp) {
			ps = strconv.AppendInt(append(ps, ' '), v, 10)
		}
		if sp.Kind == backend.Rate && sp.Algorithm == algorithms.SlidingWindow {
			s.keys = append(s.keys, tag+":w"+strconv.Itoa(i+1))
		}
		s.notify = s.notify || sp.Kind == backend.Resource || sp.Algorithm.Refunds()
	}
	s.params = string(append(append(ps, ';'), s.def...))
	return s
}

// newLease returns a fresh acquisition id: 63 random bits, never 0.
func newLease() backend.Lease { return backend.Lease(rand.Uint64()>>1 | 1) }

// Acquire implements backend.Set. See the package documentation for how
// waiters are ordered and how claims are honoured.
func (s *Set) Acquire(ctx context.Context, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	if s.isClosed() {
		return 0, backend.ErrClosed
	}
	if !opts.Wait && s.queued() {
		if opts.Claim != nil && opts.Claim.Taken() {
			return 0, backend.ErrClaimed
		}
		return 0, backend.ErrWouldBlock
	}
	if opts.Wait {
		w, err := s.enqueue(ctx)
		if err != nil {
			return 0, err
		}
		defer s.dequeue(w)
	}
	return s.loop(ctx, amounts, opts)
}

// member returns the member of lease id in the lease zset: "id amount...".
func member(id backend.Lease, amounts []int64) string {
	b := make([]byte, 0, 20+8*len(amounts))
	b = strconv.AppendUint(b, uint64(id), 10)
	for _, n := range amounts {
		b = strconv.AppendInt(append(b, ' '), n, 10)
	}
	return string(b)
}

// attempt runs entry e (acquire or check) once for the lease of the given
// member.
// The call is not abandoned when ctx ends, so its outcome is never ambiguous
// because of the caller; go-redis's own timeouts bound it.
func (s *Set) attempt(ctx context.Context, e entry, member string, amounts []int64) (reply, error) {
	args := append(s.newArgs(1+len(amounts)), member)
	for _, n := range amounts {
		args = append(args, n)
	}
	res, err := s.run(context.WithoutCancel(ctx), e, args)
	if err != nil {
		return reply{}, err
	}
	if res == int64(codeGranted) {
		return reply{code: codeGranted}, nil
	}
	v, err := integers(res, 0)
	if err != nil {
		return reply{}, err
	}
	if len(v) < 2 {
		return reply{}, fmt.Errorf("%w: %v", ErrScript, v)
	}
	r := reply{code: v[0], now: v[1]}
	if r.code == codeRefused && len(v) >= 5 {
		r.ready, r.blocked, r.wake = v[2], v[3] == 1, v[4]
	}
	return r, nil
}

// outage applies the outage policy to err from an acquisition attempt.
func (s *Set) outage(err error) (backend.Lease, error) {
	if !errors.Is(err, backend.ErrBackendUnavailable) {
		return 0, err
	}
	s.degraded.Add(1)
	if s.b.opts.Outage == FailOpen {
		return newLease() | degradedBit, nil
	}
	return 0, err
}

// track records a granted lease for renewal and settling.
func (s *Set) track(id backend.Lease, member string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leases[id] = &held{member: member}
	if len(s.leases) == 1 {
		s.armRenew()
	}
}

// Settle implements backend.Set. The final call ends the lease in one
// script call; the deltas of non-final calls (the root package makes none)
// are added up in this process and sent with it. The script applies a
// lease's settle at most once: a retried or repeated Settle finds the lease
// gone and changes nothing, and a refund is never more than was granted.
// Each delta is clamped to ±2^52. When Redis cannot be reached the lease is
// dropped here: its resources come back when it expires, and its deltas are
// lost (reported as an error matching backend.ErrBackendUnavailable, or
// counted in Degraded under FailOpen).
func (s *Set) Settle(ctx context.Context, lease backend.Lease, _, delta []int64, final bool, refunded []int64) error {
	if lease&degradedBit != 0 {
		return nil
	}
	s.mu.Lock()
	h, ok := s.leases[lease]
	if !ok || !final {
		if ok && delta != nil {
			h.pending = addDelta(h.pending, delta, s.n)
		}
		s.mu.Unlock()
		return nil
	}
	delete(s.leases, lease)
	if len(s.leases) == 0 && s.renew != nil {
		s.renew.Stop()
	}
	s.mu.Unlock()
	args := append(s.newArgs(1+s.n), h.member)
	for _, d := range addDelta(h.pending, delta, s.n) {
		args = append(args, d)
	}
	res, err := s.run(context.WithoutCancel(ctx), settleEntry, args)
	if err != nil {
		if errors.Is(err, backend.ErrBackendUnavailable) {
			s.degraded.Add(1)
			if s.b.opts.Outage == FailOpen {
				return nil
			}
		}
		return err
	}
	got, err := integers(res, 1)
	if err == nil && refunded != nil && len(got) == len(refunded) {
		copy(refunded, got)
	}
	return err
}

// maxDelta bounds every settle delta the scripts receive: 2^52, where their
// debts and counters saturate, so that no sum of theirs leaves the integers
// a double holds exactly.
const maxDelta = 1 << 52

// addDelta adds delta into acc (allocating acc, of length n, when nil),
// clamping every delta and every sum to [-maxDelta, maxDelta].
func addDelta(acc, delta []int64, n int) []int64 {
	if acc == nil {
		acc = make([]int64, n)
	}
	for i, d := range delta[:min(len(delta), n)] {
		acc[i] = clampDelta(acc[i] + clampDelta(d))
	}
	return acc
}

func clampDelta(d int64) int64 { return min(max(d, -maxDelta), maxDelta) }

// Stats implements backend.Set: it reads the state every process shares.
func (s *Set) Stats(ctx context.Context) ([]backend.SpecStats, error) {
	res, err := s.run(ctx, statsEntry, s.newArgs(0))
	if err != nil {
		return nil, err
	}
	v, err := integers(res, 1)
	if err != nil {
		return nil, err
	}
	if len(v) != 2*s.n {
		return nil, ErrScript
	}
	out := make([]backend.SpecStats, s.n)
	for i := range out {
		out[i] = backend.SpecStats{Available: v[2*i], InUse: v[2*i+1]}
	}
	return out, nil
}

// Close implements backend.Set: it wakes this process's waiters with
// backend.ErrClosed, fails later acquisitions, and stops listening for
// release notices. Leases already granted are still renewed until settled.
func (s *Set) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.notifier.stop()
	})
	return nil
}

func (s *Set) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Degraded implements backend.DegradedCounter: the decisions this set's name
// made through its Backend while Redis could not be reached.
func (s *Set) Degraded() int64 { return s.degraded.Load() }
