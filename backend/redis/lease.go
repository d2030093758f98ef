package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry/backend"
)

// maxDelta bounds every settle delta the scripts receive: 2^52, where their
// debts and counters saturate, so that no sum of theirs leaves the integers
// a double holds exactly.
const maxDelta = 1 << 52

// Replies of the settle script.
const (
	settleUnknown = 0 // the lease is gone: lost long ago, or Redis lost its data (a settle is never sent twice)
	settleLive    = 1 // settled: the lease was live
	settleLost    = 2 // the lease had expired; its usage was applied all the same
)

// held is a lease this process holds.
type held struct {
	member  string    // its member in the lease zset: "id amount..."
	pending []int64   // deltas of non-final settles, sent with the final one; nil while none
	expires time.Time // by then the lease has expired in Redis, unless a renewal has moved it since
	lost    bool      // the lease is known to have expired; counted in leasesLost
}

// track records a lease granted by a reply received at receipt, for renewal
// and settling.
func (s *set) track(id backend.Lease, member string, receipt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leases[id] = &held{member: member, expires: receipt.Add(s.b.opts.LeaseTTL)}
	s.armRenew()
}

// expired reports whether h's lease has surely expired in Redis at now: no
// renewal moved it since h.expires (the reply that set it came after Redis
// set the expiry), and no renewal sent before then is still unanswered.
// Requires mu held.
func (s *set) expired(h *held, now time.Time) bool {
	if h.lost {
		return true
	}
	if !now.After(h.expires) {
		return false
	}
	for _, sent := range s.renewals {
		if sent.Before(h.expires) {
			return false // that renewal may have moved the expiry
		}
	}
	return true
}

// markLost marks h lost and reports whether it was not already, in which
// case the caller logs it. Requires mu held.
func (s *set) markLost(h *held) bool {
	if h.lost {
		return false
	}
	h.lost = true
	s.leasesLost.Add(1)
	return true
}

// logLost logs the loss of lease id.
func (s *set) logLost(id backend.Lease, why string) {
	s.logger().Warn("concurry: lease lost before its release", "lease", uint64(id), "reason", why,
		"lease_ttl", s.b.opts.LeaseTTL)
}

// CheckLease reports whether this process still holds lease exclusively:
// nil while it does, and also for a lease it does not know (released, or
// granted without Redis under FailOpen); an error matching
// backend.ErrLeaseLost once the lease is known to have expired in Redis (a
// renewal found it gone, or none has succeeded for a whole LeaseTTL), so
// that its resources may have gone to another holder. Usage reported to the
// lease is still charged when it is settled. CheckLease does no I/O.
func (s *set) CheckLease(lease backend.Lease) error {
	s.mu.Lock()
	h, ok := s.leases[lease]
	lost := ok && s.expired(h, time.Now())
	newly := lost && s.markLost(h)
	s.mu.Unlock()
	if newly {
		s.logLost(lease, "no renewal succeeded for a whole lease TTL")
	}
	if !lost {
		return nil
	}
	return fmt.Errorf("%w: the redis lease of set %q expired before its release (renewals failed, or this process or redis stalled longer than the lease TTL %v); its resources may be held by another process; usage reported before Release is still charged",
		backend.ErrLeaseLost, s.name, s.b.opts.LeaseTTL)
}

