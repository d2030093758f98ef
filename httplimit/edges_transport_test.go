package httplimit_test

// Edge tests of httplimit.Transport and of feedback from upstream, each
// against the sentence of DESIGN.md or of a doc comment it quotes.
// Helpers (upstream, respond, set, post, available, chatRequest, chatUsage)
// are those of transport_test.go.

import (
	"context"
	"errors"
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
	"github.com/concurry/concurry/backend/unixsock"
	"github.com/concurry/concurry/httplimit"
	"github.com/concurry/concurry/internal/testutil"
)

func probeCallSet(t *testing.T, name string) *concurry.LimitSet {
	return set(t, name, "http://"+name+".example", concurry.CallLimit{Window: time.Hour, Capacity: 100})
}

// tokensAndOneConnection returns a set of 1000 tokens an hour and one
// connection, and a client sending through it to up as OpenAI.
func tokensAndOneConnection(t *testing.T, up http.RoundTripper) (*concurry.LimitSet, *http.Client) {
	t.Helper()
	ls := set(t, "a", "http://a.example",
		concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 1000},
		concurry.ResourceLimit{Key: httplimit.KeyConnections, Capacity: 1})
	return ls, &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
}

// DESIGN "Feedback from upstream": "(1) pause until T — after a 429/503 with
// Retry-After, the set ... grants nothing until T, and waiters wake at T".
// Retry-After as an HTTP-date.
func TestEdgeRetryAfterHTTPDatePausesUntilExactInstant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		until := time.Now().Add(5 * time.Second).UTC()
		up := &upstream{answer: func(*http.Request, string) *http.Response {
			return respond(429, "application/json", `{}`, "Retry-After", until.Format(http.TimeFormat))
		}}
		ls := probeCallSet(t, "a")
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}, MaxRetries: -1}}
		resp := post(t, c, chatRequest)
		require.Equal(t, 429, resp.StatusCode)
		require.NoError(t, resp.Body.Close())

		woke := make(chan time.Time, 1)
		go func() {
			a, err := ls.Acquire(context.Background(), nil)
			if assert.NoError(t, err) {
				woke <- time.Now()
				_ = a.Release()
			}
		}()
		time.Sleep(time.Until(until) - time.Nanosecond)
		synctest.Wait()
		_, err := ls.TryAcquire(context.Background(), nil)
		var refusal *concurry.RefusalError
		require.ErrorAs(t, err, &refusal, "1ns before T the set is still paused")
		require.ErrorIs(t, err, concurry.ErrWouldBlock)
		assert.Equal(t, time.Nanosecond, refusal.RetryAfter)
		select {
		case <-woke:
			t.Fatal("waiter woke before T")
		default:
		}
		got := <-woke
		assert.True(t, got.Equal(until), "waiter wakes exactly at T: got %v want %v", got, until)
	})
}

// Same rule, Retry-After in seconds on a 503: the retry is sent exactly at T,
// never before.
func TestEdgeRetryAfterSecondsOn503RetriesExactlyAtT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var at []time.Time
		up := &upstream{answer: func(*http.Request, string) *http.Response {
			mu.Lock()
			defer mu.Unlock()
			at = append(at, time.Now())
			if len(at) == 1 {
				return respond(503, "application/json", `{}`, "Retry-After", "3")
			}
			return respond(200, "application/json", chatUsage(1, 1))
		}}
		ls := probeCallSet(t, "a")
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
		start := time.Now()
		resp := post(t, c, chatRequest)
		require.Equal(t, 200, resp.StatusCode)
		require.NoError(t, resp.Body.Close())
		require.Len(t, at, 2)
		assert.Equal(t, 3*time.Second, at[1].Sub(start))
	})
}

// A waiter already queued when the 429 arrives (blocked on the connection the
// refused request holds) must not be granted before T: the pause is in force
// before the refused request's holding is released.
func TestEdgeWaiterQueuedBefore429WakesAtPauseEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var mu sync.Mutex
		var at []time.Time
		up := &upstream{answer: func(r *http.Request, _ string) *http.Response {
			mu.Lock()
			at = append(at, time.Now())
			n := len(at)
			mu.Unlock()
			if n == 1 {
				<-release
				return respond(429, "application/json", `{}`, "Retry-After", "2")
			}
			return respond(200, "application/json", chatUsage(1, 1))
		}}
		ls := set(t, "a", "http://a.example",
			concurry.CallLimit{Window: time.Hour, Capacity: 100},
			concurry.ResourceLimit{Key: httplimit.KeyConnections, Capacity: 1})
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}, MaxRetries: -1}}
		done := make(chan int, 2)
		go func() { r := post(t, c, chatRequest); r.Body.Close(); done <- r.StatusCode }()
		synctest.Wait()
		go func() { r := post(t, c, chatRequest); r.Body.Close(); done <- r.StatusCode }()
		synctest.Wait() // second is queued on the connection
		t0 := time.Now()
		close(release)
		a, b := <-done, <-done
		assert.ElementsMatch(t, []int{429, 200}, []int{a, b})
		require.Len(t, at, 2)
		assert.Equal(t, 2*time.Second, at[1].Sub(t0), "the queued request is sent exactly at the pause's end")
	})
}

