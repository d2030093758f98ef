package batch

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/examples/llm-batch/provider"
	"github.com/concurry/concurry/httplimit"
)

// Keys of the client's limits, besides concurry.CallKey for requests:
// those under which httplimit.OpenAI asks for a request's tokens, and
// httplimit.Quota's key of concurrent requests.
const (
	KeyInputTokens  = httplimit.KeyInputTokens
	KeyOutputTokens = httplimit.KeyOutputTokens
	KeyConnections  = httplimit.KeyConnections
)

// ClientLimits returns the limits the client keeps for one endpoint, derived
// from the provider's quota so that nothing it grants can be refused:
//
//   - The provider's quotas are token buckets of capacity C (one minute's
//     quota) refilling at r = C per minute. It counts a call up to Delay (Δ)
//     after the client grants it. If the client's grants conform to a bucket
//     of capacity C' and rate r — at most C' + r·L in any span of length L —
//     then what reaches the provider in a span of length L was granted in a
//     span of length L + Δ: at most C' + r·Δ + r·L. The provider takes all of
//     it iff C' + r·Δ ≤ C. So each limit holds C' = C − r·Δ over a window of
//     W' = C'/r = Minute − Δ: the same rate, a burst smaller by r·Δ.
//   - TokenBucket, GCRA, SlidingWindow and LeakyBucket conform to a bucket
//     of their own capacity and rate. FixedWindow grants up to 2·C' in one
//     window across a boundary, at most r·L + 2·C' in a span of length L, so
//     it gets half of that capacity over half the window: the same rate again.
//   - Concurrency needs no margin: the client holds a connection from before
//     it sends until after the response, longer than the provider counts it.
//
// Capacities are rounded down and windows up, so the rate never exceeds r.
func (c Config) ClientLimits() ([]concurry.Limit, error) {
	c, err := c.WithDefaults()
	if err != nil {
		return nil, err
	}
	var limits []concurry.Limit
	for _, q := range []struct {
		key       string
		perMinute int64
	}{{concurry.CallKey, c.Quota.RequestsPerMinute}, {KeyInputTokens, c.Quota.InputTokensPerMinute}, {KeyOutputTokens, c.Quota.OutputTokensPerMinute}} {
		capacity, window := c.clientRate(q.perMinute)
		if capacity < 1 {
			return nil, fmt.Errorf("%w: a quota of %d %s per minute leaves nothing after a margin for a delay of %v",
				ErrInvalidConfig, q.perMinute, q.key, c.Delay)
		}
		if q.key == concurry.CallKey {
			limits = append(limits, concurry.CallLimit{Window: window, Capacity: capacity, Algorithm: c.Algorithm})
		} else {
			limits = append(limits, concurry.RateLimit{Key: q.key, Window: window, Capacity: capacity, Algorithm: c.Algorithm})
		}
	}
	in, out := limits[1].(concurry.RateLimit), limits[2].(concurry.RateLimit)
	if c.MaxPromptTokens > in.Capacity || c.MaxTokens > out.Capacity {
		return nil, fmt.Errorf("%w: a call of %d input and %d output tokens exceeds the client's %v or %v",
			ErrInvalidConfig, c.MaxPromptTokens, c.MaxTokens, in, out)
	}
	return append(limits, concurry.ResourceLimit{Key: KeyConnections, Capacity: c.Quota.Concurrency}), nil
}

// clientRate returns the capacity and window of the client's limit for a
// quota of perMinute units per minute (see ClientLimits).
func (c Config) clientRate(perMinute int64) (int64, time.Duration) {
	w, d := uint64(c.Minute), uint64(c.Delay)
	capacity := mulDiv(uint64(perMinute), w-d, w, false) // C·(W−Δ)/W = C − r·Δ
	if c.Algorithm == concurry.FixedWindow {
		capacity /= 2
	}
	return int64(capacity), time.Duration(mulDiv(capacity, w, uint64(perMinute), true)) // C'/r
}

// mulDiv returns a·b/c without overflow, rounded down or up.
func mulDiv(a, b, c uint64, up bool) uint64 {
	hi, lo := bits.Mul64(a, b)
	q, r := bits.Div64(hi, lo, c)
	if up && r > 0 {
		q++
	}
	return q
}

// Margin returns the share of each quota the client keeps back for Delay:
// Delay/Minute.
func (c Config) Margin() float64 { return float64(c.Delay) / float64(c.Minute) }

// newLimits returns one LimitSet of limits per endpoint of p, in p.Report
// order, each named "region/account", with the run's hooks and, as config,
// its region, account, and what httplimit.Transport needs to route a
// request it grants: the endpoint's base URL and the account's API key;
// and a LimitPool over them.
func (r *run) newLimits(limits []concurry.Limit, p *provider.Server) ([]*concurry.LimitSet, *concurry.LimitPool, error) {
	c := r.cfg
	hooks := withWaitDone(c.Hooks, r.waits.waitDone)
	var sets []*concurry.LimitSet
	for _, region := range c.Regions {
		for _, account := range c.Accounts {
			ls, err := concurry.NewLimitSet(limits, concurry.WithName(region+"/"+account), concurry.WithHooks(hooks),
				concurry.WithConfig(map[string]any{
					"region": region, "account": account,
					httplimit.ConfigBaseURL: p.BaseURL(region, account),
					httplimit.ConfigHeaders: map[string]string{"Authorization": "Bearer sk-" + account},
				}))
			if err != nil {
				closeSets(sets)
				return nil, nil, err
			}
			r.waits.sets[ls] = len(sets)
			sets = append(sets, ls)
		}
	}
	pool, err := concurry.NewLimitPool(sets, concurry.WithBalancing(c.Balancing))
	if err != nil {
		closeSets(sets)
		return nil, nil, err
	}
	return sets, pool, nil
}

func closeSets(sets []*concurry.LimitSet) {
	for _, ls := range sets {
		_ = ls.Close()
	}
}
