package batch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

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
	region, account, url string
}

// run is one batch run: its settings and what the client has seen so far.
// Its counters are safe for concurrent use.
type run struct {
	cfg       Config
	prompts   []Prompt
	endpoints []endpointRef
	index     map[string]int // endpoint URL → index of endpoints
	start     time.Time      // set before the first task runs
	next      atomic.Uint64  // the naive client's round robin

	completed, attempts, transport atomic.Int64
	rateLimited                    []atomic.Int64 // per endpoint

	mu         sync.Mutex
	admissions []Admission // guarded by mu
}

func newRun(cfg Config, p *provider.Server) *run {
	r := &run{cfg: cfg, index: map[string]int{}}
	for _, region := range cfg.Regions {
		for _, account := range cfg.Accounts {
			url := p.InvokeURL(region, account)
			r.index[url] = len(r.endpoints)
			r.endpoints = append(r.endpoints, endpointRef{region, account, url})
		}
	}
	r.rateLimited = make([]atomic.Int64, len(r.endpoints))
	r.prompts = makePrompts(cfg.Prompts, cfg.MinPromptTokens, cfg.MaxPromptTokens, cfg.MaxTokens, cfg.Seed)
	return r
}

// task returns the work of prompt p for the worker pool.
func (r *run) task(p Prompt) worker.Task[*client, Result] {
	return func(ctx context.Context, c *client, lim concurry.Limiter) (Result, error) {
		if r.cfg.Naive {
			return r.attempt(ctx, c, int((r.next.Add(1)-1)%uint64(len(r.endpoints))), p)
		}
		return r.limited(ctx, c, lim, p)
	}
}

// limited makes one attempt at p through the limiter: it acquires a request,
// p's input tokens (counted exactly) and max_tokens of output — all from one
// (region, account) the LimitPool picks — calls that endpoint, and reports
// the real usage, so that unused output is refunded. A failed call reports
// the whole estimate: the provider may have counted it.
func (r *run) limited(ctx context.Context, c *client, lim concurry.Limiter, p Prompt) (Result, error) {
	acq, err := lim.Acquire(ctx, concurry.Amounts{KeyInputTokens: p.InputTokens, KeyOutputTokens: p.MaxTokens})
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = acq.Release() }() // usage is always reported below
	url, _ := acq.Config()["endpoint"].(string)
	ep, ok := r.index[url]
	if !ok {
		return Result{}, errors.New("batch: the acquisition names no known endpoint")
	}
	res, err := r.attempt(ctx, c, ep, p)
	usage := concurry.Amounts{KeyInputTokens: p.InputTokens, KeyOutputTokens: p.MaxTokens}
	if err == nil {
		usage = concurry.Amounts{KeyInputTokens: res.InputTokens, KeyOutputTokens: res.OutputTokens}
	}
	if uerr := acq.Update(usage); uerr != nil && err == nil {
		err = uerr
	}
	return res, err
}

// attempt calls endpoint ep with p once and counts what happened.
func (r *run) attempt(ctx context.Context, c *client, ep int, p Prompt) (Result, error) {
	sent := time.Since(r.start)
	r.attempts.Add(1)
	resp, err := c.call(ctx, r.endpoints[ep].url, p)
	switch {
	case errors.Is(err, ErrQuotaExceeded):
		r.rateLimited[ep].Add(1)
	case errors.Is(err, ErrTransport):
		r.transport.Add(1)
	}
	if err != nil {
		return Result{}, err
	}
	res := Result{
		PromptID: p.ID, Region: r.endpoints[ep].region, Account: r.endpoints[ep].account,
		InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens,
	}
	r.mu.Lock()
	r.admissions = append(r.admissions, Admission{At: sent, Endpoint: ep, InputTokens: res.InputTokens, OutputTokens: res.OutputTokens})
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