// Retry-After absent, garbage, negative: the documented default of one second
// (retryAfter's doc); 0 or a date in the past: no pause.
func TestEdgeRetryAfterOddValues(t *testing.T) {
	for _, tc := range []struct {
		name, header, value string
		want                time.Duration
	}{
		{"absent", "", "", time.Second},
		{"garbage", "Retry-After", "soon", time.Second},
		{"negative", "Retry-After", "-5", time.Second},
		{"zero", "Retry-After", "0", 0},
		{"past-date", "Retry-After", "Fri, 31 Dec 1999 23:59:00 GMT", 0},
		{"ms", "retry-after-ms", "250", 250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hs []string
				if tc.header != "" {
					hs = []string{tc.header, tc.value}
				}
				up := &upstream{answer: func(*http.Request, string) *http.Response {
					return respond(429, "application/json", `{}`, hs...)
				}}
				ls := probeCallSet(t, "a")
				c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}, MaxRetries: -1}}
				resp := post(t, c, chatRequest)
				require.NoError(t, resp.Body.Close())
				a, err := ls.TryAcquire(context.Background(), nil)
				if tc.want == 0 {
					require.NoError(t, err)
					require.NoError(t, a.Release())
					return
				}
				var refusal *concurry.RefusalError
				require.ErrorAs(t, err, &refusal)
				assert.Equal(t, tc.want, refusal.RetryAfter)
			})
		})
	}
}

// "after a 429/503 with Retry-After, the set ... grants nothing until T":
// a huge Retry-After (beyond what a time.Duration holds) must still pause,
// not overflow into a pause in the past.
func TestEdgeRetryAfterHugePausesTheSet(t *testing.T) {
	for _, tc := range []struct{ name, header, value string }{
		{"seconds-1e10", "Retry-After", "10000000000"},
		{"seconds-max-uint", "Retry-After", "18446744073709551615"},
		{"ms-1e13", "retry-after-ms", "10000000000000"},
		{"inf", "Retry-After", "Inf"},
		{"date-9999", "Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"},
		{"seconds-1e9", "Retry-After", "1000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &upstream{answer: func(*http.Request, string) *http.Response {
					return respond(429, "application/json", `{}`, tc.header, tc.value)
				}}
				ls := probeCallSet(t, "a")
				c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}, MaxRetries: -1}}
				resp := post(t, c, chatRequest)
				require.NoError(t, resp.Body.Close())
				a, err := ls.TryAcquire(context.Background(), nil)
				if err == nil {
					_ = a.Release()
				}
				require.ErrorIs(t, err, concurry.ErrWouldBlock, "a huge Retry-After pauses the set")
			})
		})
	}
}

// Transport doc: "holds the acquisition, and with it every resource limit
// (concurrent connections), until the response body is closed" — also when
// the response handed to the caller is the upstream's last 429.
func TestEdgeFinal429HoldsConnectionUntilBodyClosed(t *testing.T) {
	up := &upstream{answer: func(*http.Request, string) *http.Response {
		return respond(429, "application/json", `{}`, "Retry-After", "1")
	}}
	ls := set(t, "a", "http://a.example", concurry.ResourceLimit{Key: httplimit.KeyConnections, Capacity: 1})
	// NoFeedback: no pause, so only the held connection can refuse.
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}, MaxRetries: -1, NoFeedback: true}}
	resp := post(t, c, chatRequest)
	require.Equal(t, 429, resp.StatusCode)
	a, err := ls.TryAcquire(context.Background(), nil)
	if err == nil {
		_ = a.Release()
	}
	assert.ErrorIs(t, err, concurry.ErrWouldBlock, "the connection is held while the 429's body is open")
	require.NoError(t, resp.Body.Close())
}

