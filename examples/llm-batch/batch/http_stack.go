package batch

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/examples/llm-batch/provider"
	"github.com/concurry/concurry/httplimit"
)

// sdkBaseURL is the base URL the SDK clients of a limited run are made
// with: the limiter's transport sends each request to the endpoint of the
// LimitSet that granted it instead (httplimit.ConfigBaseURL).
const sdkBaseURL = "http://llm.invalid/v1/"

// httpStack returns the HTTP client of a run's SDK clients and a function
// that closes its idle connections. Its layers, from the SDK down:
//
//   - with pool (not Naive), an httplimit.Transport that acquires each
//     request's call and tokens from pool, routes it to the granting set's
//     endpoint, settles the usage its answer reports, applies the
//     provider's rate-limit headers and 429s as feedback (unless
//     NoFeedback), and retries a 429 up to Retries times. Its feedback
//     keeps back the limits' own margin, Delay/Minute of each quota (5 %
//     by default, where the transport's default is 2 %): a foreign client
//     spends in calls of 1/RequestsPerMinute of each quota (4 % here), and
//     one of them between a report and the next grant must not turn it
//     into a 429;
//   - the run's wire counter, which counts every call that reaches the
//     provider, and its 429s;
//   - the provider's in-memory transport (InMemory), or an http.Transport
//     keeping a connection per worker.
func (r *run) httpStack(prov *provider.Server, pool *concurry.LimitPool) (*http.Client, func()) {
	var base http.RoundTripper
	closeIdle := func() {}
	if r.cfg.InMemory {
		base = prov.Transport()
	} else {
		t := &http.Transport{MaxIdleConnsPerHost: r.cfg.Workers, IdleConnTimeout: time.Minute}
		base, closeIdle = t, t.CloseIdleConnections
	}
	var rt http.RoundTripper = &wireCounter{base: base, r: r}
	if pool != nil {
		rt = &httplimit.Transport{
			Base: rt, Limiter: pool, API: providerAPI{OpenAI: httplimit.OpenAI{CountTokens: countPromptTokens}, quota: r.cfg.Quota},
			MaxRetries: r.cfg.Retries, NoFeedback: r.cfg.NoFeedback, Margin: r.cfg.Margin(),
		}
	}
	return &http.Client{Transport: rt}, closeIdle
}

// callRecord is where the wire counter notes the last wire call of one SDK
// call: the endpoint it reached and when it was sent. It travels in the
// call's context.
type callRecord struct {
	endpoint int           // an index of run.endpoints; -1 before any call reached one
	sent     time.Duration // since the start of the run
}

type callRecordKey struct{}

// withCallRecord returns ctx carrying a new record.
func withCallRecord(ctx context.Context) (context.Context, *callRecord) {
	rec := &callRecord{endpoint: -1}
	return context.WithValue(ctx, callRecordKey{}, rec), rec
}

// wireCounter counts the calls that reach the provider — retries of the
// limiter's transport included — per endpoint, and their 429s, and notes
// each in its SDK call's record. Safe for concurrent use.
type wireCounter struct {
	base http.RoundTripper
	r    *run
}

// RoundTrip implements http.RoundTripper.
func (w *wireCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	ep := w.r.endpointOf(req.URL.Path)
	sent := time.Since(w.r.start)
	w.r.calls.Add(1)
	resp, err := w.base.RoundTrip(req)
	if err != nil {
		w.r.transport.Add(1)
		return nil, err
	}
	if resp.StatusCode == http.StatusTooManyRequests && ep >= 0 {
		w.r.rateLimited[ep].Add(1)
	}
	if rec, ok := req.Context().Value(callRecordKey{}).(*callRecord); ok {
		rec.endpoint, rec.sent = ep, sent
	}
	return resp, nil
}

// endpointOf returns the endpoint of a request's path, /{region}/{account}/…,
// or -1.
func (r *run) endpointOf(path string) int {
	region, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	account, _, _ := strings.Cut(rest, "/")
	if i, ok := r.index[region+"/"+account]; ok {
		return i
	}
	return -1
}
