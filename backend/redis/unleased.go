package redis

import (
	"context"
	"errors"
	"strconv"

	"github.com/concurry/concurry/backend"
)

// settleUnleased applies the deltas of a grant that took no resource and so
// has no lease, whose granted amounts are held: positive deltas are
// charged, negative ones refunded where the algorithm refunds, at most what
// was granted. It makes no call when there is nothing to apply, and sends
// one that go-redis never resends otherwise (a resent call would apply its
// deltas twice). Its errors are Settle's; a call whose caller gave up goes
// on in the background, and a failure of it is counted (as Settle's is)
// and logged.
func (s *set) settleUnleased(ctx context.Context, held, delta, refunded []int64) error {
	work := false
	for i, d := range delta[:min(len(delta), s.n)] {
		if d > 0 || d < 0 && s.refunds[i] {
			work = true
			break
		}
	}
	if !work {
		return nil
	}
	args := append(s.newArgs(1+s.n), unleasedMember(held, s.n))
	for i := range s.n {
		var d int64
		if i < len(delta) {
			d = clampDelta(delta[i])
		}
		args = append(args, d)
	}
	var late func(any, error) // only a ctx that can end leaves a call to finish late
	if ctx.Done() != nil {
		late = func(_ any, err error) {
			if err != nil && s.unapplied(err) != nil {
				s.logger().Warn("concurry: a settle whose caller gave up failed: its usage was not applied", "err", err)
			}
		}
	}
	res, err := s.do(ctx, settleEntry, args, late, true)
	if err != nil {
		if isAbandoned(err) {
			return err
		}
		return s.unapplied(err)
	}
	got, err := integers(res, 0)
	if err != nil {
		return err
	}
	if refunded != nil && len(got)-1 == len(refunded) {
		copy(refunded, got[1:])
	}
	return nil
}

// unapplied returns err, from a settle that could not be sent, under the
// outage policy: under FailOpen the usage is dropped (or, for a lease's
// settle, left to its retries: see resettle), counted as degraded.
func (s *set) unapplied(err error) error {
	if errors.Is(err, backend.ErrBackendUnavailable) {
		what := "settle dropped"
		if errors.Is(err, errRetried) {
			what = "settle retried in the background"
		}
		s.degradedDecision(what, err)
		if s.b.opts.Outage == FailOpen {
			return nil
		}
	}
	return err
}

// unleasedMember returns the member a settle of a grant without a lease
// sends: the id 0, then the granted amounts of every spec.
func unleasedMember(held []int64, n int) string {
	b := make([]byte, 0, 2+8*n)
	b = append(b, '0')
	for i := range n {
		var a int64
		if i < len(held) {
			a = held[i]
		}
		b = strconv.AppendInt(append(b, ' '), a, 10)
	}
	return string(b)
}