// "Feedback only ever lowers; it never raises a key above what its own
// algorithm allows."
func TestEdgeRemainingHeaderNeverRaises(t *testing.T) {
	up := &upstream{answer: func(*http.Request, string) *http.Response {
		return respond(200, "application/json", chatUsage(1, 1),
			"x-ratelimit-remaining-requests", "1000000", "x-ratelimit-remaining-tokens", "99999999")
	}}
	ls := set(t, "a", "http://a.example",
		concurry.CallLimit{Window: time.Hour, Capacity: 100},
		concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 1000})
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}, Margin: -0.5}}
	for i := 0; i < 3; i++ {
		resp := post(t, c, chatRequest)
		_, _ = io.ReadAll(resp.Body)
		require.NoError(t, resp.Body.Close())
	}
	assert.Equal(t, int64(97), available(t, ls, concurry.CallKey))
	assert.Equal(t, int64(1000-6), available(t, ls, httplimit.KeyTokens))
}

// "(2) at most R left until T — from headers such as
// anthropic-ratelimit-output-tokens-remaining ...: the key's available amount
// is lowered to R". Anthropic's input/output keys, with RFC 3339 resets.
func TestEdgeAnthropicRemainingLowersInputAndOutput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reset := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
		up := &upstream{answer: func(*http.Request, string) *http.Response {
			return respond(200, "application/json", `{"type":"message","usage":{"input_tokens":10,"output_tokens":5}}`,
				"anthropic-ratelimit-input-tokens-remaining", "300", "anthropic-ratelimit-input-tokens-reset", reset,
				"anthropic-ratelimit-output-tokens-remaining", "200", "anthropic-ratelimit-output-tokens-reset", reset,
				"anthropic-ratelimit-requests-remaining", "7", "anthropic-ratelimit-requests-reset", reset)
		}}
		ls := set(t, "a", "http://a.example",
			concurry.CallLimit{Window: time.Minute, Capacity: 50},
			concurry.RateLimit{Key: httplimit.KeyInputTokens, Window: time.Minute, Capacity: 1000},
			concurry.RateLimit{Key: httplimit.KeyOutputTokens, Window: time.Minute, Capacity: 1000})
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.Anthropic{}}}
		resp := post(t, c, `{"model":"m","max_tokens":100,"messages":[]}`)
		assert.Equal(t, int64(200-20), available(t, ls, httplimit.KeyOutputTokens), "output lowered to R less the 2% margin while held")
		assert.Equal(t, int64(300-20), available(t, ls, httplimit.KeyInputTokens), "input lowered to R less the 2% margin while held")
		assert.Equal(t, int64(7-1), available(t, ls, concurry.CallKey), "requests lowered to R less the margin (1 of 50)")
		_, _ = io.ReadAll(resp.Body)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, int64(200-20+95), available(t, ls, httplimit.KeyOutputTokens), "then 95 unused output tokens given back")
	})
}

// "More than requested: the excess is charged too (the budget may go into
// debt)"; "Debt is visible". In a JSON body, and in a stream for Anthropic's
// cumulative output count.
func TestEdgeUsageOverageIsChargedAsDebt(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, answer, request string
		api                                httplimit.API
		key                                string
		capacity, debt                     int64
		why                                string
	}{
		{"json", "application/json", chatUsage(600, 900), chatRequest, httplimit.OpenAI{},
			httplimit.KeyTokens, 1000, 500, "1500 used of 1000: 500 in debt"},
		{"stream", "text/event-stream",
			"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":30,\"output_tokens\":1}}}\n\n" +
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":150}}\n\n",
			`{"model":"m","max_tokens":100,"messages":[]}`, httplimit.Anthropic{},
			httplimit.KeyOutputTokens, 120, 30, "150 used of 120"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstream{answer: func(*http.Request, string) *http.Response {
				return respond(200, tc.contentType, tc.answer)
			}}
			ls := set(t, "a", "http://a.example", concurry.RateLimit{Key: tc.key, Window: time.Hour, Capacity: tc.capacity})
			c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: tc.api}}
			resp := post(t, c, tc.request)
			_, _ = io.ReadAll(resp.Body)
			require.NoError(t, resp.Body.Close())
			st, err := ls.Stats(context.Background())
			require.NoError(t, err)
			l, _ := st.Limit(tc.key)
			assert.Zero(t, l.Available)
			assert.Equal(t, tc.debt, l.Debt, tc.why)
		})
	}
}

