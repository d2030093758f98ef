package batch

import (
	"fmt"
	"strings"
	"time"

	"github.com/concurry/concurry"
)

// BedrockQuota is the AWS Bedrock default quota of one (region, account) for
// Claude 3.7 Sonnet that the concurry limits guide uses: 500 requests, 400,000
// input tokens and 100,000 output tokens per minute. Bedrock publishes no
// connection cap; the 160 here is ours.
var BedrockQuota = Quota{
	RequestsPerMinute:     500,
	InputTokensPerMinute:  400_000,
	OutputTokensPerMinute: 100_000,
	Concurrency:           160,
}

// DefaultQuota is BedrockQuota divided by 20, the quota of every endpoint
// when Config.Quota is zero. With a one-second minute, 2,000 prompts take
// about 16 seconds.
var DefaultQuota = Quota{
	RequestsPerMinute:     BedrockQuota.RequestsPerMinute / 20,
	InputTokensPerMinute:  BedrockQuota.InputTokensPerMinute / 20,
	OutputTokensPerMinute: BedrockQuota.OutputTokensPerMinute / 20,
	Concurrency:           BedrockQuota.Concurrency / 20,
}

// DefaultRegions and DefaultAccounts are the three regions and two accounts
// of the limits guide's Bedrock example.
var (
	DefaultRegions  = []string{"us-east-1", "eu-west-3", "ap-south-1"}
	DefaultAccounts = []string{"123456789012", "234567890123"}
)

// Config describes a batch run. The zero value is the default run: 2,000
// prompts, 48 workers, TokenBucket limits in a RoundRobin pool, the guide's
// three regions and two accounts with DefaultQuota and a one-second minute.
// Every field's zero value means its default.
type Config struct {
	// Prompts is the size of the batch. Default 2,000.
	Prompts int
	// Workers is the number of workers of the pool. Default 48: the number of
	// connections the quotas allow (6 endpoints × 8).
	Workers int
	// Algorithm is the algorithm of the client's rate and call limits.
	// Default TokenBucket.
	Algorithm concurry.Algorithm
	// Balancing is how the LimitPool picks a (region, account). Default
	// RoundRobin.
	Balancing concurry.Balancing
	// Naive sends the batch with no limiter at all: round robin over the
	// endpoints, retrying every 429.
	Naive bool
	// Stream asks for every answer as a stream of server-sent events, usage
	// in its last chunk, rather than as one JSON body. Default false.
	Stream bool
	// ForeignShare is the share, in [0, 1), of every endpoint's quotas that
	// a foreign client spends: another program on the same accounts that the
	// batch's limiter never sees (provider.Options.ForeignShare). Only the
	// provider's rate-limit headers and 429s tell the limiter about it.
	// Default 0: none.
	ForeignShare float64
	// NoFeedback turns off what the limiter learns from the provider: its
	// rate-limit headers lower no limit and its 429s pause no LimitSet
	// (httplimit.Transport.NoFeedback). For comparisons. Default false.
	NoFeedback bool
	// Hooks are called with the decisions of every LimitSet, after the
	// batch's own (its chart of waits): a Prometheus collector's, say.
	// Default none.
	Hooks concurry.Hooks
	// Observe, when not nil, is called with the LimitPool once its sets are
	// made, before the first prompt is sent, to register it with a metrics
	// collector, say; an error fails the run. Each set is named
	// "region/account".
	Observe func(*concurry.LimitPool) error

	// Regions and Accounts are the provider's endpoints: every (region,
	// account). Default DefaultRegions and DefaultAccounts.
	Regions, Accounts []string
	// Quota is what each endpoint allows per minute. Default DefaultQuota.
	Quota Quota
	// Minute is how long a minute lasts, for the provider and the client.
	// Default 1s.
	Minute time.Duration
	// Delay is the longest time the client allows between granting a call
	// and the provider counting it: scheduling and the network, some 15ms at
	// worst here on an idle machine. The client's limits keep a margin of
	// rate·Delay below each quota for it: 5% with the defaults. Default 50ms.
	Delay time.Duration

	// MinPromptTokens and MaxPromptTokens bound the input tokens of a
	// prompt, drawn uniformly. Default 100 and 700.
	MinPromptTokens, MaxPromptTokens int64
	// MaxTokens is the max_tokens of every call; the provider produces a
	// random number of output tokens from 1 to MaxTokens. Default 512.
	MaxTokens int64
	// MinLatency and MaxLatency bound the provider's random latency per
	// call. Default a tenth and three tenths of Minute (100ms and 300ms),
	// so that a faster minute needs no more connections.
	MinLatency, MaxLatency time.Duration
	// Retries is how many times a call is tried again after a 429 or a
	// transport error: by the limiter's transport, on another (region,
	// account) when one can grant, then by the worker pool. Default 100.
	Retries int
	// Seed makes the prompts and the provider's randomness repeatable.
	// Default 1.
	Seed uint64
	// InMemory runs the provider in the process alone, with no socket: the
	// clients reach it through its in-memory transport. Inside a
	// testing/synctest bubble a run is then on the bubble's fake clock, and
	// exact: every call reaches the provider at the instant it was granted.
	// Default false: a loopback socket, as a real provider would be.
	InMemory bool

	// Progress, when not nil, is called every ProgressInterval while the
	// batch runs, and once at its end, from a goroutine of Run's.
	Progress func(Progress)
	// ProgressInterval is how often Progress is called. Default 100ms.
	ProgressInterval time.Duration
}

