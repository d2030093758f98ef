package httplimit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/httplimit"
)

// upstream is an in-memory API: it records the requests it gets and answers
// with what answer returns.
type upstream struct {
	mu     sync.Mutex
	got    []*http.Request
	bodies []string
	answer func(r *http.Request, body string) *http.Response
}

func (u *upstream) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.got = append(u.got, r)
	u.bodies = append(u.bodies, string(b))
	u.mu.Unlock()
	resp := u.answer(r, string(b))
	resp.Request = r
	return resp, nil
}

func (u *upstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.got...)
}

func respond(status int, contentType, body string, headers ...string) *http.Response {
	h := http.Header{"Content-Type": {contentType}}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

const chatRequest = `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hello there"}]}`

func chatUsage(in, out int64) string {
	return fmt.Sprintf(`{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`, in, out, in+out)
}

func set(t *testing.T, name, base string, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	ls, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithConfig(map[string]any{
		httplimit.ConfigBaseURL: base,
		httplimit.ConfigHeaders: map[string]string{"Authorization": "Bearer key-" + name},
	}))
	require.NoError(t, err)
	return ls
}

func post(t *testing.T, c *http.Client, body string) *http.Response {
	t.Helper()
	resp, err := c.Post("http://llm/v1/chat/completions", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	return resp
}

func available(t *testing.T, ls *concurry.LimitSet, key string) int64 {
	t.Helper()
	st, err := ls.Stats(context.Background())
	require.NoError(t, err)
	l, ok := st.Limit(key)
	require.True(t, ok, key)
	return l.Available
}

// A request is routed to the granting set's endpoint with its key, and its
// real usage is settled when the caller has read the body.
func TestTransportRoutesAndSettles(t *testing.T) {
	up := &upstream{answer: func(*http.Request, string) *http.Response {
		return respond(200, "application/json", chatUsage(7, 3))
	}}
	ls := set(t, "us", "https://us.example.com/acct-1",
		concurry.CallLimit{Window: time.Hour, Capacity: 10},
		concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 1000})
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
	resp := post(t, c, chatRequest)
	assert.Less(t, available(t, ls, httplimit.KeyTokens), int64(1000-100), "held while the body is unread")
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, chatUsage(7, 3), string(b), "the caller reads the body untouched")
	r := up.requests()[0]
	assert.Equal(t, "https://us.example.com/acct-1/v1/chat/completions", r.URL.String())
	assert.Equal(t, "Bearer key-us", r.Header.Get("Authorization"))
	assert.Equal(t, chatRequest, up.bodies[0])
	assert.Equal(t, int64(990), available(t, ls, httplimit.KeyTokens), "10 tokens used, the rest refunded")
	assert.Equal(t, int64(9), available(t, ls, concurry.CallKey))
}

func TestTransportHoldsResourcesUntilClose(t *testing.T) {
	up := &upstream{answer: func(*http.Request, string) *http.Response {
		return respond(200, "application/json", chatUsage(1, 1))
	}}
	ls := set(t, "a", "http://a.example", concurry.ResourceLimit{Key: httplimit.KeyConnections, Capacity: 1})
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
	resp := post(t, c, chatRequest)
	_, err := ls.TryAcquire(context.Background(), nil)
	require.ErrorIs(t, err, concurry.ErrWouldBlock, "the connection is held until the body is closed")
	require.NoError(t, resp.Body.Close())
	a, err := ls.TryAcquire(context.Background(), nil)
	require.NoError(t, err)
	require.NoError(t, a.Release())
}