// Settle implements backend.Set. The final call ends the lease in one
// script call; the deltas of non-final calls (the root package makes none)
// are added up in this process and sent with it. Each delta is clamped to
// ±2^52. The script applies a lease's settle at most once: a repeated
// Settle finds the lease gone and changes nothing, and a refund is never
// more than was granted.
//
// A lease that expired before its settle (lost) is still settled: its usage
// is charged (and refunded where the algorithm refunds), and Settle returns
// an error matching backend.ErrLeaseLost that says so; only a lease lost more
// than an hour before is no longer known, and then the error says that its
// usage was not charged. When Redis cannot be reached, Settle returns an
// error matching backend.ErrBackendUnavailable (under FailOpen: nil, and the
// failure is counted in Degraded), and the settle is retried in the
// background, backing off up to a second, until a lease TTL after the lease
// would have expired: as soon as Redis answers, its resources come back, and
// its deltas are charged if Redis still has the lease (a retry that finds
// none is logged; at the latest, the resources come back when the lease
// expires; giving up is logged). When ctx ends first, Settle returns
// ctx's error; the call goes on in the background (retried the same way),
// and a failure of it is counted in Degraded and logged.
//
// A grant that took no resource has no lease: its settle applies the deltas
// at once (final or not) in one call that is never sent twice, with held
// the granted amounts, which bound its refunds; it makes no call when no
// delta is to apply (usage equal to the grant, or less on a limit that does
// not refund).
func (s *set) Settle(ctx context.Context, lease backend.Lease, held, delta []int64, final bool, refunded []int64) error {
	switch {
	case lease&degradedBit != 0:
		return nil
	case lease == unleased:
		return s.settleUnleased(ctx, held, delta, refunded)
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
	s.stopRenew()
	wasLost := s.expired(h, time.Now())
	s.mu.Unlock()
	args := append(s.newArgs(1+s.n), h.member)
	for i := range s.n {
		var d int64
		if i < len(delta) {
			d = clampDelta(delta[i])
		}
		if h.pending != nil {
			d = clampDelta(h.pending[i] + d)
		}
		args = append(args, d)
	}
	var late func(any, error) // only a ctx that can end leaves a call to finish late
	if ctx.Done() != nil {
		late = func(res any, err error) {
			if retryable(err) {
				s.resettle(lease, h, args, mayHaveRun(err))
				return
			}
			if err := s.settled(lease, h, wasLost, res, err, nil); err != nil && !errors.Is(err, backend.ErrLeaseLost) {
				s.logger().Warn("concurry: a settle whose caller gave up failed: its usage was not charged; its resources come back when its lease expires",
					"lease", uint64(lease), "err", err)
			}
		}
	}
	// Sent once (go-redis never resends it), so that a reply that the lease
	// is unknown cannot come from a retry whose first try was applied: it
	// means that Redis no longer has the lease (lost long ago, or Redis
	// lost its data), and the caller hears that its usage was not charged.
	res, err := s.do(ctx, settleEntry, args, late, true)
	if isAbandoned(err) {
		return err // the background call reports its outcome
	}
	if retryable(err) {
		s.resettle(lease, h, args, mayHaveRun(err))
		err = fmt.Errorf("%w (%w)", err, errRetried)
	}
	return s.settled(lease, h, wasLost, res, err, refunded)
}

// errRetried marks the error of a settle that resettle retries.
var errRetried = errors.New("the release is retried in the background until a lease TTL after its lease expires: as soon as redis answers, its resources come back, and its usage is charged if redis still has the lease")

// retryable reports whether err, a settle's, means that Redis could not be
// reached, so that the settle may not have been applied: a retry is then
// safe (the script applies a lease's settle once; a retry of an applied one
// finds the lease gone and changes nothing) and brings the lease's
// resources back before it expires.
func retryable(err error) bool {
	return errors.Is(err, backend.ErrBackendUnavailable) && !errors.Is(err, redis.ErrClosed)
}

// mayHaveRun reports whether a call that failed with err may have reached
// Redis all the same (and so run): every failure but a failed dial, which
// sent nothing.
func mayHaveRun(err error) bool {
	var op *net.OpError
	return !errors.As(err, &op) || op.Op != "dial"
}

// resettle retries, in the background, the final settle of lease (h, with
// args as sent) that could not reach Redis, until a lease TTL has passed
// since the lease would have expired (its resources came back then; its
// usage could still be charged until then); ran says whether the failed
// call may have run all the same. A lease that expired meanwhile is
// settled as lost. A retry that finds no lease is logged: an earlier try
// was applied (only its reply was lost), or, when no try could have run,
// Redis lost the lease with its data and the usage was not charged.
func (s *set) resettle(lease backend.Lease, h *held, args []any, ran bool) {
	s.retry("release", lease, settleEntry, args, h.expires.Add(s.b.opts.LeaseTTL), ran, func(res any, ran bool) {
		if leaseKnown(res) {
			_ = s.settled(lease, h, false, res, nil, nil) // marks and logs a lease lost meanwhile
			return
		}
		if ran {
			s.logger().Warn("concurry: a retried release found no lease in redis: an earlier try was applied (its reply was lost), or redis lost the lease with its data and its usage was not charged",
				"lease", uint64(lease))
			return
		}
		s.logger().Warn("concurry: a retried release found no lease in redis, which lost it with its data: its usage was not charged",
			"lease", uint64(lease))
	})
}

// leaseKnown reports whether res, a settle's reply, says the lease was
// known to Redis (and so was ended by this settle).
func leaseKnown(res any) bool {
	got, _ := integers(res, 0)
	return len(got) > 0 && got[0] != settleUnknown
}

// retry sends the call of entry e with args (for lease) again, in the
// background, after it could not reach Redis (retryable): a call that
// applies at most once (a lease's settle or undo: a retry of an applied one
// finds the lease gone and changes nothing). Every try is bounded by
// Options.RenewTimeout (one that runs out is tried again), and they back
// off from 50 ms to a second (or a third of the lease TTL), until one
// reaches Redis (then done gets its reply, and whether the first call, ran,
// or any try may have run before it) or until is past. Giving up is logged;
// the client being closed ends the retries quietly.
func (s *set) retry(what string, lease backend.Lease, e entry, args []any, until time.Time, ran bool, done func(res any, ran bool)) {
	ttl := s.b.opts.LeaseTTL
	s.bg.Go(func() {
		wait, most := 50*time.Millisecond, min(time.Second, ttl/3)
		for {
			time.Sleep(wait)
			ctx, cancel := context.WithTimeout(context.Background(), s.b.opts.RenewTimeout)
			res, err := s.run(ctx, e, args, true)
			timedOut := err != nil && ctx.Err() != nil // this try's own bound: it may have reached Redis
			cancel()
			switch {
			case err == nil:
				done(res, ran)
				return
			case errors.Is(err, redis.ErrClosed):
				return
			case !retryable(err) && !timedOut || time.Now().After(until):
				s.logger().Warn("concurry: gave up retrying a "+what+" that could not reach redis: its lease, unless that was ended, expires unrenewed; its usage may not have been charged",
					"lease", uint64(lease), "err", err)
				return
			}
			ran = ran || timedOut || mayHaveRun(err)
			wait = min(2*wait, most)
		}
	})
}

// Release implements backend.Releaser: Settle with final true, the
// refunded units not reported.
func (s *set) Release(ctx context.Context, lease backend.Lease, held, delta []int64) error {
	return s.Settle(ctx, lease, held, delta, true, nil)
}

// settled interprets the reply of lease's settle. wasLost says whether the
// lease was known to have expired before the call.
func (s *set) settled(lease backend.Lease, h *held, wasLost bool, res any, err error, refunded []int64) error {
	if err != nil {
		uerr := s.unapplied(err)
		if wasLost {
			return fmt.Errorf("%w: the redis lease of set %q expired before its release, and the release failed, so the reported usage may not have been charged: %w",
				backend.ErrLeaseLost, s.name, err)
		}
		return uerr
	}
	got, err := integers(res, 0)
	if err != nil {
		return err
	}
	code := got[0]
	if code == settleLive {
		if refunded != nil && len(got)-1 == len(refunded) {
			copy(refunded, got[1:])
		}
		return nil
	}
	s.mu.Lock()
	newly := s.markLost(h)
	s.mu.Unlock()
	if newly {
		s.logLost(lease, "expired before its release")
	}
	if code == settleLost {
		if refunded != nil && len(got)-1 == len(refunded) {
			copy(refunded, got[1:])
		}
		return fmt.Errorf("%w: the redis lease of set %q expired before its release, so its resources may have gone to another process; the reported usage was charged",
			backend.ErrLeaseLost, s.name)
	}
	return fmt.Errorf("%w: redis no longer knows the lease of set %q (it expired more than an hour before its release, or redis lost its data), so its resources may have gone to another process; %w",
		backend.ErrLeaseLost, s.name, backend.ErrUsageNotCharged)
}

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

// undo gives back a grant made as of p (Redis µs) to a caller that is gone
// (its ctx ended before the grant reached it), so that nothing is granted
// and forgotten: it ends lease id of member m ("" for a grant without a
// lease), and takes back its rate limits' units as though they had not been
// taken where the algorithm can (see undo.lua: TokenBucket and GCRA always,
// FixedWindow while p's window is counted, SlidingWindow while the units
// count, LeakyBucket unless charged usage or upstream feedback queued units
// behind them). It runs in the background. A call with a lease that could
// not reach Redis is retried (see retry) until the lease would have expired;
// a call without a lease is never resent.
func (s *set) undo(id backend.Lease, m string, amounts []int64, p int64) {
	once := m == ""
	if once {
		m = unleasedMember(amounts, s.n)
	}
	args := append(s.newArgs(2), m, p)
	_, err := s.run(context.Background(), undoEntry, args, once)
	if !once && retryable(err) {
		s.retry("give-back", id, undoEntry, args, time.Now().Add(s.b.opts.LeaseTTL), true, func(res any, _ bool) {
			if res == int64(1) { // 0: given back by an earlier try whose reply was lost
				s.logger().Info("concurry: gave back a grant whose caller had gone", "lease", uint64(id))
			}
		})
		return
	}
	if err != nil {
		s.logger().Warn("concurry: a grant whose caller had gone could not be given back; its resources come back when its lease expires",
			"lease", uint64(id), "err", err)
		return
	}
	s.logger().Info("concurry: gave back a grant whose caller had gone", "lease", uint64(id))
}
