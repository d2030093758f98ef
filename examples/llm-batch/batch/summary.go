package batch

import (
	"context"
	"math"
	"time"

	"github.com/concurry/concurry/examples/llm-batch/provider"
	"github.com/concurry/concurry/worker"
)

// Summary is what a run did: the client's view and the provider's own
// accounting, per (region, account) and in total.
type Summary struct {
	Mode         string  `json:"mode"` // "concurry" or "naive"
	Algorithm    string  `json:"algorithm,omitempty"`
	Balancing    string  `json:"balancing,omitempty"`
	Stream       bool    `json:"stream"`        // answers were streamed
	Feedback     bool    `json:"feedback"`      // the limiter heeded the provider's headers and 429s
	ForeignShare float64 `json:"foreign_share"` // of each quota, spent by a client the limiter never saw
	Workers      int     `json:"workers"`       //
	Prompts      int     `json:"prompts"`       //
	Completed    int     `json:"completed"`     // prompts answered
	Failed       int     `json:"failed"`        // prompts that failed for good
	Attempts     int64   `json:"attempts"`      // SDK calls, the worker pool's retries included
	SDKErrors    int64   `json:"sdk_errors"`    // SDK calls that failed: the errors the SDK saw
	Calls        int64   `json:"calls"`         // calls sent to the provider, the transport's retries included
	RateLimited  int64   `json:"rate_limited"`  // 429s received from the provider
	// TransportErrors counts calls that got no response.
	TransportErrors int64   `json:"transport_errors"`
	WallSeconds     float64 `json:"wall_seconds"`
	RequestsPerSec  float64 `json:"requests_per_second"`
	// MaxRequests is the most requests the quotas allowed the client in the
	// wall time T: the sum over endpoints of the least, over the three
	// per-minute quotas, of (capacity + rate·T − what the foreign client
	// spent) / the average cost of a request in that quota, from the
	// provider's own accounting.
	MaxRequests float64 `json:"max_requests"`
	// Binding is the quota that sets MaxRequests: "requests",
	// "input_tokens" or "output_tokens".
	Binding string `json:"binding_quota"`
	// Throughput is Completed / MaxRequests.
	Throughput    float64           `json:"throughput_fraction"`
	Quota         Quota             `json:"quota"`
	MinuteSeconds float64           `json:"minute_seconds"`
	MarginPercent float64           `json:"margin_percent"` // of each quota the client kept back for Delay
	Endpoints     []EndpointSummary `json:"endpoints"`
	Total         EndpointSummary   `json:"total"`
	Errors        []string          `json:"errors,omitempty"` // up to five, of prompts that failed

	Wall       time.Duration `json:"-"`
	Minute     time.Duration `json:"-"`
	Results    []Result      `json:"-"` // of the prompts answered, by prompt ID
	Admissions []Admission   `json:"-"` // the calls served, in the order they were answered
	Waits      []Wait        `json:"-"` // the waits of granted requests, in the order they ended
}

// EndpointSummary is one (region, account), or the total of all.
type EndpointSummary struct {
	Region           string `json:"region,omitempty"`
	Account          string `json:"account,omitempty"`
	Requests         int64  `json:"requests"` // served, by the provider's accounting
	InputTokens      int64  `json:"input_tokens"`
	OutputTokens     int64  `json:"output_tokens"`
	RateLimited      int64  `json:"rate_limited"`      // 429s the client received from it
	ProviderRejected int64  `json:"provider_rejected"` // 429s it sent, by its own accounting
	// RejectedBy counts the provider's 429s by the quota that refused:
	// "requests", "input_tokens", "output_tokens" or "concurrency".
	RejectedBy     map[string]int64 `json:"rejected_by,omitempty"`
	MaxConnections int64            `json:"max_connections"` // most calls it served at once
	// ForeignServed and ForeignRejected count the foreign client's calls
	// the provider admitted and refused.
	ForeignServed   int64 `json:"foreign_served,omitempty"`
	ForeignRejected int64 `json:"foreign_rejected,omitempty"`
	// WaitSeconds is how long requests waited on each limit of the
	// endpoint's LimitSet, by its key (concurry.LimitStats.Waited), and
	// Bottleneck the key with the longest: the limit that held the
	// endpoint back ("" when nothing waited, and in the naive mode).
	WaitSeconds map[string]float64 `json:"wait_seconds,omitempty"`
	Bottleneck  string             `json:"bottleneck,omitempty"`
	Utilization Utilization        `json:"utilization"`
}

// Utilization is the share of each quota used over a run of wall time T:
// used / (capacity + rate·T) for the per-minute quotas — all that a token
// bucket starting full lets through in T — and the peak of connections in use
// over the cap.
type Utilization struct {
	Requests     float64 `json:"requests"`
	InputTokens  float64 `json:"input_tokens"`
	OutputTokens float64 `json:"output_tokens"`
	Connections  float64 `json:"connections"`
}