func TestTransportReadsStreamedUsage(t *testing.T) {
	openAIStream := "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":5,\"total_tokens\":25}}\n\n" +
		"data: [DONE]\n\n"
	anthropicStream := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":30,\"output_tokens\":1}}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n" +
		"event: message_delta\r\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":12}}\r\n\r\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	for _, tc := range []struct {
		name   string
		api    httplimit.API
		stream string
		want   map[string]int64
	}{
		{"openai", httplimit.OpenAI{}, openAIStream, map[string]int64{httplimit.KeyTokens: 1000 - 25}},
		{"anthropic", httplimit.Anthropic{}, anthropicStream, map[string]int64{httplimit.KeyInputTokens: 1000 - 30, httplimit.KeyOutputTokens: 1000 - 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstream{answer: func(*http.Request, string) *http.Response {
				return respond(200, "text/event-stream; charset=utf-8", tc.stream)
			}}
			ls := set(t, tc.name, "http://x.example",
				concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 1000},
				concurry.RateLimit{Key: httplimit.KeyInputTokens, Window: time.Hour, Capacity: 1000},
				concurry.RateLimit{Key: httplimit.KeyOutputTokens, Window: time.Hour, Capacity: 1000})
			c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: tc.api}}
			resp := post(t, c, chatRequest)
			// Read in small pieces, as a streaming client does.
			buf := make([]byte, 7)
			var got strings.Builder
			for {
				n, err := resp.Body.Read(buf)
				got.Write(buf[:n])
				if err != nil {
					break
				}
			}
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, tc.stream, got.String())
			for k, want := range tc.want {
				assert.Equal(t, want, available(t, ls, k), k)
			}
		})
	}
}

// A 429 pauses the set until its Retry-After and the request goes to the
// other set of the pool; the caller sees only the answer.
func TestTransportFailsOverOn429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{answer: func(r *http.Request, _ string) *http.Response {
			if r.URL.Host == "a.example" {
				return respond(429, "application/json", `{"error":{"type":"rate_limit_exceeded"}}`, "retry-after-ms", "1500")
			}
			return respond(200, "application/json", chatUsage(1, 1))
		}}
		limits := []concurry.Limit{concurry.CallLimit{Window: time.Hour, Capacity: 100}}
		a, b := set(t, "a", "http://a.example", limits...), set(t, "b", "http://b.example", limits...)
		pool, err := concurry.NewLimitPool([]*concurry.LimitSet{a, b})
		require.NoError(t, err)
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: pool, API: httplimit.OpenAI{}}}
		resp := post(t, c, chatRequest)
		require.Equal(t, 200, resp.StatusCode)
		require.NoError(t, resp.Body.Close())
		got := up.requests()
		require.Len(t, got, 2)
		assert.Equal(t, "a.example", got[0].URL.Host)
		assert.Equal(t, "b.example", got[1].URL.Host)
		_, err = a.TryAcquire(context.Background(), nil)
		var refusal *concurry.RefusalError
		require.ErrorAs(t, err, &refusal, "a is paused")
		assert.Equal(t, 1500*time.Millisecond, refusal.RetryAfter)
		time.Sleep(1500 * time.Millisecond)
		assert.Equal(t, int64(99), available(t, a, concurry.CallKey), "the refused call counts (providers count refused requests), its tokens do not")
		acq, err := a.TryAcquire(context.Background(), nil)
		require.NoError(t, err, "the pause is over")
		require.NoError(t, acq.Release())
	})
}

func TestTransportGivesUpAfterMaxRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{answer: func(*http.Request, string) *http.Response {
			return respond(503, "application/json", `{}`, "Retry-After", "1")
		}}
		ls := set(t, "a", "http://a.example", concurry.CallLimit{Window: time.Hour, Capacity: 100})
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}, MaxRetries: 2}}
		start := time.Now()
		resp := post(t, c, chatRequest)
		assert.Equal(t, 503, resp.StatusCode, "the last answer reaches the caller")
		require.NoError(t, resp.Body.Close())
		assert.Len(t, up.requests(), 3)
		assert.Equal(t, 2*time.Second, time.Since(start), "each retry waited out the pause")
		for _, b := range up.bodies {
			assert.Equal(t, chatRequest, b, "the body is sent whole every time")
		}
	})
}

