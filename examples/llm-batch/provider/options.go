package provider

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// MaxQuota is the largest value of any Quota field: 2^50, the largest
// capacity a concurry limit may have.
const MaxQuota = 1 << 50

// Quota is what one (region, account) allows. Each per-minute quota is a
// token bucket that holds one minute's quota, starts full and refills
// continuously at that many units per Options.Minute. Every field but
// TokensPerMinute must be in [1, MaxQuota].
type Quota struct {
	// RequestsPerMinute is the number of calls per minute.
	RequestsPerMinute int64 `json:"requests_per_minute"`
	// InputTokensPerMinute is the number of input (prompt) tokens per
	// minute, counted at admission.
	InputTokensPerMinute int64 `json:"input_tokens_per_minute"`
	// OutputTokensPerMinute is the number of output tokens per minute. A
	// call reserves its maximum (max_tokens) at admission; what it does not
	// produce comes back when it ends.
	OutputTokensPerMinute int64 `json:"output_tokens_per_minute"`
	// TokensPerMinute, when positive, is a quota on input and output tokens
	// together (OpenAI's TPM): a call takes its input plus its maximum
	// output, and gets the unused output back when it ends. Zero (the
	// default) means none; at most MaxQuota.
	TokensPerMinute int64 `json:"tokens_per_minute,omitempty"`
	// Concurrency is the number of calls served at once.
	Concurrency int64 `json:"concurrency"`
}

// Options configures a Server. The zero value of every field but Regions,
// Accounts and Quota means its default.
type Options struct {
	// Regions and Accounts name the provider's accounts: one per (region,
	// account), each with its own Quota. Names are 1 to 64 bytes of
	// letters, digits, '.', '_' and '-', unique, and not "v1". Required.
	Regions, Accounts []string
	// Quota is the quota of every (region, account). Required.
	Quota Quota
	// Minute is how long a minute lasts; a shorter one speeds a simulation
	// up, quotas and all. Default time.Minute; at most 366 days.
	Minute time.Duration
	// MinLatency and MaxLatency bound the time a call takes, drawn
	// uniformly per call; a stream spreads its chunks over it. Default 0:
	// calls are answered at once. 0 ≤ MinLatency ≤ MaxLatency ≤ 1 hour.
	MinLatency, MaxLatency time.Duration
	// MaxOutputTokens is the model's largest output per call: a request
	// asking for more is a 400, and the OpenAI APIs reserve it for a
	// request that names no maximum. Default 8,192; at most 1,048,576.
	MaxOutputTokens int64
	// MaxRequestBytes caps the size of a request body; a larger one is a
	// 413. Default 4 MiB; at most 1 GiB.
	MaxRequestBytes int64
	// ForeignShare is the share, in [0, 1], of each account's quota that a
	// foreign client spends: another program on the same accounts that
	// concurry never sees. It makes a call every Minute / (ForeignShare ×
	// RequestsPerMinute) on every account, of one request and
	// 1/RequestsPerMinute of each token quota, admitted or refused by the
	// same accounting as any call (AccountReport counts both). Default 0:
	// none.
	ForeignShare float64
	// CountTokens is the provider's tokenizer, applied to every text of a
	// request's prompt; a negative count is 0. One that panics or calls
	// runtime.Goexit costs its call a 500 (ErrTokenizerFailed) and the
	// Server serves on. Default CountTokens: one token per word.
	CountTokens func(string) int64
	// Seed makes outputs and latencies repeatable: a call's output length,
	// text and latency are drawn from Seed and the bytes of its request.
	// Default 0.
	Seed uint64
}

// Limits of the Options fields.
const (
	maxNameLen         = 64
	maxMinute          = 366 * 24 * time.Hour
	maxLatency         = time.Hour
	defaultMaxOutput   = 8192
	maxMaxOutput       = 1 << 20
	defaultMaxRequest  = 4 << 20
	maxMaxRequestBytes = 1 << 30
)

// withDefaults returns o with the default of every zero field filled in, or
// an error wrapping ErrInvalidOptions naming the field that can never run.
func (o Options) withDefaults() (Options, error) {
	if o.Minute == 0 {
		o.Minute = time.Minute
	}
	if o.MaxOutputTokens == 0 {
		o.MaxOutputTokens = defaultMaxOutput
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = defaultMaxRequest
	}
	if o.CountTokens == nil {
		o.CountTokens = CountTokens
	}
	if err := o.check(); err != nil {
		return o, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return o, nil
}

// check reports the first field of o (with its defaults) that can never run.
func (o Options) check() error {
	q := o.Quota
	switch {
	case len(o.Regions) == 0 || len(o.Accounts) == 0:
		return fmt.Errorf("no regions or no accounts")
	case !inRange(q.RequestsPerMinute, 1) || !inRange(q.InputTokensPerMinute, 1) ||
		!inRange(q.OutputTokensPerMinute, 1) || !inRange(q.Concurrency, 1) || !inRange(q.TokensPerMinute, 0):
		return fmt.Errorf("quota %+v: want every field in [1, 2^50], TokensPerMinute in [0, 2^50]", q)
	case o.Minute < 0 || o.Minute > maxMinute:
		return fmt.Errorf("minute %v: want (0, 366 days]", o.Minute)
	case o.MinLatency < 0 || o.MaxLatency < o.MinLatency || o.MaxLatency > maxLatency:
		return fmt.Errorf("latency [%v, %v]: want 0 ≤ min ≤ max ≤ 1h", o.MinLatency, o.MaxLatency)
	case o.MaxOutputTokens < 0 || o.MaxOutputTokens > maxMaxOutput:
		return fmt.Errorf("max output tokens %d: want [1, 2^20]", o.MaxOutputTokens)
	case o.MaxRequestBytes < 0 || o.MaxRequestBytes > maxMaxRequestBytes:
		return fmt.Errorf("max request bytes %d: want [1, 2^30]", o.MaxRequestBytes)
	case !(o.ForeignShare >= 0 && o.ForeignShare <= 1): // also refuses NaN
		return fmt.Errorf("foreign share %v: want [0, 1]", o.ForeignShare)
	}
	if err := checkNames("region", o.Regions); err != nil {
		return err
	}
	return checkNames("account", o.Accounts)
}

func inRange(v, lo int64) bool { return v >= lo && v <= MaxQuota }

// checkNames reports a name that cannot be routed to (see the package
// comment), or a duplicate.
func checkNames(what string, names []string) error {
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || len(n) > maxNameLen || n == "v1" || strings.Trim(n, nameChars) != "" {
			return fmt.Errorf("%s name %q: want 1 to %d bytes of letters, digits, '.', '_', '-', and not \"v1\"", what, n, maxNameLen)
		}
		if seen[n] {
			return fmt.Errorf("%s %q named twice", what, n)
		}
		seen[n] = true
	}
	return nil
}

const nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

// foreignPeriod returns the time between two calls of the foreign client
// on one account, rounded up to a nanosecond, or 0 for no foreign client
// (a share of 0, or calls rarer than once in 366 days).
func (o Options) foreignPeriod() time.Duration {
	if o.ForeignShare <= 0 {
		return 0
	}
	p := math.Ceil(float64(o.Minute) / (o.ForeignShare * float64(o.Quota.RequestsPerMinute)))
	if p > float64(maxMinute) {
		return 0
	}
	return time.Duration(max(p, 1))
}
