package httplimit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/concurry/concurry"
)

// Transport is an http.RoundTripper that puts an upstream API's limits in
// front of a client — an LLM SDK's HTTP client, say — so that the client
// never sends a request the upstream would refuse. For each request it:
//
//   - reads the body (it keeps it, to send it again if it must) and asks the
//     API for the request's cost (its tokens, its one call);
//   - acquires the cost from Limiter, a LimitSet or a LimitPool of one set per
//     endpoint (region, account), waiting as long as the request's context
//     allows;
//   - routes the request to the granting set's endpoint ([ConfigBaseURL],
//     [ConfigHeaders] in the set's config), so one client spreads over many
//     accounts;
//   - holds the acquisition, and with it every resource limit (concurrent
//     connections), until the response body is closed;
//   - settles the real usage, read from the response as the caller reads it
//     (a JSON body's usage, or a stream's usage events) without consuming
//     anything the caller would read;
//   - applies the upstream's rate-limit headers to the set on every response,
//     less what is still in flight (see [concurry.LimitSet.Lower]), and turns a
//     429 or 503 into a pause of the set until its Retry-After, then sends
//     the request again — on another set of a pool when one can grant — up
//     to MaxRetries times.
//
// The zero values of the optional fields are their defaults. A Transport is
// safe for concurrent use; do not change its fields after first use.
type Transport struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Limiter grants each request: a *concurry.LimitSet, or a
	// *concurry.LimitPool of one LimitSet per endpoint. Required.
	Limiter concurry.Limiter
	// API reads the upstream's requests and responses. Required: OpenAI,
	// Anthropic, or one of your own.
	API API
	// MaxRetries bounds how many times a request the upstream refused with
	// 429 or 503 is sent again: 0 means 3, negative means never.
	MaxRetries int
	// NoFeedback turns off what the Transport learns from the upstream: no
	// rate-limit header lowers a set and no 429 pauses one (retries still
	// happen). For comparisons.
	NoFeedback bool
	// MaxBody bounds the request body the Transport reads; 0 means 32 MiB.
	// A larger body fails the request.
	MaxBody int64
	// Margin is subtracted from every remaining count the upstream reports,
	// as a share of the limit's capacity: 0 means 0.02. It covers requests
	// the upstream counts before this process sees them answered.
	Margin float64

	once      sync.Once
	keys      map[string]bool // what the limiter's sets hold
	inflight  sync.Map        // *concurry.LimitSet → *flights
	endpoints sync.Map        // *concurry.LimitSet → *endpoint
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.once.Do(t.init)
	body, err := t.readBody(r)
	if err != nil {
		return nil, err
	}
	cost, err := t.API.Cost(r, body)
	if err != nil {
		return nil, fmt.Errorf("httplimit: the cost of %s %s: %w", r.Method, r.URL, err)
	}
	for k := range cost {
		if !t.keys[k] {
			delete(cost, k)
		}
	}
	retries := t.MaxRetries
	if retries == 0 {
		retries = 3
	}
	var getBody func() (io.ReadCloser, error)
	if body != nil {
		getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	for attempt := 0; ; attempt++ {
		resp, again, err := t.attempt(r, body, getBody, cost, attempt < retries)
		if !again {
			return resp, err
		}
	}
}

func (t *Transport) init() {
	if t.Limiter == nil || t.API == nil {
		panic("httplimit: Transport needs a Limiter and an API")
	}
	t.keys = make(map[string]bool)
	for _, ls := range sets(t.Limiter) {
		for _, k := range ls.Keys() {
			t.keys[k] = true
		}
	}
}

// sets returns the LimitSets behind lim.
func sets(lim concurry.Limiter) []*concurry.LimitSet {
	switch l := lim.(type) {
	case *concurry.LimitSet:
		return []*concurry.LimitSet{l}
	case *concurry.LimitPool:
		out := make([]*concurry.LimitSet, l.Len())
		for i := range out {
			out[i] = l.At(i)
		}
		return out
	}
	return nil
}

