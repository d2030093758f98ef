package redis

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concurry/concurry/backend"
)

const (
	// degradedBit marks a lease granted without Redis under FailOpen.
	degradedBit = backend.Lease(1) << 63
	// unleased is the lease of a grant that took no resource: nothing is
	// recorded for it in Redis, so there is nothing to renew, lose or end;
	// its settle only applies usage.
	unleased = backend.Lease(1) << 62
)

// set is one named set of limits kept in Redis; it implements backend.Set,
// backend.Releaser, backend.Feedback, backend.LeaseChecker,
// backend.DegradedCounter and backend.FaultCounter (not backend.Idler:
// whether a shared set is idle takes a call to Redis). [Backend.Open]
// returns one. A set is safe for concurrent use.
type set struct {
	b        *Backend
	name     string
	def      string
	n        int
	specs    []backend.Spec // these four are the set's shape's, shared: never modified
	rate     []bool         // per spec: a rate limit (else a resource)
	refunds  []bool         // per spec: a rate limit whose algorithm refunds
	params   any            // a string: the definition's digest, the lease TTL and every spec's numbers, then the definition
	short    any            // a string: params' short form (see state.lua)
	keys     []string       // the state, the leases, the lost leases, the feedback, the SlidingWindow lists; the state alone for a narrow set
	boxed    []any          // keys, each in an interface made once: a call boxes none
	channel  string
	degraded atomic.Pointer[atomic.Int64] // the Backend's counter of this name, once it counted a decision
	outages  outageLog

	renewFailures atomic.Int64
	leasesLost    atomic.Int64

	closed    chan struct{}
	closeOnce sync.Once
	notifier  notifier
	bg        sync.WaitGroup // calls whose caller gave up, still running
	line      *line          // the queue, turn and latest instants of this name, shared by its sets in this process

	mu       sync.Mutex
	leases   map[backend.Lease]*held // guarded by mu; the leases this process holds
	renew    *time.Timer             // guarded by mu; renews leases while any are held
	armed    bool                    // guarded by mu; a renewal is scheduled or running
	renewals []time.Time             // guarded by mu; when the renewals still unanswered were sent
}

var (
	_ backend.Set             = (*set)(nil)
	_ backend.Releaser        = (*set)(nil)
	_ backend.Feedback        = (*set)(nil)
	_ backend.LeaseChecker    = (*set)(nil)
	_ backend.DegradedCounter = (*set)(nil)
	_ backend.FaultCounter    = (*set)(nil)
)

func newSet(b *Backend, name string, specs []backend.Spec) *set {
	tag := "{" + b.opts.Prefix + ":" + name + "}"
	sh := b.shapeOf(specs)
	s := &set{
		b: b, name: name, def: sh.def, n: len(specs),
		specs: sh.specs, rate: sh.rate, refunds: sh.refunds, params: sh.params, short: sh.short,
		keys:    make([]string, 4, 4+len(sh.lists)),
		channel: tag + ":free",
		closed:  make(chan struct{}),
		line:    b.lineOf(name, sh.def),
		leases:  make(map[backend.Lease]*held),
	}
	s.keys[0], s.keys[1], s.keys[2], s.keys[3] = tag, tag+":e", tag+":l", tag+":f"
	for _, i := range sh.lists {
		s.keys = append(s.keys, tag+":w"+strconv.Itoa(i))
	}
	if sh.narrow {
		// the state is the set's one key: each key a call names costs
		// Redis a string made anew when identities rotate
		s.keys = s.keys[:1]
	}
	s.boxed = make([]any, len(s.keys))
	for i, k := range s.keys {
		// strings, not *string (which go-redis would write as well): a
		// command's String, in logs and traces, prints them
		s.boxed[i] = k
	}
	return s
}

// newLease returns a fresh acquisition id: 62 random bits, never 0.
func newLease() backend.Lease { return backend.Lease(rand.Uint64()>>2 | 1) }