// A body never read, or read partly, then closed: usage is charged as
// acquired, and the holding ends at Close.
func TestEdgeBodyUnreadOrPartlyReadChargesAsAcquired(t *testing.T) {
	for _, readN := range []int{0, 10} {
		up := &upstream{answer: func(*http.Request, string) *http.Response {
			return respond(200, "application/json", chatUsage(1, 1))
		}}
		ls, c := tokensAndOneConnection(t, up)
		resp := post(t, c, chatRequest)
		_, _ = io.ReadFull(resp.Body, make([]byte, readN))
		require.NoError(t, resp.Body.Close())
		cost := httplimit.EstimateTokens([]byte(chatRequest)) + 100
		assert.Equal(t, 1000-cost, available(t, ls, httplimit.KeyTokens), "read %d: charged as acquired", readN)
		assert.Equal(t, int64(1), available(t, ls, httplimit.KeyConnections), "released at Close")
		require.NoError(t, resp.Body.Close(), "a second Close is harmless")
	}
}

// ctxBody fails its reads once ctx ends, as net/http's body does.
type ctxBody struct {
	ctx context.Context
	r   io.Reader
}

func (b *ctxBody) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	if len(p) > 5 {
		p = p[:5]
	}
	return b.r.Read(p)
}
func (b *ctxBody) Close() error { return nil }

// A request whose ctx ends mid-body: the read fails, Close still settles
// (as acquired) and ends the holding.
func TestEdgeCtxEndsMidBodyReleasesAtClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		up := &upstream{answer: func(r *http.Request, _ string) *http.Response {
			resp := respond(200, "text/event-stream", "")
			resp.Body = &ctxBody{ctx: r.Context(), r: strings.NewReader(
				"data: {\"choices\":[],\"usage\":null}\n\n" +
					"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":5,\"total_tokens\":25}}\n\n")}
			resp.ContentLength = -1
			return resp
		}}
		ls, c := tokensAndOneConnection(t, up)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
		resp, err := c.Do(req)
		require.NoError(t, err)
		_, err = resp.Body.Read(make([]byte, 5))
		require.NoError(t, err)
		cancel()
		_, err = io.ReadAll(resp.Body)
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, int64(0), available(t, ls, httplimit.KeyConnections), "held until Close")
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, int64(1), available(t, ls, httplimit.KeyConnections))
		cost := httplimit.EstimateTokens([]byte(chatRequest)) + 100
		assert.Equal(t, 1000-cost, available(t, ls, httplimit.KeyTokens), "no usage seen: charged as acquired")
	})
}

// "every call returns by its ctx's deadline even while the limiter waits"
// and "A context deadline that cannot be met fails at once and takes
// nothing": a request on a paused set with a deadline before the pause's end.
func TestEdgeDeadlineWhilePausedFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		up := &upstream{answer: func(*http.Request, string) *http.Response {
			n++
			return respond(429, "application/json", `{}`, "Retry-After", "60")
		}}
		ls := set(t, "a", "http://a.example", concurry.CallLimit{Window: 366 * 24 * time.Hour, Capacity: 100})
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
		start := time.Now()
		resp, err := c.Do(req)
		if resp != nil {
			resp.Body.Close()
		}
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var refusal *concurry.RefusalError
		if assert.ErrorAs(t, err, &refusal, "the refusal carries its facts") {
			assert.Equal(t, 60*time.Second, refusal.RetryAfter)
		}
		assert.LessOrEqual(t, time.Since(start), 10*time.Second)
		assert.Equal(t, 1, n, "nothing sent while paused")
		time.Sleep(time.Until(start.Add(60 * time.Second)))
		assert.Equal(t, int64(99), available(t, ls, concurry.CallKey), "the failed acquire took nothing")
	})
}

// Errors match sentinels: a request larger than the capacity.
func TestEdgeExceedsCapacityMatchesSentinel(t *testing.T) {
	up := &upstream{answer: func(*http.Request, string) *http.Response { return respond(200, "application/json", "{}") }}
	ls := set(t, "a", "http://a.example", concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 50})
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
	_, err := c.Post("http://llm/v1/chat/completions", "application/json", strings.NewReader(chatRequest))
	require.Error(t, err)
	assert.True(t, errors.Is(err, concurry.ErrExceedsCapacity), "%v", err)
	assert.Empty(t, up.requests())
}