// readBody reads the request's body whole, into one buffer of its
// Content-Length when it has one.
func (t *Transport) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	limit := t.MaxBody
	if limit <= 0 {
		limit = 32 << 20
	}
	size := int64(512)
	if r.ContentLength > 0 && r.ContentLength <= limit {
		size = r.ContentLength + 1 // room for the read that finds the end
	}
	body := make([]byte, 0, size)
	for {
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)]
		}
		n, err := r.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if int64(len(body)) > limit {
			return nil, fmt.Errorf("httplimit: request body over %d bytes", limit)
		}
		if err == io.EOF {
			return body, nil
		}
		if err != nil {
			return nil, fmt.Errorf("httplimit: reading the request body: %w", err)
		}
	}
}

// exchange is what one attempt allocates, in one piece: the request it
// sends (a shallow copy of the caller's, which a RoundTripper must not
// change), its URL and body, the marks of what was in flight when it was
// sent, and the response body that settles it.
type exchange struct {
	req     http.Request
	url     url.URL
	body    bytes.Reader
	marks   []flightMark
	markBuf [4]flightMark
	resp    usageBody
}

// attempt acquires, sends and handles one try. again says whether to try
// once more (the upstream refused and retry allows it).
func (t *Transport) attempt(r *http.Request, body []byte, getBody func() (io.ReadCloser, error), cost concurry.Amounts, retry bool) (*http.Response, bool, error) {
	ctx := r.Context()
	acq, err := t.Limiter.Acquire(ctx, cost)
	if err != nil {
		return nil, false, fmt.Errorf("httplimit: %w", err)
	}
	x := new(exchange)
	if err := x.route(r, body, getBody, t.endpointOf(acq.Set())); err != nil {
		_ = acq.Release()
		return nil, false, err
	}
	f := t.flights(acq.Set())
	x.marks = f.send(cost, x.markBuf[:0])
	sent := time.Now()
	resp, err := t.base().RoundTrip(&x.req)
	if err != nil {
		_ = acq.Release() // unknown whether the upstream counted it: charged as acquired
		return nil, false, err
	}
	if !t.NoFeedback {
		t.apply(ctx, acq.Set(), f, resp, sent, x.marks)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		// The upstream counted nothing: give back what the request took.
		_ = acq.Update(zero(cost))
		var buf [4]flightUnits
		f.giveBack(appendUnits(buf[:0], cost))
		if retry && ctx.Err() == nil {
			_ = acq.Release()
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil, true, nil
		}
		// The caller gets the refusal: its connection is held until it
		// closes the body, as for any answer.
		resp.Body = &releasingBody{ReadCloser: resp.Body, acq: acq}
		return resp, false, nil
	}
	x.resp.init(resp, acq, cost, t.API, f)
	resp.Body = &x.resp
	return resp, false, nil
}

// feedbackTimeout bounds how long applying an answer's feedback to a shared
// set may take in the background, once the caller's ctx has ended.
const feedbackTimeout = 5 * time.Second

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// route makes x.req the request to send for one attempt: r with the body
// and the granting set's endpoint.
func (x *exchange) route(r *http.Request, body []byte, getBody func() (io.ReadCloser, error), e *endpoint) error {
	if e.err != nil {
		return e.err
	}
	out := &x.req
	*out = *r
	if body != nil {
		// A bytes.Reader in io.NopCloser is a body net/http knows is in
		// memory: it writes it with the headers, in one write, where a
		// body of its own type would have the headers flushed first.
		x.body.Reset(body)
		out.Body, out.GetBody, out.ContentLength = io.NopCloser(&x.body), getBody, int64(len(body))
	}
	if base := e.base; base != nil {
		x.url = *r.URL
		u := &x.url
		u.Scheme, u.Host = base.Scheme, base.Host
		if p := trimSlash(base.Path); p != "" {
			u.Path = p + u.Path
			if u.RawPath != "" {
				u.RawPath = trimSlash(base.EscapedPath()) + u.RawPath
			}
		}
		out.URL, out.Host = u, ""
	}
	if len(e.headers) > 0 && !hasHeaders(r.Header, e.headers) {
		h := r.Header.Clone()
		if h == nil {
			h = make(http.Header, len(e.headers))
		}
		for k, val := range e.headers {
			h.Set(k, val)
		}
		out.Header = h
	}
	return nil
}