// Rate-limit headers lower the set to what the upstream has left, less what
// is still in flight and the margin.
func TestTransportAppliesRateLimitHeaders(t *testing.T) {
	up := &upstream{answer: func(*http.Request, string) *http.Response {
		return respond(200, "application/json", chatUsage(1, 1),
			"x-ratelimit-remaining-requests", "40", "x-ratelimit-reset-requests", "6m0s",
			"x-ratelimit-remaining-tokens", "500", "x-ratelimit-reset-tokens", "20ms")
	}}
	ls := set(t, "a", "http://a.example",
		concurry.CallLimit{Window: time.Hour, Capacity: 100},
		concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 1000})
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
	resp := post(t, c, chatRequest)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, int64(40-2), available(t, ls, concurry.CallKey), "40 left, less a 2% margin of 100")
	assert.Equal(t, int64(500-20), available(t, ls, httplimit.KeyTokens), "500 left, less a 2% margin of 1000")

	off := set(t, "b", "http://b.example", concurry.CallLimit{Window: time.Hour, Capacity: 100})
	c = &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: off, API: httplimit.OpenAI{}, NoFeedback: true}}
	resp = post(t, c, chatRequest)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, int64(99), available(t, off, concurry.CallKey), "NoFeedback: only the call itself")
}

// When the upstream has less left than the margin (and what is in flight),
// the set goes into debt by the difference, so that the margin still holds
// where it matters: at the quota's end.
func TestTransportLowersIntoDebt(t *testing.T) {
	up := &upstream{answer: func(*http.Request, string) *http.Response {
		return respond(200, "application/json", chatUsage(1, 1), "x-ratelimit-remaining-tokens", "5", "x-ratelimit-reset-tokens", "1s")
	}}
	ls := set(t, "a", "http://a.example", concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 1000})
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
	resp := post(t, c, chatRequest)
	require.NoError(t, resp.Body.Close())
	st, err := ls.Stats(context.Background())
	require.NoError(t, err)
	l, _ := st.Limit(httplimit.KeyTokens)
	assert.Zero(t, l.Available)
	assert.Equal(t, int64(20-5), l.Debt, "5 left, less a 2% margin of 1000: 15 in debt")
}

// A remaining count describes the upstream when it admitted the request:
// what was sent before is in it, and must not be taken twice; what was
// sent after is not, nor what was given back since.
func TestTransportReadsRemainingAsOfTheRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := set(t, "a", "http://a.example", concurry.RateLimit{Key: httplimit.KeyTokens, Window: 10 * time.Second, Capacity: 1000})
		cost := slowThenFast(t, ls, nil, func() {
			assert.Equal(t, 700-20+httplimit.EstimateTokens([]byte(chatRequest))+100-2, available(t, ls, httplimit.KeyTokens),
				"700 left when it was admitted, less the margin; the slow request was sent before, and is in the count; then 2 used")
		})
		assert.Equal(t, 700-cost+(cost-2)-20+(cost-2), available(t, ls, httplimit.KeyTokens),
			"700 left when the slow one was admitted, less the other one sent since and plus what it gave back, "+
				"less the margin; then 2 used")
	})
}

// slowThenFast sends, through a Transport over ls, a slow request and,
// while the upstream holds it, a fast one, each answered with 2 tokens used
// and 700 remaining; before and after (each may be nil) run just before and
// after the fast request. It returns a request's cost in tokens. Run it in
// a synctest bubble.
func slowThenFast(t *testing.T, ls *concurry.LimitSet, before, after func()) int64 {
	t.Helper()
	slowSent := make(chan struct{})
	up := &upstream{answer: func(r *http.Request, _ string) *http.Response {
		if r.Header.Get("X-Slow") != "" {
			close(slowSent)
			time.Sleep(time.Second)
		}
		return respond(200, "application/json", chatUsage(1, 1), "x-ratelimit-remaining-tokens", "700")
	}}
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
	send := func(slow bool) {
		req, err := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
		require.NoError(t, err)
		if slow {
			req.Header.Set("X-Slow", "1")
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		_, err = io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		send(true)
	}()
	<-slowSent
	if before != nil {
		before()
	}
	send(false)
	if after != nil {
		after()
	}
	<-done
	return httplimit.EstimateTokens([]byte(chatRequest)) + 100
}

func TestTransportRespectsTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{answer: func(*http.Request, string) *http.Response { return respond(200, "application/json", "{}") }}
		ls := set(t, "a", "http://a.example", concurry.CallLimit{Window: time.Hour, Capacity: 1})
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
		resp := post(t, c, chatRequest)
		require.NoError(t, resp.Body.Close())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
		start := time.Now()
		_, err := c.Do(req)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Duration(0), time.Since(start), "the hour-long wait fails at once")
		assert.Len(t, up.requests(), 1)
	})
}

