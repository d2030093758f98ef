package redis

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"log/slog"
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

// set is one named set of limits kept in Redis; it implements backend.Set,
// backend.DegradedCounter and backend.FaultCounter. [Backend.Open] returns
// one. A set is safe for concurrent use.
type set struct {
	b        *Backend
	name     string
	def      string
	n        int
	rate     []bool   // per spec: a rate limit (else a resource)
	keys     []string // the state, the leases, the lost leases, the SlidingWindow lists
	params   string   // the definition's digest, the lease TTL and every spec's numbers
	channel  string
	notify   bool // waits listen for release notices: a resource or a refunding limit
	degraded *atomic.Int64
	log      *slog.Logger

	renewFailures atomic.Int64
	leasesLost    atomic.Int64

	closed    chan struct{}
	closeOnce sync.Once
	notifier  notifier
	bg        sync.WaitGroup // calls whose caller gave up, still running
	turn      chan struct{}  // a token: held by the head waiter's attempt or a projection in flight

	mu       sync.Mutex
	queue    []*waiter               // guarded by mu; this process's blocked Acquire calls, oldest first
	leases   map[backend.Lease]*held // guarded by mu; the leases this process holds
	renew    *time.Timer             // guarded by mu; renews leases while any are held
	armed    bool                    // guarded by mu; a renewal is scheduled or running
	renewals []time.Time             // guarded by mu; when the renewals still unanswered were sent
	due      due                     // guarded by mu; the latest refusal's ready instant
	ref      clockRef                // guarded by mu; the latest attempt's instant
}

var (
	_ backend.Set             = (*set)(nil)
	_ backend.DegradedCounter = (*set)(nil)
	_ backend.FaultCounter    = (*set)(nil)
)

func newSet(b *Backend, name string, specs []backend.Spec) *set {
	tag := "{" + b.opts.Prefix + ":" + name + "}"
	s := &set{
		b: b, name: name, def: define(specs), n: len(specs),
		rate:     make([]bool, len(specs)),
		keys:     []string{tag, tag + ":e", tag + ":l"},
		channel:  tag + ":free",
		degraded: b.counter(name),
		log:      b.opts.Logger.With("set", name),
		closed:   make(chan struct{}),
		turn:     make(chan struct{}, 1),
		leases:   make(map[backend.Lease]*held),
	}
	sum := sha256.Sum256([]byte(s.def))
	ps := strconv.AppendUint(nil, binary.BigEndian.Uint64(sum[:])>>12, 10) // below 2^52: exact in Lua
	ps = strconv.AppendInt(append(ps, ' '), b.opts.LeaseTTL.Microseconds(), 10)
	for i, sp := range specs {
		for _, v := range params(sp) {
			ps = strconv.AppendInt(append(ps, ' '), v, 10)
		}
		s.rate[i] = sp.Kind == backend.Rate
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
// waiters are ordered, how claims are honoured and how ctx bounds the call.
func (s *set) Acquire(ctx context.Context, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	if s.isClosed() {
		return 0, backend.ErrClosed
	}
	if ctx.Err() != nil {
		return 0, backend.ContextError(ctx)
	}
	if !opts.Wait && s.queued() {
		if opts.Claim != nil && opts.Claim.Taken() {
			return 0, backend.ErrClaimed
		}
		return 0, backend.ErrWouldBlock
	}
	if !opts.Wait {
		return s.loop(ctx, amounts, opts, nil)
	}
	w, err := s.enqueue(ctx, amounts, opts.Claim)
	if err != nil {
		return 0, err
	}
	defer s.dequeue(w, 0)
	return s.loop(ctx, amounts, opts, w)
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

// outage applies the outage policy to err from an acquisition attempt.
func (s *set) outage(err error) (backend.Lease, error) {
	if !errors.Is(err, backend.ErrBackendUnavailable) {
		return 0, err
	}
	s.degraded.Add(1)
	if s.b.opts.Outage == FailOpen {
		return newLease() | degradedBit, nil
	}
	return 0, err
}

// Stats implements backend.Set: it reads the state every process shares. It
// returns by ctx's end, with ctx's error, even when Redis does not answer.
func (s *set) Stats(ctx context.Context) ([]backend.SpecStats, error) {
	res, err := s.do(ctx, statsEntry, s.newArgs(0), nil)
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
func (s *set) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.notifier.stop()
	})
	return nil
}

func (s *set) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Degraded implements backend.DegradedCounter: the decisions this set's name
// made through its Backend while Redis could not be reached.
func (s *set) Degraded() int64 { return s.degraded.Load() }

// Faults implements backend.FaultCounter: the lease renewals of this set
// that failed, and its leases that were lost before their release.
func (s *set) Faults() backend.Faults {
	return backend.Faults{RenewFailures: s.renewFailures.Load(), LeasesLost: s.leasesLost.Load()}
}
