package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Quota is what the simulated provider allows one (region, account) per
// minute, and how many calls it serves at once.
type Quota struct {
	RequestsPerMinute     int64 `json:"requests_per_minute"`
	InputTokensPerMinute  int64 `json:"input_tokens_per_minute"`
	OutputTokensPerMinute int64 `json:"output_tokens_per_minute"`
	Concurrency           int64 `json:"concurrency"`
}

// InvokeRequest is the body of a call to the provider.
type InvokeRequest struct {
	Prompt    string `json:"prompt"`
	MaxTokens int64  `json:"max_tokens"`
}

// InvokeResponse is the provider's answer: the text and the real usage.
type InvokeResponse struct {
	Text  string `json:"text"`
	Usage struct {
		InputTokens  int64 `json:"input_tokens"`
		OutputTokens int64 `json:"output_tokens"`
	} `json:"usage"`
}

// CountTokens is the provider's tokenizer: one token per whitespace-separated
// word. Clients may use it to estimate input exactly.
func CountTokens(s string) int64 { return int64(len(strings.Fields(s))) }

// bucket is the provider's own accounting of one quota: a token bucket of
// capacity units refilling at capacity per minute, in float64 — deliberately
// independent of concurry.
type bucket struct {
	capacity, level float64
	perNano         float64
	last            time.Time
}

func newBucket(capacity int64, minute time.Duration, now time.Time) *bucket {
	c := float64(capacity)
	return &bucket{capacity: c, level: c, perNano: c / float64(minute), last: now}
}

func (b *bucket) refill(now time.Time) {
	if now.After(b.last) {
		b.level = math.Min(b.capacity, b.level+float64(now.Sub(b.last))*b.perNano)
		b.last = now
	}
}

// wait returns how long until n units are there (0 when they are).
func (b *bucket) wait(n float64) time.Duration {
	if b.level >= n {
		return 0
	}
	return time.Duration(math.Ceil((n - b.level) / b.perNano))
}

// endpoint is one (region, account) of the provider.
type endpoint struct {
	mu                  sync.Mutex
	requests, in, out   *bucket // guarded by mu
	inFlight            int64   // guarded by mu
	quota               Quota
	served, rejected    int64 // guarded by mu
	usedIn, usedOut     int64 // guarded by mu
	maxInFlight         int64 // guarded by mu
	rejectedByDimension map[string]int64
}

// admit charges a call's input and reserved output, or says how long to wait.
func (e *endpoint) admit(now time.Time, in, maxOut int64) (retryAfter time.Duration, dim string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range []*bucket{e.requests, e.in, e.out} {
		b.refill(now)
	}
	for _, c := range []struct {
		name string
		b    *bucket
		n    float64
	}{{"requests", e.requests, 1}, {"input_tokens", e.in, float64(in)}, {"output_tokens", e.out, float64(maxOut)}} {
		if w := c.b.wait(c.n); w > 0 {
			retryAfter, dim = max(retryAfter, w), c.name
		}
	}
	if e.inFlight >= e.quota.Concurrency {
		retryAfter, dim = max(retryAfter, time.Millisecond), "concurrency"
	}
	if dim != "" {
		e.rejected++
		e.rejectedByDimension[dim]++
		return retryAfter, dim
	}
	e.requests.level--
	e.in.level -= float64(in)
	e.out.level -= float64(maxOut)
	e.inFlight++
	e.maxInFlight = max(e.maxInFlight, e.inFlight)
	return 0, ""
}

// finish returns the call's connection and the output it reserved but did
// not produce.
func (e *endpoint) finish(now time.Time, in, maxOut, out int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.out.refill(now)
	e.out.level = math.Min(e.out.capacity, e.out.level+float64(maxOut-out))
	e.inFlight--
	e.served++
	e.usedIn += in
	e.usedOut += out
}

// ProviderOptions configures a simulated provider.
type ProviderOptions struct {
	Regions, Accounts []string
	Quota             Quota
	Minute            time.Duration // the length of a minute; 1s makes a run 60× faster
	MinLatency        time.Duration // each call takes a random time in [MinLatency, MaxLatency]
	MaxLatency        time.Duration
	Seed              uint64
}