func TestTransportErrorReleases(t *testing.T) {
	ls := set(t, "a", "http://a.example", concurry.ResourceLimit{Key: httplimit.KeyConnections, Capacity: 1})
	c := &http.Client{Transport: &httplimit.Transport{Base: failing{}, Limiter: ls, API: httplimit.OpenAI{}}}
	_, err := c.Post("http://llm/v1/chat/completions", "application/json", strings.NewReader(chatRequest))
	require.ErrorContains(t, err, "connection refused")
	a, err := ls.TryAcquire(context.Background(), nil)
	require.NoError(t, err, "the failed request's connection is back")
	require.NoError(t, a.Release())
}

type failing struct{}

func (failing) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("dial: connection refused")
}

func TestQuotaLimits(t *testing.T) {
	q := httplimit.Quota{Requests: 500, Tokens: 100_000, Connections: 8}
	assert.Equal(t, []concurry.Limit{
		concurry.CallLimit{Window: time.Minute, Capacity: 490},
		concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Minute, Capacity: 98_000},
		concurry.ResourceLimit{Key: httplimit.KeyConnections, Capacity: 8},
	}, q.Limits())
	exact := httplimit.Quota{InputTokens: 50, OutputTokens: 1, Margin: -1, Window: time.Second}
	assert.Equal(t, []concurry.Limit{
		concurry.RateLimit{Key: httplimit.KeyInputTokens, Window: time.Second, Capacity: 50},
		concurry.RateLimit{Key: httplimit.KeyOutputTokens, Window: time.Second, Capacity: 1},
	}, exact.Limits())
}

// The Transport sends a copy: the caller's request keeps its URL, headers
// and body, and a retry sends the body again.
func TestTransportLeavesTheCallersRequestAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls int
		up := &upstream{answer: func(*http.Request, string) *http.Response {
			if calls++; calls == 1 {
				return respond(429, "application/json", `{"error":{}}`, "Retry-After", "1")
			}
			return respond(200, "application/json", chatUsage(1, 1))
		}}
		a := set(t, "a", "https://a.example/acct", concurry.CallLimit{Window: time.Hour, Capacity: 10})
		b := set(t, "b", "https://b.example", concurry.CallLimit{Window: time.Hour, Capacity: 10})
		pool, err := concurry.NewLimitPool([]*concurry.LimitSet{a, b})
		require.NoError(t, err)
		tr := &httplimit.Transport{Base: up, Limiter: pool, API: httplimit.OpenAI{}}
		req, err := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer caller")
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, "http://llm/v1/chat/completions", req.URL.String())
		assert.Equal(t, "Bearer caller", req.Header.Get("Authorization"))
		got := up.requests()
		require.Len(t, got, 2)
		assert.Equal(t, "https://a.example/acct/v1/chat/completions", got[0].URL.String())
		assert.Equal(t, "Bearer key-a", got[0].Header.Get("Authorization"))
		assert.Equal(t, "https://b.example/v1/chat/completions", got[1].URL.String())
		assert.Equal(t, "Bearer key-b", got[1].Header.Get("Authorization"))
		assert.Equal(t, []string{chatRequest, chatRequest}, up.bodies, "the body is sent whole each time")
		body, err := got[1].GetBody()
		require.NoError(t, err)
		again, _ := io.ReadAll(body)
		assert.Equal(t, chatRequest, string(again), "GetBody replays it")
	})
}

