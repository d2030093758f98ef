package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startTestProvider(t *testing.T, q Quota, latency time.Duration) *Provider {
	t.Helper()
	p, err := StartProvider(ProviderOptions{
		Regions: []string{"r1"}, Accounts: []string{"a1"}, Quota: q,
		Minute: time.Hour, MinLatency: latency, MaxLatency: latency, Seed: 1,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close(context.Background())) })
	return p
}

func call(t *testing.T, url, prompt string, maxTokens int64) *http.Response {
	t.Helper()
	body, _ := json.Marshal(InvokeRequest{Prompt: prompt, MaxTokens: maxTokens})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestProviderEnforcesItsQuotas(t *testing.T) {
	p := startTestProvider(t, Quota{RequestsPerMinute: 3, InputTokensPerMinute: 100, OutputTokensPerMinute: 100, Concurrency: 5}, 0)
	url := p.Endpoint("r1", "a1")
	var used int64
	for range 3 {
		resp := call(t, url, "one two three", 10)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var r InvokeResponse
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		assert.Equal(t, int64(3), r.Usage.InputTokens)
		assert.True(t, r.Usage.OutputTokens >= 1 && r.Usage.OutputTokens <= 10)
		used += r.Usage.OutputTokens
	}
	resp := call(t, url, "four", 10)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "a fourth request in the minute")
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	assert.InDelta(t, 1200, secs, 2, "a request refills every 20 minutes of a 1h minute")
	ms, err := strconv.Atoi(resp.Header.Get("Retry-After-Ms"))
	require.NoError(t, err)
	assert.InDelta(t, 1_200_000, ms, 2000)
	rep := p.Report()[0]
	assert.Equal(t, int64(3), rep.Served)
	assert.Equal(t, int64(1), rep.Rejected)
	assert.Equal(t, int64(1), rep.RejectedByDimension["requests"])
	assert.Equal(t, int64(9), rep.InputTokens)
	assert.Equal(t, used, rep.OutputTokens)
	assert.Equal(t, http.StatusNotFound, call(t, p.URL+"/nope/a1/invoke", "x", 1).StatusCode)
	assert.Equal(t, http.StatusBadRequest, call(t, url, "x", 0).StatusCode)
}

func TestProviderReservesMaxTokensAndRefundsTheRest(t *testing.T) {
	p := startTestProvider(t, Quota{RequestsPerMinute: 100, InputTokensPerMinute: 1000, OutputTokensPerMinute: 50, Concurrency: 5}, 0)
	url := p.Endpoint("r1", "a1")
	// 50 output tokens reserved: fits once; the unused part comes back after.
	require.Equal(t, http.StatusOK, call(t, url, "x", 50).StatusCode)
	rep := p.Report()[0]
	refunded := 50 - rep.OutputTokens
	if refunded >= 1 {
		require.Equal(t, http.StatusOK, call(t, url, "x", refunded).StatusCode, "the unused reservation was refunded")
	}
	require.Equal(t, http.StatusTooManyRequests, call(t, url, "x", 50).StatusCode)
	assert.Equal(t, int64(1), p.Report()[0].RejectedByDimension["output_tokens"])
}

func TestProviderCapsConcurrency(t *testing.T) {
	p := startTestProvider(t, Quota{RequestsPerMinute: 100, InputTokensPerMinute: 1000, OutputTokensPerMinute: 1000, Concurrency: 2}, time.Second)
	url := p.Endpoint("r1", "a1")
	codes := make(chan int, 3)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { codes <- call(t, url, "x", 1).StatusCode })
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	assert.Equal(t, map[int]int{http.StatusOK: 2, http.StatusTooManyRequests: 1}, count)
	assert.Equal(t, int64(2), p.Report()[0].MaxInFlight)
}
