package batch

import (
	"context"
	"time"

	"github.com/concurry/concurry/examples/llm-batch/provider"
	"github.com/concurry/concurry/worker"
)

// Summary is what a run did: the client's view and the provider's own
// accounting, per (region, account) and in total.
type Summary struct {
	Mode            string  `json:"mode"` // "concurry" or "naive"
	Algorithm       string  `json:"algorithm,omitempty"`
	Balancing       string  `json:"balancing,omitempty"`
	Workers         int     `json:"workers"`
	Prompts         int     `json:"prompts"`
	Completed       int     `json:"completed"`        // prompts answered
	Failed          int     `json:"failed"`           // prompts that failed for good
	Attempts        int64   `json:"attempts"`         // calls sent, retries included
	RateLimited     int64   `json:"rate_limited"`     // 429s received
	TransportErrors int64   `json:"transport_errors"` // calls that got no response
	WallSeconds     float64 `json:"wall_seconds"`
	RequestsPerSec  float64 `json:"requests_per_second"`
	// MaxRequests is the most requests the quotas allowed in the wall time
	// T: the sum over endpoints of the least, over the three per-minute
	// quotas, of (capacity + rate·T) / the average cost of a request in that
	// quota, from the provider's own accounting.
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
	Utilization    Utilization      `json:"utilization"`
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
		Mode: "concurry", Algorithm: c.Algorithm.String(), Balancing: c.Balancing.String(), Workers: c.Workers,
		Prompts: len(r.prompts), Attempts: r.attempts.Load(), RateLimited: r.totalRateLimited(),
		TransportErrors: r.transport.Load(), WallSeconds: wall.Seconds(), Quota: c.Quota,
		MinuteSeconds: c.Minute.Seconds(), MarginPercent: 100 * c.Margin(), Wall: wall, Minute: c.Minute,
	}
	if c.Naive {
		s.Mode, s.Algorithm, s.Balancing, s.MarginPercent = "naive", "", "", 0
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
// quota, (capacity + rate·T) / the average cost of a request, with averages
// from the provider's own accounting; the least of the three per endpoint,
// summed over the endpoints.
func (s *Summary) throughput() {
	if s.Wall > 0 {
		s.RequestsPerSec = float64(s.Completed) / s.Wall.Seconds()
	}
	t := s.Total
	if t.Requests == 0 {
		return
	}
	perEndpoint := s.allowed(s.Quota.RequestsPerMinute)
	s.Binding = "requests"
	for _, d := range []struct {
		name      string
		perMinute int64
		used      int64
	}{{"input_tokens", s.Quota.InputTokensPerMinute, t.InputTokens}, {"output_tokens", s.Quota.OutputTokensPerMinute, t.OutputTokens}} {
		avg := float64(d.used) / float64(t.Requests)
		if m := s.allowed(d.perMinute) / avg; avg > 0 && m < perEndpoint {
			perEndpoint, s.Binding = m, d.name
		}
	}
	s.MaxRequests = perEndpoint * float64(len(s.Endpoints))
	s.Throughput = float64(s.Completed) / s.MaxRequests
	s.RequestsPerSec = float64(s.Completed) / s.Wall.Seconds()
}