// "a stale report (older than the last grant it could reflect) lowers
// nothing wrongly": a slow request's low count, answered after a later
// request's fresher count was applied, lowers nothing.
func TestEdgeStaleRemainingLowersNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{answer: func(r *http.Request, _ string) *http.Response {
			if r.Header.Get("X-Slow") != "" {
				time.Sleep(2 * time.Second)
				return respond(200, "application/json", chatUsage(1, 1), "x-ratelimit-remaining-tokens", "100")
			}
			return respond(200, "application/json", chatUsage(1, 1), "x-ratelimit-remaining-tokens", "600")
		}}
		ls := set(t, "a", "http://a.example", concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 1000})
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
		send := func(slow bool) {
			req, _ := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
			if slow {
				req.Header.Set("X-Slow", "1")
			}
			resp, err := c.Do(req)
			require.NoError(t, err)
			_, _ = io.ReadAll(resp.Body)
			require.NoError(t, resp.Body.Close())
		}
		done := make(chan struct{})
		go func() { defer close(done); send(true) }()
		time.Sleep(time.Second)
		send(false)
		cost := httplimit.EstimateTokens([]byte(chatRequest)) + 100
		assert.Equal(t, 600-20+(cost-2), available(t, ls, httplimit.KeyTokens), "fresh count applied, then the fast one's refund")
		<-done
		assert.Equal(t, 600-20+2*(cost-2), available(t, ls, httplimit.KeyTokens), "the slow one's older count lowers nothing; its refund is given back")
	})
}

// "(1) pause until T — after a 429/503 with Retry-After, the set grants
// nothing until T ... for every process sharing it": the pause must not be
// lost when the caller's ctx ends just as the 429 arrives.
func TestEdge429PausesEvenWhenCallerCtxEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		up := &upstream{answer: func(*http.Request, string) *http.Response {
			cancel()
			return respond(429, "application/json", `{}`, "Retry-After", "5")
		}}
		ls := probeCallSet(t, "a")
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		_, err = ls.TryAcquire(context.Background(), nil)
		var refusal *concurry.RefusalError
		require.ErrorAs(t, err, &refusal, "paused")
		assert.Equal(t, 5*time.Second, refusal.RetryAfter)
		assert.Len(t, up.requests(), 1, "no retry after ctx ended")
	})
}

// Core Pause with an instant past what UnixNano can hold (year 2262+): the
// set must still be paused (DESIGN: "the set ... grants nothing until T").
func TestEdgePauseFarFuture(t *testing.T) {
	for _, years := range []int{100, 300, 7000} {
		ls := probeCallSet(t, "a")
		until := time.Now().AddDate(years, 0, 0)
		err := ls.Pause(context.Background(), "", until)
		a, err2 := ls.TryAcquire(context.Background(), nil)
		if err2 == nil {
			_ = a.Release()
		}
		assert.True(t, err != nil || errors.Is(err2, concurry.ErrWouldBlock),
			"+%d years: Pause err %v, TryAcquire err %v: neither refused the pause nor paused", years, err, err2)
	}
}

// Concurrency limits are held until the body is closed (or, as usageBody
// does, read to its end): at most Capacity requests are between send and
// body EOF/Close at once, under load.
type closeBody struct {
	io.Reader
	onClose func()
	once    sync.Once
}

func (b *closeBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		b.once.Do(b.onClose) // net/http frees the connection at EOF too
	}
	return n, err
}
func (b *closeBody) Close() error { b.once.Do(b.onClose); return nil }

func TestEdgeConnectionsHeldUntilCloseUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		open, peak := 0, 0
		up := &upstream{answer: func(*http.Request, string) *http.Response {
			mu.Lock()
			open++
			peak = max(peak, open)
			mu.Unlock()
			resp := respond(200, "application/json", chatUsage(1, 1))
			resp.Body = &closeBody{Reader: strings.NewReader(chatUsage(1, 1)), onClose: func() {
				mu.Lock()
				open--
				mu.Unlock()
			}}
			return resp
		}}
		ls := set(t, "a", "http://a.example", concurry.ResourceLimit{Key: httplimit.KeyConnections, Capacity: 3})
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := post(t, c, chatRequest)
				time.Sleep(time.Duration(i%4) * time.Millisecond)
				_, _ = io.ReadAll(resp.Body)
				time.Sleep(time.Millisecond)
				_ = resp.Body.Close()
			}()
		}
		wg.Wait()
		assert.LessOrEqual(t, peak, 3)
		assert.Len(t, up.requests(), 20)
		assert.Equal(t, int64(3), available(t, ls, httplimit.KeyConnections))
	})
}