// The body is read whole, with or without a Content-Length (even a wrong
// one), up to MaxBody.
func TestTransportReadsTheBodyUpToMaxBody(t *testing.T) {
	up := &upstream{answer: func(*http.Request, string) *http.Response {
		return respond(200, "application/json", chatUsage(1, 1))
	}}
	ls := set(t, "a", "http://a.example", concurry.CallLimit{Window: time.Hour, Capacity: 100})
	tr := &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}, MaxBody: int64(len(chatRequest))}
	for i, length := range []int64{int64(len(chatRequest)), -1, 10, 0} {
		req, err := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", io.NopCloser(strings.NewReader(chatRequest)))
		require.NoError(t, err)
		req.ContentLength = length
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err, "Content-Length %d", length)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, chatRequest, up.bodies[i], "Content-Length %d", length)
		assert.Equal(t, int64(len(chatRequest)), up.requests()[i].ContentLength)
	}
	req, err := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest+" "))
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	require.ErrorContains(t, err, "request body over")
	assert.Len(t, up.requests(), 4)
}

// Usage is read from a JSON answer whatever its size, with or without a
// Content-Length, and from a stream whatever its Content-Type's case.
func TestTransportReadsUsageOfAnySize(t *testing.T) {
	long := strings.Repeat("x", 100_000)
	answer := `{"choices":[{"message":{"content":"` + long + `"}}],"usage":{"prompt_tokens":7,"completion_tokens":3}}`
	stream := "data: {\"choices\":[{\"delta\":{\"content\":\"" + long + "\"}}],\"usage\":null}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n"
	for _, tc := range []struct {
		name, contentType, body string
		length                  int64
	}{
		{"json", "application/json", answer, int64(len(answer))},
		{"json without length", "application/json", answer, -1},
		{"stream", "Text/Event-Stream ; charset=utf-8", stream, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstream{answer: func(*http.Request, string) *http.Response {
				resp := respond(200, tc.contentType, tc.body)
				resp.ContentLength = tc.length
				return resp
			}}
			ls := set(t, "a", "http://a.example", concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 10_000})
			c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
			resp := post(t, c, chatRequest)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, tc.body, string(b))
			assert.Equal(t, int64(10_000-10), available(t, ls, httplimit.KeyTokens))
		})
	}
}

// ownAPI is an API of the caller's own: the Transport reads its headers
// through its Limits, not the presets' shortcut.
type ownAPI struct{ httplimit.OpenAI }

// Each preset's rate-limit headers, and an API of one's own, lower the set.
func TestTransportAppliesEachAPIsHeaders(t *testing.T) {
	openAI := []string{"x-ratelimit-remaining-requests", "40", "x-ratelimit-reset-requests", "6m0s",
		"x-ratelimit-remaining-tokens", "500", "x-ratelimit-reset-tokens", "20ms"}
	anthropic := []string{"anthropic-ratelimit-requests-remaining", "40", "anthropic-ratelimit-requests-reset", "2026-01-01T00:00:00Z",
		"anthropic-ratelimit-tokens-remaining", "500", "anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:00Z"}
	for _, tc := range []struct {
		name    string
		api     httplimit.API
		headers []string
	}{
		{"openai", httplimit.OpenAI{}, openAI},
		{"anthropic", httplimit.Anthropic{}, anthropic},
		{"own", ownAPI{}, openAI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstream{answer: func(*http.Request, string) *http.Response {
				return respond(200, "application/json", `{}`, tc.headers...)
			}}
			ls := set(t, tc.name, "http://a.example",
				concurry.CallLimit{Window: time.Hour, Capacity: 100},
				concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 1000})
			c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: tc.api}}
			resp := post(t, c, chatRequest)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, int64(40-2), available(t, ls, concurry.CallKey), "40 left, less a 2% margin of 100")
			assert.Equal(t, int64(500-20), available(t, ls, httplimit.KeyTokens), "500 left, less a 2% margin of 1000")
		})
	}
}
