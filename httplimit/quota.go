package httplimit

import (
	"math"
	"time"

	"github.com/concurry/concurry"
)

// DefaultMargin is the share of an upstream's quota a [Quota] keeps unused:
// 2 %. A local bucket set exactly at the quota still meets 429s with no
// other client on the account, because it refills while its first requests
// are in transit and the upstream's full bucket cannot; against the
// examples' simulated provider 2 % kept 0 × 429 at 97 % of the quota's
// throughput.
const DefaultMargin = 0.02

// The keys a Quota's limits use, and the API presets' Cost and usage name.
const (
	KeyTokens       = "tokens"        // input + output tokens (OpenAI's TPM)
	KeyInputTokens  = "input_tokens"  // Anthropic's ITPM
	KeyOutputTokens = "output_tokens" // Anthropic's OTPM
	KeyConnections  = "connections"   // concurrent requests
)

// Quota is an upstream account's published quota. Zero fields are limits
// the account does not have.
type Quota struct {
	Requests     int64 // requests per Window
	Tokens       int64 // tokens (input + output) per Window
	InputTokens  int64 // input tokens per Window
	OutputTokens int64 // output tokens per Window
	Connections  int64 // requests at once
	// Window is the quota's period; 0 means a minute.
	Window time.Duration
	// Margin is the share of each rate kept unused; 0 means DefaultMargin,
	// negative means none.
	Margin float64
	// Algorithm of the rate limits; the zero value is TokenBucket, which is
	// how the big LLM providers describe their limits.
	Algorithm concurry.Algorithm
}

// Limits returns the quota as limits for a LimitSet: a CallLimit for
// Requests, RateLimits under KeyTokens, KeyInputTokens and KeyOutputTokens,
// and a ResourceLimit under KeyConnections, each rate lowered by the margin
// (at least 1).
func (q Quota) Limits() []concurry.Limit {
	w, m := q.Window, q.Margin
	if w == 0 {
		w = time.Minute
	}
	switch {
	case m == 0:
		m = DefaultMargin
	case m < 0:
		m = 0
	}
	less := func(n int64) int64 { return max(1, int64(math.Floor(float64(n)*(1-m)))) }
	var ls []concurry.Limit
	if q.Requests > 0 {
		ls = append(ls, concurry.CallLimit{Window: w, Capacity: less(q.Requests), Algorithm: q.Algorithm})
	}
	for _, r := range []struct {
		key string
		n   int64
	}{{KeyTokens, q.Tokens}, {KeyInputTokens, q.InputTokens}, {KeyOutputTokens, q.OutputTokens}} {
		if r.n > 0 {
			ls = append(ls, concurry.RateLimit{Key: r.key, Window: w, Capacity: less(r.n), Algorithm: q.Algorithm})
		}
	}
	if q.Connections > 0 {
		ls = append(ls, concurry.ResourceLimit{Key: KeyConnections, Capacity: q.Connections})
	}
	return ls
}