// "cancellation while waiting leaves the set exactly as it was" and the
// error matches context.Canceled; the call returns at the cancel.
func TestEdgeCancelWhileWaitingForConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{answer: func(*http.Request, string) *http.Response { return respond(200, "application/json", chatUsage(1, 1)) }}
		ls, c := tokensAndOneConnection(t, up)
		first := post(t, c, chatRequest)
		before := available(t, ls, httplimit.KeyTokens)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
		errc := make(chan error, 1)
		go func() { _, err := c.Do(req); errc <- err }()
		time.Sleep(time.Second)
		start := time.Now()
		cancel()
		err := <-errc
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, start, time.Now())
		assert.Equal(t, before, available(t, ls, httplimit.KeyTokens))
		assert.Len(t, up.requests(), 1)
		_, _ = io.ReadAll(first.Body)
		require.NoError(t, first.Body.Close())
	})
}

// "Close() wakes every blocked Acquire with ErrClosed": a request waiting in
// the Transport hears ErrClosed.
func TestEdgeSetClosedWhileWaitingMatchesErrClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{answer: func(*http.Request, string) *http.Response { return respond(200, "application/json", chatUsage(1, 1)) }}
		ls := set(t, "a", "http://a.example", concurry.ResourceLimit{Key: httplimit.KeyConnections, Capacity: 1})
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
		first := post(t, c, chatRequest)
		errc := make(chan error, 1)
		go func() {
			_, err := c.Post("http://llm/v1/chat/completions", "application/json", strings.NewReader(chatRequest))
			errc <- err
		}()
		synctest.Wait()
		require.NoError(t, ls.Close())
		assert.ErrorIs(t, <-errc, concurry.ErrClosed)
		require.NoError(t, first.Body.Close())
	})
}

// A JSON body read to EOF and never closed still settles and releases
// (usageBody settles at EOF).
func TestEdgeBodyReadToEOFReleasesWithoutClose(t *testing.T) {
	up := &upstream{answer: func(*http.Request, string) *http.Response { return respond(200, "application/json", chatUsage(4, 6)) }}
	ls, c := tokensAndOneConnection(t, up)
	resp := post(t, c, chatRequest)
	_, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, int64(1), available(t, ls, httplimit.KeyConnections))
	assert.Equal(t, int64(990), available(t, ls, httplimit.KeyTokens))
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, int64(990), available(t, ls, httplimit.KeyTokens), "Close after EOF settles nothing twice")
}

// An Anthropic stream closed after message_start (input 30, output 1 so
// far) but before message_delta: the output tokens the upstream will count
// are not known. "Reported rate usage is charged ... or the caller gets an
// error saying it was not — never silently dropped." Expect output charged
// as acquired (max_tokens), not refunded down to 1.
func TestEdgeAnthropicStreamClosedEarlyChargesOutputAsAcquired(t *testing.T) {
	stream := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":30,\"output_tokens\":1}}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":90}}\n\n"
	up := &upstream{answer: func(*http.Request, string) *http.Response { return respond(200, "text/event-stream", stream) }}
	ls := set(t, "a", "http://a.example", concurry.RateLimit{Key: httplimit.KeyOutputTokens, Window: time.Hour, Capacity: 1000})
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.Anthropic{}}}
	resp := post(t, c, `{"model":"m","max_tokens":100,"messages":[]}`)
	first := strings.Index(stream, "event: content_block_delta")
	_, err := io.ReadFull(resp.Body, make([]byte, first))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, int64(1000-100), available(t, ls, httplimit.KeyOutputTokens), "output not yet reported counts as acquired")
}

// Feedback is shared across processes: a 429 seen through one client of a
// unixsock server pauses the set for another client, until T.
func TestEdge429PauseSharedOverUnixsock(t *testing.T) {
	path := testutil.SocketPath(t)
	srv, err := unixsock.Listen(path, unixsock.ServerOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	mk := func(name string) *concurry.LimitSet {
		cl, err := unixsock.Dial(path, unixsock.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { cl.Close() })
		ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Hour, Capacity: 100}},
			concurry.WithName(name), concurry.WithBackend(cl),
			concurry.WithConfig(map[string]any{httplimit.ConfigBaseURL: "http://a.example"}))
		require.NoError(t, err)
		return ls
	}
	for _, tc := range []struct {
		name, value string
		want        time.Duration
	}{{"seconds", "30", 30 * time.Second}, {"date-9999", "Fri, 31 Dec 9999 23:59:59 GMT", 50 * 365 * 24 * time.Hour}} {
		a, b := mk("probe-f-"+tc.name), mk("probe-f-"+tc.name)
		up := &upstream{answer: func(*http.Request, string) *http.Response {
			return respond(429, "application/json", `{}`, "Retry-After", tc.value)
		}}
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: a, API: httplimit.OpenAI{}, MaxRetries: -1}}
		resp := post(t, c, chatRequest)
		require.NoError(t, resp.Body.Close())
		_, err = b.TryAcquire(context.Background(), nil)
		var refusal *concurry.RefusalError
		if assert.ErrorAs(t, err, &refusal, "%s: the other client's set is paused", tc.name) {
			assert.GreaterOrEqual(t, refusal.RetryAfter, tc.want-5*time.Second, tc.name)
		}
	}
}

