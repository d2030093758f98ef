package provider

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type chatUsageJSON struct {
	Usage struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
		TotalTokens      int64 `json:"total_tokens"`
	} `json:"usage"`
}

// A call past a quota is refused with the exact wait until it fits, and
// fits at that instant, not a millisecond before.
func TestQuotaRefusesWithTheExactRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Minute: time.Hour, Quota: Quota{RequestsPerMinute: 3, InputTokensPerMinute: 100, OutputTokensPerMinute: 100, Concurrency: 5}})
		url, c := s.OpenAIBaseURL("r1", "a1")+"chat/completions", s.Client()
		var used int64
		for range 3 {
			resp, body := post(t, c, url, chat("one two three", 10))
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			u := decode[chatUsageJSON](t, body).Usage
			assert.Equal(t, int64(3), u.PromptTokens)
			assert.True(t, u.CompletionTokens >= 1 && u.CompletionTokens <= 10, "%d", u.CompletionTokens)
			assert.Equal(t, u.PromptTokens+u.CompletionTokens, u.TotalTokens)
			used += u.CompletionTokens
		}
		resp, body := post(t, c, url, chat("four", 10))
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "a fourth request in the minute")
		assert.Equal(t, "1200", resp.Header.Get("Retry-After"), "a request refills every 20 minutes of a 1h minute")
		assert.Equal(t, "1200000", resp.Header.Get("Retry-After-Ms"))
		e := decode[struct{ Error map[string]any }](t, body).Error
		assert.Equal(t, "requests", e["type"])
		assert.Equal(t, "rate_limit_exceeded", e["code"])
		assert.Contains(t, e["message"], "Rate limit reached for requests per min (RPM) on account a1 in region r1: Limit 3, Requested 1. Please try again in 20m0s.")

		time.Sleep(20*time.Minute - time.Millisecond)
		resp, _ = post(t, c, url, chat("five", 10))
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "a millisecond early")
		assert.Equal(t, "1", resp.Header.Get("Retry-After-Ms"))
		time.Sleep(time.Millisecond)
		resp, _ = post(t, c, url, chat("six", 10))
		require.Equal(t, http.StatusOK, resp.StatusCode, "on time")

		rep := s.Report()[0]
		assert.Equal(t, int64(4), rep.Served)
		assert.Equal(t, int64(2), rep.Rejected)
		assert.Equal(t, map[string]int64{"requests": 2}, rep.RejectedByDimension)
		assert.Equal(t, int64(10), rep.InputTokens)
	})
}

// A call reserves its maximum output; what it does not produce comes back
// when it ends, exactly.
func TestQuotaReservesMaxTokensAndRefundsTheRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Minute: time.Hour, Quota: Quota{RequestsPerMinute: 100, InputTokensPerMinute: 1000, OutputTokensPerMinute: 50, Concurrency: 5}})
		url, c := s.OpenAIBaseURL("r1", "a1")+"chat/completions", s.Client()
		resp, body := post(t, c, url, chat("x", 50))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		out := decode[chatUsageJSON](t, body).Usage.CompletionTokens
		require.Less(t, out, int64(50), "this seed and prompt leave some output unused")

		resp, _ = post(t, c, url, chat("y", 50-out+1))
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "one token more than was refunded")
		assert.Equal(t, "72000", resp.Header.Get("Retry-After-Ms"), "one output token refills in 72s of a 1h minute")
		resp, _ = post(t, c, url, chat("y", 50-out))
		require.Equal(t, http.StatusOK, resp.StatusCode, "the unused reservation came back")
		assert.Equal(t, map[string]int64{"output_tokens": 1}, s.Report()[0].RejectedByDimension)
	})
}

func TestQuotaCapsConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{
			MinLatency: time.Second, MaxLatency: time.Second,
			Quota: Quota{RequestsPerMinute: 100, InputTokensPerMinute: 1000, OutputTokensPerMinute: 1000, Concurrency: 2},
		})
		url, c := s.OpenAIBaseURL("r1", "a1")+"chat/completions", s.Client()
		codes := make(chan int, 3)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				resp, _ := post(t, c, url, chat("x", 1))
				codes <- resp.StatusCode
			})
		}
		wg.Wait()
		close(codes)
		count := map[int]int{}
		for code := range codes {
			count[code]++
		}
		assert.Equal(t, map[int]int{http.StatusOK: 2, http.StatusTooManyRequests: 1}, count)
		rep := s.Report()[0]
		assert.Equal(t, int64(2), rep.MaxInFlight)
		assert.Equal(t, map[string]int64{DimConcurrency: 1}, rep.RejectedByDimension)
		resp, _ := post(t, c, url, chat("x", 1))
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the calls in flight ended")
	})
}