// hasHeaders reports whether h already holds each of want as its only
// value.
func hasHeaders(h http.Header, want map[string]string) bool {
	for k, val := range want {
		if v := h.Values(k); len(v) != 1 || v[0] != val {
			return false
		}
	}
	return true
}

// endpoint is a set's routing, read from its config once.
type endpoint struct {
	base    *url.URL
	headers map[string]string
	err     error // a config that cannot route
}

// endpointOf returns ls's endpoint, parsing its config on first use: a
// set's config never changes.
func (t *Transport) endpointOf(ls *concurry.LimitSet) *endpoint {
	if e, ok := t.endpoints.Load(ls); ok {
		return e.(*endpoint)
	}
	config := ls.Config()
	e := &endpoint{}
	if v, ok := config[ConfigBaseURL]; ok {
		s, _ := v.(string)
		base, err := url.Parse(s)
		if err != nil || base.Host == "" {
			e.err = fmt.Errorf("httplimit: config %s %q is not an absolute URL", ConfigBaseURL, s)
		}
		e.base = base
	}
	if v, ok := config[ConfigHeaders]; ok {
		h, ok := v.(map[string]string)
		if !ok {
			e.err = fmt.Errorf("httplimit: config %s is a %T, not a map[string]string", ConfigHeaders, v)
		}
		e.headers = h
	}
	got, _ := t.endpoints.LoadOrStore(ls, e)
	return got.(*endpoint)
}

func trimSlash(p string) string {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// zero returns amounts with every key at 0.
func zero(a concurry.Amounts) concurry.Amounts {
	z := make(concurry.Amounts, len(a))
	for k := range a {
		z[k] = 0
	}
	return z
}

// apply turns what resp says of the upstream's limits into feedback on ls.
// A remaining count describes the upstream when it admitted the request,
// about when it was sent: so it is lowered by what was sent to ls after
// this request (mark), which the count cannot hold, and raised by what was
// given back since (unused tokens settled, refused requests); then less the
// margin. What the upstream refilled since is not added: a client it does
// not see may have spent it, and a non-streamed answer's headers, which
// come with its end, can be that old.
func (t *Transport) apply(ctx context.Context, ls *concurry.LimitSet, f *flights, resp *http.Response, sent time.Time, mark []flightMark) {
	margin := t.Margin
	if margin == 0 {
		margin = 0.02
	}
	var buf [4]Remaining
	var late []func(context.Context) error // feedback the caller's ctx ended before it was applied
	for _, rem := range t.remaining(resp.Header, buf[:0]) {
		l, ok := ls.Limit(rem.Key)
		if !ok {
			continue
		}
		_, _, c := describe(l)
		after, back := f.since(mark, rem.Key)
		key, left := rem.Key, rem.Remaining-after+back-int64(margin*float64(c)+0.999999)
		if err := ls.Lower(ctx, key, left, sent); err != nil && ctx.Err() != nil {
			late = append(late, func(ctx context.Context) error { return ls.Lower(ctx, key, left, sent) })
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		now := time.Now()
		until := now.Add(retryAfter(resp.Header, now))
		if err := ls.Pause(ctx, "", until); err != nil && ctx.Err() != nil {
			late = append(late, func(ctx context.Context) error { return ls.Pause(ctx, "", until) })
		}
	}
	if len(late) > 0 {
		// The upstream's facts are every sharer's, not only this caller's:
		// what the caller's ended ctx kept from a shared set goes on in the
		// background, so that the call still returns by its deadline.
		go func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), feedbackTimeout)
			defer cancel()
			for _, apply := range late {
				_ = apply(ctx)
			}
		}()
	}
}

