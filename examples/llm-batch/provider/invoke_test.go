package provider

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The plain endpoint, over a real socket: the demo's hand-written client
// uses it.
func TestInvokeOverASocket(t *testing.T) {
	s, err := Start(Options{
		Regions: []string{"r1"}, Accounts: []string{"a1"}, Minute: time.Hour,
		Quota: Quota{RequestsPerMinute: 2, InputTokensPerMinute: 100, OutputTokensPerMinute: 100, Concurrency: 5},
	})
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer func() {
		hc.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, s.Close(ctx))
	}()
	url := s.InvokeURL("r1", "a1")
	resp, body := post(t, hc, url, InvokeRequest{Prompt: "one two three", MaxTokens: 10})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	r := decode[InvokeResponse](t, body)
	assert.Equal(t, int64(3), r.Usage.InputTokens)
	assert.Equal(t, CountTokens(r.Text), r.Usage.OutputTokens)

	resp, _ = post(t, hc, url, InvokeRequest{Prompt: "x", MaxTokens: 1})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, body = post(t, hc, url, InvokeRequest{Prompt: "x", MaxTokens: 1})
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "quota exceeded: requests\n", string(body))
	assert.Equal(t, "1800", resp.Header.Get("Retry-After"), "a request refills every 30 minutes of a 1h minute")
	assert.InDelta(t, 1_800_000, atoi(t, resp.Header.Get("Retry-After-Ms")), 30_000, "less what real time passed")

	resp, _ = post(t, hc, s.URL+"/nope/a1/invoke", InvokeRequest{Prompt: "x", MaxTokens: 1})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = post(t, hc, url, InvokeRequest{Prompt: "x"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	rep := s.Report()[0]
	assert.Equal(t, int64(2), rep.Served)
	assert.Equal(t, int64(1), rep.Rejected)
}
