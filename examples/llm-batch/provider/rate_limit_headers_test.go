package provider

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// headerQuota allows 60 requests, 600 input and 6,000 output tokens a
// minute: a request refills in 1s, 10 input tokens in 1s, 600 output
// tokens in 6s.
var headerQuota = Quota{RequestsPerMinute: 60, InputTokensPerMinute: 600, OutputTokensPerMinute: 6000, Concurrency: 5}

const tenWords = "a b c d e f g h i j"

func TestOpenAIRateLimitHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Quota: headerQuota})
		resp, _ := post(t, s.Client(), s.OpenAIBaseURL("r1", "a1")+"chat/completions", chat(tenWords, 600))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		want := map[string]string{
			"X-Ratelimit-Limit-Requests": "60", "X-Ratelimit-Remaining-Requests": "59", "X-Ratelimit-Reset-Requests": "1s",
			// The output quota has the smaller share left (90% against 98%).
			"X-Ratelimit-Limit-Tokens": "6000", "X-Ratelimit-Remaining-Tokens": "5400", "X-Ratelimit-Reset-Tokens": "6s",
		}
		for k, v := range want {
			assert.Equal(t, v, resp.Header.Get(k), k)
		}
	})
}

// Resets are Go durations rounded up to a millisecond: "6m0s", "20ms".
func TestOpenAIResetsAreGoDurations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Minute: time.Hour, Quota: Quota{RequestsPerMinute: 10, InputTokensPerMinute: 3_000_000, OutputTokensPerMinute: 1000, Concurrency: 5}})
		resp, _ := post(t, s.Client(), s.OpenAIBaseURL("r1", "a1")+"responses", map[string]any{"model": "m", "input": "x", "max_output_tokens": 1})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "6m0s", resp.Header.Get("X-Ratelimit-Reset-Requests"), "a request of 10 per hour")
		assert.Equal(t, "3.6s", resp.Header.Get("X-Ratelimit-Reset-Tokens"), "an output token of 1,000 per hour")

		fast := newServer(t, Options{Minute: time.Second, Quota: Quota{RequestsPerMinute: 50, InputTokensPerMinute: 3_000_000, OutputTokensPerMinute: 3_000_000, Concurrency: 5}})
		resp, _ = post(t, fast.Client(), fast.OpenAIBaseURL("r1", "a1")+"responses", map[string]any{"model": "m", "input": "x", "max_output_tokens": 1})
		assert.Equal(t, "20ms", resp.Header.Get("X-Ratelimit-Reset-Requests"), "a request of 50 per second")
		assert.Equal(t, "1ms", resp.Header.Get("X-Ratelimit-Reset-Tokens"), "a third of a microsecond, rounded up")
	})
}

func TestAnthropicRateLimitHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Quota: headerQuota})
		start := time.Now()
		time.Sleep(500 * time.Millisecond)
		resp, _ := post(t, s.Client(), s.AnthropicBaseURL("r1", "a1")+"v1/messages", message(tenWords, 600))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		want := map[string]string{
			"Anthropic-Ratelimit-Requests-Limit": "60", "Anthropic-Ratelimit-Requests-Remaining": "59",
			"Anthropic-Ratelimit-Requests-Reset":      "2000-01-01T00:00:01.5Z",
			"Anthropic-Ratelimit-Input-Tokens-Limit":  "600",
			"Anthropic-Ratelimit-Input-Tokens-Reset":  "2000-01-01T00:00:01.5Z",
			"Anthropic-Ratelimit-Output-Tokens-Limit": "6000", "Anthropic-Ratelimit-Output-Tokens-Remaining": "5400",
			"Anthropic-Ratelimit-Output-Tokens-Reset": "2000-01-01T00:00:06.5Z",
			"Anthropic-Ratelimit-Tokens-Limit":        "6000", "Anthropic-Ratelimit-Tokens-Remaining": "5400",
			"Anthropic-Ratelimit-Tokens-Reset":           "2000-01-01T00:00:06.5Z",
			"Anthropic-Ratelimit-Input-Tokens-Remaining": "590",
		}
		require.Equal(t, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), start.UTC(), "the bubble's clock starts at midnight, 1 January 2000")
		for k, v := range want {
			assert.Equal(t, v, resp.Header.Get(k), k)
			if ts, err := time.Parse(time.RFC3339, resp.Header.Get(k)); err == nil {
				assert.False(t, ts.Before(start), "%s parses as RFC 3339", k)
			}
		}
	})
}

func TestFormatResetRoundsUpToAMillisecond(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600))
	assert.Equal(t, "2026-03-04T04:06:07Z", formatReset(at), "whole seconds, in UTC")
	assert.Equal(t, "2026-03-04T04:06:07.001Z", formatReset(at.Add(time.Nanosecond)))
	assert.Equal(t, "2026-03-04T04:06:07.25Z", formatReset(at.Add(250*time.Millisecond)))
}

// A 429 carries the quotas as they are, and so does a 400 of a known
// account; the headers of a refusal charge nothing.
func TestRateLimitHeadersOnErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Quota: Quota{RequestsPerMinute: 1, InputTokensPerMinute: 600, OutputTokensPerMinute: 6000, Concurrency: 5}})
		url, c := s.OpenAIBaseURL("r1", "a1")+"chat/completions", s.Client()
		resp, _ := post(t, c, url, map[string]any{"model": "m"})
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "1", resp.Header.Get("X-Ratelimit-Remaining-Requests"))
		resp, _ = post(t, c, url, chat("x", 1))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "0", resp.Header.Get("X-Ratelimit-Remaining-Requests"))
		resp, _ = post(t, c, url, chat("x", 1))
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		assert.Equal(t, "0", resp.Header.Get("X-Ratelimit-Remaining-Requests"))
		assert.Equal(t, "1m0s", resp.Header.Get("X-Ratelimit-Reset-Requests"))
		assert.Equal(t, "60", resp.Header.Get("Retry-After"))
	})
}