// remaining returns the API's Limits of h. Of the presets it reads only
// the remaining counts, into buf: apply has no use for the reset instants.
func (t *Transport) remaining(h http.Header, buf []Remaining) []Remaining {
	switch t.API.(type) {
	case OpenAI:
		return appendRemaining(buf, h, openAIRateHeaders, nil)
	case Anthropic:
		return appendRemaining(buf, h, anthropicRateHeaders, nil)
	}
	return t.API.Limits(h, time.Now())
}

// retryAfter reads retry-after-ms or Retry-After (seconds or an HTTP date),
// and defaults to one second.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && !math.IsInf(ms, 1) {
			return saturate(ms, time.Millisecond)
		}
	}
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && !math.IsInf(s, 1) {
			return saturate(s, time.Second)
		}
		if at, err := http.ParseTime(v); err == nil {
			return max(0, at.Sub(now))
		}
	}
	return time.Second
}

// saturate returns n units, at most the longest Duration: converting a
// float64 beyond it to an integer is undefined (MinInt64 on amd64).
func saturate(n float64, unit time.Duration) time.Duration {
	if d := n * float64(unit); d < float64(math.MaxInt64) {
		return time.Duration(d)
	}
	return math.MaxInt64
}

// flights counts, per key, the units of the requests sent to one set, and
// the units given back: unused tokens settled, refused requests' tokens.
// The counts wrap around on overflow; the differences since takes stay
// exact.
type flights struct {
	mu   sync.Mutex
	sent map[string]int64 // guarded by mu; units sent so far
	back map[string]int64 // guarded by mu; units given back so far
}

// flightMark is the counts of one key when a request was sent, that
// request included.
type flightMark struct {
	key        string
	sent, back int64
}

// flightUnits is units of one key.
type flightUnits struct {
	key string
	n   int64
}

// appendUnits appends the amounts of a to u.
func appendUnits(u []flightUnits, a concurry.Amounts) []flightUnits {
	for k, n := range a {
		u = append(u, flightUnits{k, n})
	}
	return u
}

func (t *Transport) flights(ls *concurry.LimitSet) *flights {
	if f, ok := t.inflight.Load(ls); ok {
		return f.(*flights)
	}
	f, _ := t.inflight.LoadOrStore(ls, &flights{sent: make(map[string]int64), back: make(map[string]int64)})
	return f.(*flights)
}

// send counts a request of cost (and its call) as sent, and appends to
// mark the counts so far, this request included: the mark of since.
func (f *flights) send(cost concurry.Amounts, mark []flightMark) []flightMark {
	f.mu.Lock()
	for k, n := range cost {
		f.sent[k] += n
		mark = append(mark, flightMark{k, f.sent[k], f.back[k]})
	}
	f.sent[concurry.CallKey]++
	mark = append(mark, flightMark{concurry.CallKey, f.sent[concurry.CallKey], f.back[concurry.CallKey]})
	f.mu.Unlock()
	return mark
}

// giveBack counts units given back.
func (f *flights) giveBack(units []flightUnits) {
	f.mu.Lock()
	for _, u := range units {
		if u.n > 0 {
			f.back[u.key] += u.n
		}
	}
	f.mu.Unlock()
}

// since returns the units of key sent, and given back, after the request
// of mark was sent; 0 for a key the request did not take.
func (f *flights) since(mark []flightMark, key string) (sent, back int64) {
	for _, m := range mark {
		if m.key == key {
			f.mu.Lock()
			sent, back = f.sent[key]-m.sent, f.back[key]-m.back
			f.mu.Unlock()
			return sent, back
		}
	}
	return 0, 0
}

// releasingBody releases acq when the body is closed.
type releasingBody struct {
	io.ReadCloser
	acq  *concurry.Acquisition
	once sync.Once
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { _ = b.acq.Release() })
	return err
}