// summarize puts together the client's counters, the futures' outcomes and
// the provider's report.
func (r *run) summarize(report []provider.AccountReport, futures []*worker.Future[Result], wall time.Duration) Summary {
	c := r.cfg
	s := Summary{
		Mode: "concurry", Algorithm: c.Algorithm.String(), Balancing: c.Balancing.String(), Stream: c.Stream,
		Feedback: !c.NoFeedback, ForeignShare: c.ForeignShare, Workers: c.Workers, Prompts: len(r.prompts),
		Attempts: r.attempts.Load(), SDKErrors: r.failedAttempts.Load(), Calls: r.calls.Load(),
		RateLimited: r.totalRateLimited(), TransportErrors: r.transport.Load(), WallSeconds: wall.Seconds(),
		Quota: c.Quota, MinuteSeconds: c.Minute.Seconds(), MarginPercent: 100 * c.Margin(), Wall: wall, Minute: c.Minute,
		Waits: r.waits.all(),
	}
	if c.Naive {
		s.Mode, s.Algorithm, s.Balancing, s.MarginPercent, s.Feedback = "naive", "", "", 0, false
	}
	s.Failed = len(r.prompts) - len(futures) // never submitted
	for _, f := range futures {
		res, err := f.Result(context.Background())
		switch {
		case err == nil:
			s.Results = append(s.Results, res)
		case len(s.Errors) < 5:
			s.Errors = append(s.Errors, err.Error())
			fallthrough
		default:
			s.Failed++
		}
	}
	s.Completed = len(s.Results)
	r.mu.Lock()
	s.Admissions = append([]Admission(nil), r.admissions...)
	r.mu.Unlock()
	s.endpoints(report, r)
	s.throughput()
	return s
}

// endpoints fills in Endpoints and Total from the provider's report.
func (s *Summary) endpoints(report []provider.AccountReport, r *run) {
	for i, e := range report {
		es := EndpointSummary{
			Region: e.Region, Account: e.Account, Requests: e.Served, InputTokens: e.InputTokens,
			OutputTokens: e.OutputTokens, RateLimited: r.rateLimited[i].Load(), ProviderRejected: e.Rejected,
			MaxConnections: e.MaxInFlight, RejectedBy: e.RejectedByDimension,
			ForeignServed: e.ForeignServed, ForeignRejected: e.ForeignRejected,
		}
		es.Utilization = s.utilization(es, 1)
		s.Endpoints = append(s.Endpoints, es)
		t := &s.Total
		t.Requests += es.Requests
		t.InputTokens += es.InputTokens
		t.OutputTokens += es.OutputTokens
		t.RateLimited += es.RateLimited
		t.ProviderRejected += es.ProviderRejected
		t.MaxConnections = max(t.MaxConnections, es.MaxConnections)
		t.ForeignServed += es.ForeignServed
		t.ForeignRejected += es.ForeignRejected
	}
	s.Total.Utilization = s.utilization(s.Total, len(report))
	s.Total.Utilization.Connections = 0 // a peak per endpoint does not add up
}

// allowed returns how many units a quota of perMinute lets through in the
// wall time: a bucket of one minute's quota, full at the start, refilling at
// perMinute per minute.
func (s *Summary) allowed(perMinute int64) float64 {
	return float64(perMinute) * (1 + float64(s.Wall)/float64(s.Minute))
}

// utilization returns the shares of n endpoints' quotas that e used.
func (s *Summary) utilization(e EndpointSummary, n int) Utilization {
	q, k := s.Quota, float64(n)
	return Utilization{
		Requests:     float64(e.Requests) / (k * s.allowed(q.RequestsPerMinute)),
		InputTokens:  float64(e.InputTokens) / (k * s.allowed(q.InputTokensPerMinute)),
		OutputTokens: float64(e.OutputTokens) / (k * s.allowed(q.OutputTokensPerMinute)),
		Connections:  float64(e.MaxConnections) / float64(q.Concurrency),
	}
}

// throughput computes MaxRequests, Binding and Throughput: per endpoint and
// quota, (capacity + rate·T − the foreign client's use) / the average cost
// of a request, with averages from the provider's own accounting; the least
// of the three per endpoint, summed over the endpoints. The foreign client
// spends 1/RequestsPerMinute of every quota per call.
func (s *Summary) throughput() {
	if s.Wall > 0 {
		s.RequestsPerSec = float64(s.Completed) / s.Wall.Seconds()
	}
	t := s.Total
	if t.Requests == 0 {
		return
	}
	q := s.Quota
	dims := []struct {
		name      string
		perMinute int64
		avg       float64
	}{
		{"requests", q.RequestsPerMinute, 1},
		{"input_tokens", q.InputTokensPerMinute, float64(t.InputTokens) / float64(t.Requests)},
		{"output_tokens", q.OutputTokensPerMinute, float64(t.OutputTokens) / float64(t.Requests)},
	}
	binding := map[string]float64{}
	for _, e := range s.Endpoints {
		best, name := math.Inf(1), ""
		for _, d := range dims {
			left := s.allowed(d.perMinute) - float64(e.ForeignServed)*float64(d.perMinute)/float64(q.RequestsPerMinute)
			if m := max(0, left) / d.avg; d.avg > 0 && m < best {
				best, name = m, d.name
			}
		}
		s.MaxRequests += best
		binding[name] += best
	}
	for _, d := range dims { // the quota that bound the most requests
		if s.Binding == "" || binding[d.name] > binding[s.Binding] {
			s.Binding = d.name
		}
	}
	if s.MaxRequests > 0 {
		s.Throughput = float64(s.Completed) / s.MaxRequests
	}
}