// Provider is a simulated LLM provider: a real HTTP server on 127.0.0.1 with
// one endpoint per (region, account), each enforcing its Quota with its own
// accounting and answering 429 with Retry-After when a call would exceed it.
type Provider struct {
	URL   string
	opts  ProviderOptions
	eps   map[string]*endpoint
	srv   *http.Server
	ln    net.Listener
	done  chan struct{}
	rngMu sync.Mutex
	rng   *rand.Rand // guarded by rngMu
}

// StartProvider starts a provider on a random loopback port.
func StartProvider(opts ProviderOptions) (*Provider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Provider{
		URL: "http://" + ln.Addr().String(), opts: opts, eps: map[string]*endpoint{}, ln: ln,
		done: make(chan struct{}), rng: rand.New(rand.NewPCG(opts.Seed, 0x11)),
	}
	now := time.Now()
	for _, r := range opts.Regions {
		for _, a := range opts.Accounts {
			p.eps[r+"/"+a] = &endpoint{
				quota:               opts.Quota,
				requests:            newBucket(opts.Quota.RequestsPerMinute, opts.Minute, now),
				in:                  newBucket(opts.Quota.InputTokensPerMinute, opts.Minute, now),
				out:                 newBucket(opts.Quota.OutputTokensPerMinute, opts.Minute, now),
				rejectedByDimension: map[string]int64{},
			}
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{region}/{account}/invoke", p.invoke)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// Endpoint returns the URL of a (region, account).
func (p *Provider) Endpoint(region, account string) string {
	return fmt.Sprintf("%s/%s/%s/invoke", p.URL, region, account)
}

// Close stops the server and waits for it.
func (p *Provider) Close(ctx context.Context) error {
	err := p.srv.Shutdown(ctx)
	<-p.done
	return err
}

func (p *Provider) random(lo, hi int64) int64 {
	p.rngMu.Lock()
	defer p.rngMu.Unlock()
	if hi <= lo {
		return lo
	}
	return lo + p.rng.Int64N(hi-lo+1)
}

func (p *Provider) invoke(w http.ResponseWriter, r *http.Request) {
	ep, ok := p.eps[r.PathValue("region")+"/"+r.PathValue("account")]
	if !ok {
		http.Error(w, "no such endpoint", http.StatusNotFound)
		return
	}
	var req InvokeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.MaxTokens <= 0 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	in := CountTokens(req.Prompt)
	if wait, dim := ep.admit(time.Now(), in, req.MaxTokens); wait > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(wait.Seconds())), 10))
		w.Header().Set("Retry-After-Ms", strconv.FormatInt(wait.Milliseconds()+1, 10))
		http.Error(w, "quota exceeded: "+dim, http.StatusTooManyRequests)
		return
	}
	out := p.random(1, req.MaxTokens)
	latency := time.Duration(p.random(int64(p.opts.MinLatency), int64(p.opts.MaxLatency)))
	select {
	case <-time.After(latency):
	case <-r.Context().Done():
	}
	ep.finish(time.Now(), in, req.MaxTokens, out)
	var resp InvokeResponse
	resp.Text = strings.Repeat("lorem ", int(min(out, 32)))
	resp.Usage.InputTokens, resp.Usage.OutputTokens = in, out
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// EndpointReport is the provider's own account of one (region, account).
type EndpointReport struct {
	Region, Account     string
	Served, Rejected    int64
	RejectedByDimension map[string]int64
	InputTokens         int64
	OutputTokens        int64
	MaxInFlight         int64
}

// Report returns the provider's accounting, endpoint by endpoint in region
// then account order.
func (p *Provider) Report() []EndpointReport {
	var out []EndpointReport
	for _, r := range p.opts.Regions {
		for _, a := range p.opts.Accounts {
			ep := p.eps[r+"/"+a]
			ep.mu.Lock()
			dims := map[string]int64{}
			for k, v := range ep.rejectedByDimension {
				dims[k] = v
			}
			out = append(out, EndpointReport{
				Region: r, Account: a, Served: ep.served, Rejected: ep.rejected, RejectedByDimension: dims,
				InputTokens: ep.usedIn, OutputTokens: ep.usedOut, MaxInFlight: ep.maxInFlight,
			})
			ep.mu.Unlock()
		}
	}
	return out
}