// "waiters wake at T": a request already waiting for a refill due at +1s
// when a 429 (Retry-After 5) arrives at +0.5s is sent exactly at +5.5s.
func TestEdgePauseArrivingWhileWaiterWaitsForRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		sentAt := map[string]time.Time{}
		up := &upstream{answer: func(r *http.Request, _ string) *http.Response {
			name := r.Header.Get("X-Name")
			mu.Lock()
			sentAt[name] = time.Now()
			mu.Unlock()
			if name == "A" {
				time.Sleep(500 * time.Millisecond)
				return respond(429, "application/json", `{}`, "Retry-After", "5")
			}
			return respond(200, "application/json", chatUsage(1, 1))
		}}
		ls := set(t, "a", "http://a.example", concurry.CallLimit{Window: 2 * time.Second, Capacity: 2})
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}, MaxRetries: -1}}
		send := func(name string) {
			req, _ := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
			req.Header.Set("X-Name", name)
			resp, err := c.Do(req)
			if assert.NoError(t, err) {
				_, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		}
		start := time.Now()
		send("B")
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); send("A") }()
		synctest.Wait()
		go func() { defer wg.Done(); send("C") }()
		wg.Wait()
		assert.Equal(t, 5500*time.Millisecond, sentAt["C"].Sub(start), "C is sent at the pause's end, not at its refill")
	})
}

// Deadlines around a pause's end T: T-1ns cannot be met (fails at once,
// nothing sent, nothing taken); T+1ns is sent exactly at T. (A deadline of
// exactly T is granted at T by the core — memset/set.go:262 allows
// ready == deadline — and the request then goes out with its ctx ending at
// that same instant; see the report.)
func TestEdgeDeadlineAroundPauseEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := set(t, "a", "http://a.example", concurry.CallLimit{Window: 366 * 24 * time.Hour, Capacity: 100})
		var mu sync.Mutex
		var at []time.Time
		up := &upstream{answer: func(*http.Request, string) *http.Response {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
			return respond(200, "application/json", chatUsage(1, 1))
		}}
		c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
		T := time.Now().Add(5 * time.Second)
		require.NoError(t, ls.Pause(context.Background(), "", T))

		ctx, cancel := context.WithDeadline(context.Background(), T.Add(-time.Nanosecond))
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
		start := time.Now()
		_, err := c.Do(req)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var refusal *concurry.RefusalError
		if assert.ErrorAs(t, err, &refusal, "an unmeetable deadline carries its facts") {
			assert.Equal(t, 5*time.Second, refusal.RetryAfter)
		}
		assert.Equal(t, start, time.Now(), "fails at once")
		assert.Empty(t, at)

		ctx2, cancel2 := context.WithDeadline(context.Background(), T.Add(time.Nanosecond))
		defer cancel2()
		req, _ = http.NewRequestWithContext(ctx2, http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
		resp, err := c.Do(req)
		require.NoError(t, err)
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Len(t, at, 1)
		assert.Equal(t, T, at[0])
		time.Sleep(time.Until(T.Add(time.Second)))
		assert.Equal(t, int64(99), available(t, ls, concurry.CallKey), "only the sent request counts")
	})
}