// A call larger than a whole quota can never fit: a 429 that asks not to
// be retried.
func TestQuotaRefusesACallLargerThanTheQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Quota: Quota{RequestsPerMinute: 10, InputTokensPerMinute: 1000, OutputTokensPerMinute: 100, Concurrency: 1}})
		resp, body := post(t, s.Client(), s.AnthropicBaseURL("r1", "a1")+"v1/messages", message("x", 101))
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		assert.Equal(t, "false", resp.Header.Get("X-Should-Retry"))
		assert.Empty(t, resp.Header.Get("Retry-After"))
		e := decode[struct {
			Type  string
			Error map[string]any
		}](t, body)
		assert.Equal(t, "error", e.Type)
		assert.Equal(t, "rate_limit_error", e.Error["type"])
		assert.Contains(t, e.Error["message"], "Request too large for output tokens per min on account a1 in region r1: Limit 100, Requested 101.")
	})
}

// With TokensPerMinute, input and output share one more quota, and
// OpenAI's tokens headers report it.
func TestQuotaOfTokensTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Minute: time.Hour, Quota: Quota{
			RequestsPerMinute: 10, InputTokensPerMinute: 1000, OutputTokensPerMinute: 1000, TokensPerMinute: 100, Concurrency: 5,
		}})
		url, c := s.OpenAIBaseURL("r1", "a1")+"chat/completions", s.Client()
		resp, body := post(t, c, url, chat("a b c d e f g h i j", 40))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "100", resp.Header.Get("X-Ratelimit-Limit-Tokens"))
		assert.Equal(t, "50", resp.Header.Get("X-Ratelimit-Remaining-Tokens"), "10 input and 40 output reserved")
		out := decode[chatUsageJSON](t, body).Usage.CompletionTokens
		resp, _ = post(t, c, url, chat("a b c d e f g h i j", 80))
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		assert.Equal(t, map[string]int64{"tokens": 1}, s.Report()[0].RejectedByDimension)
		resp, _ = post(t, c, url, chat("x", 1))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, itoa(100-10-out-1-1), resp.Header.Get("X-Ratelimit-Remaining-Tokens"), "the unused output came back")
	})
}

// answerRead sends body to url through c and reads the answer as a client
// does that stops where the answer ends — a JSON body decoded, or a stream
// read up to its last event — then closes it, without waiting for the end of
// the body or the server's handler. It returns the status.
func answerRead(t *testing.T, c *http.Client, url string, body map[string]any) int {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := c.Post(url, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode
	}
	if body["stream"] != true {
		var v map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
		return resp.StatusCode
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != "data: [DONE]" {
	}
	require.NoError(t, sc.Err())
	return resp.StatusCode
}

// A client that has read a whole answer finds the call ended — its unused
// output back, its place under the cap free — however the server's
// goroutines are scheduled, streamed or not: so a limiter that frees both
// once it has read an answer never runs ahead of the provider.
func TestCallEndsBeforeItsAnswerIsRead(t *testing.T) {
	for _, stream := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			s := newServer(t, Options{MaxLatency: 10 * time.Millisecond,
				Quota: Quota{RequestsPerMinute: 1000, InputTokensPerMinute: 10_000, OutputTokensPerMinute: 10_000, Concurrency: 1}})
			url := s.OpenAIBaseURL("r1", "a1") + "chat/completions"
			for i := range 50 {
				body := chat("hello there", 100)
				body["stream"] = stream
				require.Equal(t, http.StatusOK, answerRead(t, s.Client(), url, body), "call %d, stream %v: the cap of 1 is free", i, stream)
			}
			assert.Zero(t, s.Report()[0].Rejected)
		})
	}
}
