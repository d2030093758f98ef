package batch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openai/openai-go/v3/option"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/examples/llm-batch/provider"
	"github.com/concurry/concurry/worker"
)

// Result is the answer to one prompt: where it was served and what it used.
type Result struct {
	PromptID        int
	Region, Account string
	InputTokens     int64
	OutputTokens    int64
}

// Admission is a call the provider served: when it was sent (since the
// start of the run), to which endpoint (an index of Summary.Endpoints), and
// what it used.
type Admission struct {
	At                        time.Duration
	Endpoint                  int
	InputTokens, OutputTokens int64
}

// endpointRef is one (region, account) as the client knows it.
type endpointRef struct {
	region, account, openAIURL string
}

// run is one batch run: its settings and what the client has seen so far.
// Its counters are safe for concurrent use.
type run struct {
	cfg       Config
	prompts   []Prompt
	endpoints []endpointRef
	index     map[string]int // "region/account" → index of endpoints
	start     time.Time      // set before the first task runs
	next      atomic.Uint64  // the naive client's round robin
	waits     waitLog

	completed, attempts, failedAttempts atomic.Int64   // SDK calls
	calls, transport                    atomic.Int64   // calls on the wire, and those that got no response
	rateLimited                         []atomic.Int64 // 429s on the wire, per endpoint

	mu         sync.Mutex
	admissions []Admission // guarded by mu
}

func newRun(cfg Config, p *provider.Server) *run {
	r := &run{cfg: cfg, index: map[string]int{}}
	for _, region := range cfg.Regions {
		for _, account := range cfg.Accounts {
			r.index[region+"/"+account] = len(r.endpoints)
			r.endpoints = append(r.endpoints, endpointRef{region, account, p.OpenAIBaseURL(region, account)})
		}
	}
	r.waits = waitLog{start: func() time.Time { return r.start }, sets: map[*concurry.LimitSet]int{}}
	r.rateLimited = make([]atomic.Int64, len(r.endpoints))
	r.prompts = makePrompts(cfg.Prompts, cfg.MinPromptTokens, cfg.MaxPromptTokens, cfg.MaxTokens, cfg.Seed)
	return r
}

// task returns the work of prompt p for the worker pool: one call of the
// SDK. Through the limiter, the HTTP client's transport acquires the call's
// request, input tokens (counted exactly) and max_tokens of output from the
// LimitPool, sends it to the (region, account) that granted them, and
// settles its real usage, so that unused output is refunded. A naive call
// goes to the endpoints in turn, with no limiter.
func (r *run) task(p Prompt) worker.Task[*client, Result] {
	return func(ctx context.Context, c *client, _ concurry.Limiter) (Result, error) {
		var opts []option.RequestOption
		if r.cfg.Naive {
			ep := int((r.next.Add(1) - 1) % uint64(len(r.endpoints)))
			opts = append(opts, option.WithBaseURL(r.endpoints[ep].openAIURL))
		}
		return r.attempt(ctx, c, p, opts...)
	}
}

// attempt makes one SDK call of p and counts what happened.
func (r *run) attempt(ctx context.Context, c *client, p Prompt, opts ...option.RequestOption) (Result, error) {
	ctx, rec := withCallRecord(ctx)
	r.attempts.Add(1)
	u, err := c.complete(ctx, p, opts...)
	if err == nil && rec.endpoint < 0 {
		err = fmt.Errorf("%w: the answer came from no known endpoint", ErrBadResponse)
	}
	if err != nil {
		r.failedAttempts.Add(1)
		return Result{}, err
	}
	e := r.endpoints[rec.endpoint]
	res := Result{PromptID: p.ID, Region: e.region, Account: e.account, InputTokens: u.input, OutputTokens: u.output}
	r.mu.Lock()
	r.admissions = append(r.admissions, Admission{At: rec.sent, Endpoint: rec.endpoint, InputTokens: u.input, OutputTokens: u.output})
	r.mu.Unlock()
	r.completed.Add(1)
	return res, nil
}

// totalRateLimited returns the 429s received so far.
func (r *run) totalRateLimited() int64 {
	var n int64
	for i := range r.rateLimited {
		n += r.rateLimited[i].Load()
	}
	return n
}