// Observation probe: an SDK client shares one http.Client for every
// endpoint. A multipart upload (POST /v1/files) has a non-JSON body, and a
// GET (/v1/models) has none; neither reports usage.
func TestEdgeNonChatRequestsThroughOpenAI(t *testing.T) {
	up := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_, _ = io.ReadAll(r.Body)
		}
		return respond(200, "application/json", `{"object":"list","data":[]}`), nil
	})
	ls := set(t, "a", "http://a.example", concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 100000})
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
	resp, err := c.Get("http://llm/v1/models")
	require.NoError(t, err)
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("GET /v1/models charged %d tokens", 100000-available(t, ls, httplimit.KeyTokens))
	resp, err = c.Post("http://llm/v1/files", "multipart/form-data; boundary=x", strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--x--\r\n"))
	if err == nil {
		resp.Body.Close()
	}
	t.Logf("POST /v1/files multipart: err=%v; ErrCost? %v", err, errors.Is(err, httplimit.ErrCost))
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// "(1) pause until T ... atomically and for every process sharing it":
// on a shared backend, a 429 whose caller's ctx ended as it arrived (a
// client deadline) must still pause the shared set.
func TestEdge429PausesSharedSetEvenWhenCallerCtxEnded(t *testing.T) {
	for _, ended := range []bool{false, true} {
		t.Run(map[bool]string{false: "control-ctx-live", true: "ctx-ended"}[ended], func(t *testing.T) { probe429SharedCtx(t, ended) })
	}
}

func probe429SharedCtx(t *testing.T, ended bool) {
	path := testutil.SocketPath(t)
	srv, err := unixsock.Listen(path, unixsock.ServerOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	paused := make(chan struct{}, 1) // the pause applied to a: when the caller's ctx had ended, in the background
	hooks := concurry.Hooks{Feedback: func(fi concurry.FeedbackInfo) {
		if fi.Pause {
			paused <- struct{}{}
		}
	}}
	mk := func(opts ...concurry.Option) *concurry.LimitSet {
		cl, err := unixsock.Dial(path, unixsock.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { cl.Close() })
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.CallLimit{Window: time.Hour, Capacity: 100},
			concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 100000}},
			append(opts, concurry.WithName("probe-f-ctx"), concurry.WithBackend(cl),
				concurry.WithConfig(map[string]any{httplimit.ConfigBaseURL: "http://a.example"}))...)
		require.NoError(t, err)
		return ls
	}
	a, b := mk(concurry.WithHooks(hooks)), mk()
	ctx, cancel := context.WithCancel(context.Background())
	up := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.ReadAll(r.Body)
		if ended {
			cancel()
		}
		return respond(429, "application/json", `{}`, "Retry-After", "30",
			"x-ratelimit-remaining-tokens", "0"), nil
	})
	defer cancel()
	c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: a, API: httplimit.OpenAI{}, MaxRetries: -1}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(chatRequest))
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	select {
	case <-paused:
	case <-time.After(10 * time.Second):
		t.Fatal("the pause never reached the shared set")
	}
	acq, err := b.TryAcquire(context.Background(), concurry.Amounts{httplimit.KeyTokens: 1})
	if err == nil {
		_ = acq.Update(concurry.Amounts{httplimit.KeyTokens: 1})
		_ = acq.Release()
	}
	var refusal *concurry.RefusalError
	if assert.ErrorAs(t, err, &refusal, "the other client's set is paused") {
		assert.Greater(t, refusal.RetryAfter, 20*time.Second)
	}
	st, err := b.Stats(context.Background())
	require.NoError(t, err)
	l, _ := st.Limit(httplimit.KeyTokens)
	assert.Greater(t, l.Debt, int64(0), "remaining 0 less the margin lowered the shared key into debt")
}

// "(2) at most R left until T ...: the key's available amount is lowered to
// R (the difference is taken now, as debt if needed)" — on every algorithm.
func TestEdgeRemainingLowersEveryAlgorithm(t *testing.T) {
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.LeakyBucket, concurry.SlidingWindow, concurry.FixedWindow, concurry.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &upstream{answer: func(*http.Request, string) *http.Response {
					return respond(200, "application/json", chatUsage(1, 1), "x-ratelimit-remaining-tokens", "500")
				}}
				ls := set(t, "a", "http://a.example", concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 1000, Algorithm: alg})
				c := &http.Client{Transport: &httplimit.Transport{Base: up, Limiter: ls, API: httplimit.OpenAI{}}}
				resp := post(t, c, chatRequest)
				assert.Equal(t, int64(500-20), available(t, ls, httplimit.KeyTokens), "lowered to R less the margin, while held")
				_, _ = io.ReadAll(resp.Body)
				require.NoError(t, resp.Body.Close())
				_, err := ls.TryAcquire(context.Background(), concurry.Amounts{httplimit.KeyTokens: 500 - 20 + 1 + 200})
				assert.ErrorIs(t, err, concurry.ErrWouldBlock, "nothing much above R can be taken now")
			})
		})
	}
}