// newGrant returns the lease and member a request of amounts is granted
// under: a fresh lease when it takes a resource, else unleased and no
// member (nothing is recorded).
func (s *set) newGrant(amounts []int64) (backend.Lease, string) {
	for i, n := range amounts {
		if n > 0 && !s.rate[i] {
			id := newLease()
			return id, member(id, amounts)
		}
	}
	return unleased, ""
}

// Acquire implements backend.Set. See the package documentation for how
// waiters are ordered, how claims are honoured, how ctx bounds the call,
// and what refusals say. It fills opts.Report, and calls opts.OnWait once
// (from the calling goroutine, holding no lock; a panic in it is
// recovered) when the request starts to wait.
func (s *set) Acquire(ctx context.Context, amounts []int64, opts backend.AcquireOptions) (backend.Lease, error) {
	req := request{opts: opts}
	if opts.Report != nil {
		*opts.Report = backend.AcquireReport{Blocker: -1}
	}
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
		return 0, s.queuedRefusal(ctx, amounts, &req)
	}
	if !opts.Wait {
		return s.loop(ctx, amounts, &req, nil)
	}
	defer req.end()
	w, err := s.enqueue(ctx, amounts, &req)
	if err != nil {
		return 0, err
	}
	defer s.dequeue(w, 0)
	return s.loop(ctx, amounts, &req, w)
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

// outage applies the outage policy to err from an acquisition attempt of
// req, which it reports as degraded when the policy decided.
func (s *set) outage(err error, req *request) (backend.Lease, error) {
	if !errors.Is(err, backend.ErrBackendUnavailable) {
		return 0, err
	}
	req.degraded()
	if s.b.opts.Outage == FailOpen {
		s.degradedDecision("granted without limits", err)
		return newLease() | degradedBit, nil
	}
	s.degradedDecision("refused", err)
	return 0, err
}

// Stats implements backend.Set: it reads the state every process shares:
// per spec, the units available now (none while the spec is paused), the
// resource units held, and the debt of overage, as the algorithms
// package's State.Debt counts it for every algorithm. It returns by ctx's
// end, with ctx's error, even when Redis does not answer.
func (s *set) Stats(ctx context.Context) ([]backend.SpecStats, error) {
	res, err := s.do(ctx, statsEntry, s.newArgs(0), nil, false)
	if err != nil {
		return nil, err
	}
	v, err := integers(res, 1)
	if err != nil {
		return nil, err
	}
	if len(v) != 3*s.n {
		return nil, ErrScript
	}
	out := make([]backend.SpecStats, s.n)
	for i := range out {
		out[i] = backend.SpecStats{Available: v[3*i], InUse: v[3*i+1], Debt: v[3*i+2]}
	}
	return out, nil
}

// Close implements backend.Set: it wakes the set's waiters with
// backend.ErrClosed, fails later acquisitions, and stops listening for
// release notices. Leases already granted are still renewed until settled.
// The waiters of other sets of the name keep their places.
func (s *set) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.notifier.stop()
		s.b.dropLine(s.name, s.line)
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
func (s *set) Degraded() int64 {
	if c := s.degraded.Load(); c != nil {
		return c.Load()
	}
	return s.b.Degraded(s.name)
}

// degradedCounter returns the Backend's counter of the decisions made for
// this set's name without Redis, made on the first: a set that never
// decides without Redis (most identities of a Keyed) costs the Backend no
// entry.
func (s *set) degradedCounter() *atomic.Int64 {
	if c := s.degraded.Load(); c != nil {
		return c
	}
	c := s.b.counter(s.name)
	s.degraded.Store(c)
	return c
}

// logger returns the logger of this set's lines. Logging is rare: the
// logger is made for each line, not kept by every set.
func (s *set) logger() *slog.Logger { return s.b.opts.Logger.With("set", s.name) }

// Faults implements backend.FaultCounter: the lease renewals of this set
// that failed, and its leases that were lost before their release.
func (s *set) Faults() backend.Faults {
	return backend.Faults{RenewFailures: s.renewFailures.Load(), LeasesLost: s.leasesLost.Load()}
}