// Progress is how far a run has come.
type Progress struct {
	Done, Total int           // prompts completed (or failed), and in all
	RateLimited int64         // 429s received so far
	Elapsed     time.Duration // since the first submission
	Final       bool          // the last call, when the batch is over
}

// WithDefaults returns c with the default of every zero field filled in,
// or ErrInvalidConfig when a setting can never run.
func (c Config) WithDefaults() (Config, error) {
	def := func(p *int64, v int64) {
		if *p == 0 {
			*p = v
		}
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if c.Prompts == 0 {
		c.Prompts = 2000
	}
	if c.Workers == 0 {
		c.Workers = 48
	}
	if c.Regions == nil {
		c.Regions = DefaultRegions
	}
	if c.Accounts == nil {
		c.Accounts = DefaultAccounts
	}
	if c.Quota == (Quota{}) {
		c.Quota = DefaultQuota
	}
	defDur(&c.Minute, time.Second)
	defDur(&c.Delay, 50*time.Millisecond)
	def(&c.MinPromptTokens, 100)
	def(&c.MaxPromptTokens, 700)
	def(&c.MaxTokens, 512)
	defDur(&c.MinLatency, c.Minute/10)
	defDur(&c.MaxLatency, c.Minute*3/10)
	if c.Retries == 0 {
		c.Retries = 100
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	defDur(&c.ProgressInterval, 100*time.Millisecond)
	return c, c.check()
}

// check reports settings that can never run.
func (c Config) check() error {
	q := c.Quota
	switch {
	case c.Prompts < 0 || c.Workers < 0 || c.Retries < 0:
		return fmt.Errorf("%w: negative prompts, workers or retries", ErrInvalidConfig)
	case len(c.Regions) == 0 || len(c.Accounts) == 0:
		return fmt.Errorf("%w: no regions or no accounts", ErrInvalidConfig)
	case q.RequestsPerMinute <= 0 || q.InputTokensPerMinute <= 0 || q.OutputTokensPerMinute <= 0 || q.Concurrency <= 0:
		return fmt.Errorf("%w: every quota must be positive: %+v", ErrInvalidConfig, q)
	case c.Minute < 0 || c.Delay < 0 || c.Delay >= c.Minute:
		return fmt.Errorf("%w: delay %v must be less than the minute %v", ErrInvalidConfig, c.Delay, c.Minute)
	case c.MinPromptTokens < 1 || c.MaxPromptTokens < c.MinPromptTokens || c.MaxPromptTokens > q.InputTokensPerMinute:
		return fmt.Errorf("%w: prompt tokens [%d, %d] must fit the input quota", ErrInvalidConfig, c.MinPromptTokens, c.MaxPromptTokens)
	case c.MaxTokens < 1 || c.MaxTokens > q.OutputTokensPerMinute:
		return fmt.Errorf("%w: max_tokens %d must fit the output quota", ErrInvalidConfig, c.MaxTokens)
	case c.MinLatency < 0 || c.MaxLatency < c.MinLatency:
		return fmt.Errorf("%w: latency [%v, %v]", ErrInvalidConfig, c.MinLatency, c.MaxLatency)
	case !(c.ForeignShare >= 0 && c.ForeignShare < 1): // also refuses NaN
		return fmt.Errorf("%w: foreign share %v: want [0, 1)", ErrInvalidConfig, c.ForeignShare)
	}
	return nil
}

// ParseBalancing returns the balancing named s: "roundrobin" or "random",
// matched without regard to case, '-' or '_'.
func ParseBalancing(s string) (concurry.Balancing, error) {
	norm := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	for _, b := range []concurry.Balancing{concurry.RoundRobin, concurry.Random} {
		if strings.ToLower(b.String()) == norm {
			return b, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown balancing %q (roundrobin or random)", ErrInvalidConfig, s)
}
